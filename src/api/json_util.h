// Helpers shared by the REST route handlers: JSON responses, the {id} path parameter of job
// routes and the API's time format.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "api/http_server.h"
#include "nlohmann/json_fwd.hpp"

namespace dlab {

// A JSON response; invalid UTF-8 in strings is replaced rather than thrown on.
HttpResponse JsonResponse(int status, const nlohmann::json& body);

// The job id in the {id} path parameter; NotFound when it is not a positive integer.
absl::StatusOr<int64_t> JobIdParam(const HttpRequest& req);

// The integer query parameter `key` (dflt when absent); InvalidArgument naming it when it is not
// an integer in [min, max].
absl::StatusOr<int64_t> IntQuery(const HttpRequest& req, absl::string_view key, int64_t dflt,
                                 int64_t min, int64_t max);

// RFC 3339 in UTC with milliseconds, e.g. "2025-11-22T08:26:40.500Z".
std::string FormatRfc3339(absl::Time t);

}  // namespace dlab
