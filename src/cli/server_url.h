// Where the CLI finds dlabd: the --url flag, else $DLAB_URL, else the `url:` key of
// $XDG_CONFIG_HOME/dlab/config (default ~/.config/dlab/config), else http://127.0.0.1:8080.
// The environment is passed in as values so that the choice is testable. Pure functions.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace dlab {

inline constexpr char kDefaultServerUrl[] = "http://127.0.0.1:8080";

// Every place a server URL can come from; an unset or empty value does not count.
struct UrlSources {
  std::optional<std::string> flag;             // --url
  std::optional<std::string> env_url;          // $DLAB_URL
  std::optional<std::string> xdg_config_home;  // $XDG_CONFIG_HOME
  std::optional<std::string> home;             // $HOME
};

// The value of an environment variable of this process; nullopt when unset.
std::optional<std::string> Env(const char* name);
// Whether an optional value counts as given: set and not empty.
bool IsSet(const std::optional<std::string>& value);

// The sources from this process's environment, with the --url flag if one was given.
UrlSources UrlSourcesFromEnvironment(std::optional<std::string> flag);

// The config file that UrlSources points at, or nullopt when neither XDG_CONFIG_HOME nor HOME
// is set.
std::optional<std::string> ConfigFilePath(const UrlSources& sources);

// The server URL, without a trailing '/'. InvalidArgument when the config file exists but is not
// valid YAML or its `url` is not a string; a missing config file falls through to the default.
absl::StatusOr<std::string> ResolveServerUrl(const UrlSources& sources);

}  // namespace dlab
