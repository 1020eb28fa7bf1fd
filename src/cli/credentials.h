// As whom the CLI talks to dlabd: the access key that signs its requests ($DLAB_ACCESS_KEY_ID
// and $DLAB_SECRET_ACCESS_KEY, else `access_key_id` and `secret_access_key` in the config file)
// and the tenant they act in (--tenant, else $DLAB_TENANT, else `tenant` in the config file).
// The environment is passed in as values so that the choice is testable. Pure functions.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "cli/config_file.h"
#include "cli/http_client.h"

namespace dlab {

inline constexpr char kKeyIdEnv[] = "DLAB_ACCESS_KEY_ID";
inline constexpr char kSecretEnv[] = "DLAB_SECRET_ACCESS_KEY";
inline constexpr char kTenantEnv[] = "DLAB_TENANT";

// Every place a key or tenant can come from besides the config file; unset or empty values do
// not count.
struct IdentitySources {
  std::optional<std::string> tenant_flag;  // --tenant
  std::optional<std::string> env_key_id;   // $DLAB_ACCESS_KEY_ID
  std::optional<std::string> env_secret;   // $DLAB_SECRET_ACCESS_KEY
  std::optional<std::string> env_tenant;   // $DLAB_TENANT
};

// The sources from this process's environment, with the --tenant flag if one was given.
IdentitySources IdentitySourcesFromEnvironment(std::optional<std::string> tenant_flag);

// The access key in the config file, or nullopt when it names none. InvalidArgument when it
// has one of the two keys but not the other, or a value that is not a string. (Does not check
// who may read the file: `dlab logout` revokes a key even from a file that others could read.)
absl::StatusOr<std::optional<Credentials>> CredentialsFromConfig(const ConfigFile& config);

// The key from the environment, else from the config file (as CredentialsFromConfig), else
// nullopt. InvalidArgument naming the missing variable when only one of the two is set;
// FailedPrecondition when the key would come from a config file that others may read.
absl::StatusOr<std::optional<Credentials>> ResolveCredentials(const IdentitySources& sources,
                                                              const ConfigFile& config);

// The tenant to act in, or nullopt for the server's choice (the caller's first tenant).
// InvalidArgument when the config file's `tenant` is not a string.
absl::StatusOr<std::optional<std::string>> ResolveTenant(const IdentitySources& sources,
                                                         const ConfigFile& config);

}  // namespace dlab
