#include "cli/credentials.h"

#include "absl/strings/str_cat.h"
#include "cli/server_url.h"

namespace dlab {
namespace {

using nlohmann::json;

// The string under key in the config file: nullopt when absent, null or empty.
absl::StatusOr<std::optional<std::string>> ConfigString(const ConfigFile& config, const char* key) {
  auto it = config.values.find(key);
  if (it == config.values.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.path, ": ", key, " must be a string (put it in quotes)"));
  }
  std::string value = it->get<std::string>();
  if (value.empty()) return std::nullopt;
  return value;
}

// Both or neither: "WHERE: HAVE is set but MISSING is not; an access key needs both".
absl::Status HalfAKey(const std::string& where, const std::string& have,
                      const std::string& missing) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", have, " is set but ", missing,
                                                 " is not; an access key needs both"));
}

}  // namespace

IdentitySources IdentitySourcesFromEnvironment(std::optional<std::string> tenant_flag) {
  return IdentitySources{.tenant_flag = std::move(tenant_flag),
                         .env_key_id = Env(kKeyIdEnv),
                         .env_secret = Env(kSecretEnv),
                         .env_tenant = Env(kTenantEnv)};
}

absl::StatusOr<std::optional<Credentials>> CredentialsFromConfig(const ConfigFile& config) {
  auto key_id = ConfigString(config, kConfigKeyIdKey);
  if (!key_id.ok()) return key_id.status();
  auto secret = ConfigString(config, kConfigSecretKey);
  if (!secret.ok()) return secret.status();
  if (!*key_id && !*secret) return std::nullopt;
  if (!*key_id) return HalfAKey(config.path, kConfigSecretKey, kConfigKeyIdKey);
  if (!*secret) return HalfAKey(config.path, kConfigKeyIdKey, kConfigSecretKey);
  return Credentials{.key_id = **key_id, .secret = **secret};
}

absl::StatusOr<std::optional<Credentials>> ResolveCredentials(const IdentitySources& sources,
                                                              const ConfigFile& config) {
  bool have_id = IsSet(sources.env_key_id);
  bool have_secret = IsSet(sources.env_secret);
  if (have_id && have_secret) {
    return Credentials{.key_id = *sources.env_key_id, .secret = *sources.env_secret};
  }
  if (have_id) return HalfAKey("environment", kKeyIdEnv, kSecretEnv);
  if (have_secret) return HalfAKey("environment", kSecretEnv, kKeyIdEnv);
  auto key = CredentialsFromConfig(config);
  if (key.ok() && *key) {
    if (absl::Status private_file = CheckSecretIsPrivate(config); !private_file.ok()) {
      return private_file;
    }
  }
  return key;
}

absl::StatusOr<std::optional<std::string>> ResolveTenant(const IdentitySources& sources,
                                                         const ConfigFile& config) {
  if (IsSet(sources.tenant_flag)) return *sources.tenant_flag;
  if (IsSet(sources.env_tenant)) return *sources.env_tenant;
  return ConfigString(config, kConfigTenantKey);
}

}  // namespace dlab
