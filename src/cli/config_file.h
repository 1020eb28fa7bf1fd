// The CLI's config file ($XDG_CONFIG_HOME/dlab/config, default ~/.config/dlab/config): a YAML
// mapping whose keys `url`, `tenant`, `access_key_id` and `secret_access_key` the CLI reads and
// `dlab login` / `dlab logout` update. An update keeps the other keys and, where every key sits
// on its own `key: value` line, the comments and layout too; it replaces the file atomically with
// mode 0600. Reading is thread-safe; updating is not (it sets the process's umask briefly).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace dlab {

inline constexpr char kConfigUrlKey[] = "url";
inline constexpr char kConfigTenantKey[] = "tenant";
inline constexpr char kConfigKeyIdKey[] = "access_key_id";
inline constexpr char kConfigSecretKey[] = "secret_access_key";

struct ConfigFile {
  std::string path;
  bool exists = false;
  nlohmann::json values = nlohmann::json::object();  // empty when the file is absent or empty
  unsigned permissions = 0;                          // st_mode & 0777 when it exists
};

// The file at path; an absent file reads as an empty mapping. InvalidArgument naming the path
// when it is not YAML (or JSON) or not a mapping; Internal when it exists but cannot be read.
absl::StatusOr<ConfigFile> ReadConfigFile(const std::string& path);

// OK unless the file holds a secret_access_key that group or others may read: then
// FailedPrecondition saying to `chmod 600` it.
absl::Status CheckSecretIsPrivate(const ConfigFile& file);

// Top-level keys to set (to string values) and to remove.
struct ConfigUpdate {
  std::vector<std::pair<std::string, std::string>> set;
  std::vector<std::string> remove;
};

// `text` (a config file's content) with the update applied. Other keys' lines and comments stay
// as they are when the keys concerned sit on single `key: value` lines; otherwise (JSON, a
// multi-line value) the whole mapping is written out again as YAML, without comments.
// InvalidArgument when text is not a YAML mapping.
absl::StatusOr<std::string> EditConfigText(absl::string_view text, const ConfigUpdate& update);

// Applies the update to the file at path, creating it (and its directory, mode 0700) when
// absent. The new content goes to a temporary file that is renamed over path, so readers see
// the old file or the new one; the file ends with mode 0600. Errors name the path.
absl::Status UpdateConfigFile(const std::string& path, const ConfigUpdate& update);

}  // namespace dlab
