#include "cli/server_url.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "cli/config_file.h"

namespace dlab {
namespace {

std::string WithoutTrailingSlash(std::string url) {
  while (url.size() > 1 && url.back() == '/') url.pop_back();
  return url;
}

// The `url` from the config file, or nullopt when the file or the key is absent.
absl::StatusOr<std::optional<std::string>> UrlFromConfigFile(const std::string& path) {
  auto config = ReadConfigFile(path);
  if (!config.ok()) return config.status();
  auto url = config->values.find(kConfigUrlKey);
  if (url == config->values.end() || url->is_null()) return std::nullopt;
  if (!url->is_string() || url->get<std::string>().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": url must be a non-empty string"));
  }
  return url->get<std::string>();
}

}  // namespace

std::optional<std::string> Env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

bool IsSet(const std::optional<std::string>& value) { return value && !value->empty(); }

UrlSources UrlSourcesFromEnvironment(std::optional<std::string> flag) {
  return UrlSources{.flag = std::move(flag),
                    .env_url = Env("DLAB_URL"),
                    .xdg_config_home = Env("XDG_CONFIG_HOME"),
                    .home = Env("HOME")};
}

std::optional<std::string> ConfigFilePath(const UrlSources& sources) {
  if (IsSet(sources.xdg_config_home)) return absl::StrCat(*sources.xdg_config_home, "/dlab/config");
  if (IsSet(sources.home)) return absl::StrCat(*sources.home, "/.config/dlab/config");
  return std::nullopt;
}

absl::StatusOr<std::string> ResolveServerUrl(const UrlSources& sources) {
  if (IsSet(sources.flag)) return WithoutTrailingSlash(*sources.flag);
  if (IsSet(sources.env_url)) return WithoutTrailingSlash(*sources.env_url);
  if (std::optional<std::string> path = ConfigFilePath(sources)) {
    auto url = UrlFromConfigFile(*path);
    if (!url.ok()) return url.status();
    if (*url) return WithoutTrailingSlash(**url);
  }
  return std::string(kDefaultServerUrl);
}

}  // namespace dlab
