// The REST API of identities (docs/rest-api.md, "Tenants, users and keys"): password login and
// sessions, whoami, access keys, tenants and their members, users, quotas, and the audit trail.
#pragma once

#include "api/auth_gate.h"
#include "api/http_server.h"
#include "sched/job_controller.h"
#include "store/identity_store.h"

namespace dlab {

struct IdentityApiContext {
  AuthGate* gate = nullptr;
  IdentityStore* identity = nullptr;
  JobController* controller = nullptr;  // quota use; rescheduling when a quota changes
  size_t max_request_bytes = 64 << 10;
};

void RegisterIdentityRoutes(const IdentityApiContext& context, Router* router);

// Names of tenants and users: 1 to 64 of a-z A-Z 0-9 . _ @ -, starting with a letter or digit.
absl::Status ValidateName(const std::string& what, const std::string& name);

}  // namespace dlab
