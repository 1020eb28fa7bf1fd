#include "cli/config_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/yaml_json.h"

namespace dlab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr mode_t kPrivateFile = 0600;
constexpr mode_t kPrivateDir = 0700;

absl::StatusOr<json> ParseConfig(absl::string_view text, absl::string_view path) {
  auto parsed = ParseYamlOrJson(text);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", parsed.status().message()));
  }
  if (parsed->is_null()) return json::object();
  if (!parsed->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": expected a mapping of keys such as url, tenant, access_key_id, "
                     "secret_access_key"));
  }
  return *std::move(parsed);
}

json Applied(json values, const ConfigUpdate& update) {
  for (const std::string& key : update.remove) values.erase(key);
  for (const auto& [key, value] : update.set) values[key] = value;
  return values;
}

bool IsPlainKey(absl::string_view key) {
  return !key.empty() && (absl::ascii_isalpha(key[0]) || key[0] == '_') &&
         std::all_of(key.begin(), key.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '_' || c == '-'; });
}

std::string Scalar(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string KeyLine(const std::string& key, const json& value) {
  return absl::StrCat(IsPlainKey(key) ? key : Scalar(json(key)), ": ", Scalar(value));
}

// The key of a top-level `key: ...` line; nullopt for comments, indented and other lines.
std::optional<std::string> TopLevelKey(absl::string_view line) {
  if (line.empty() || absl::ascii_isspace(line[0]) || line[0] == '#') return std::nullopt;
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return std::nullopt;
  if (colon + 1 < line.size() && line[colon + 1] != ' ' && line[colon + 1] != '\t') {
    return std::nullopt;
  }
  absl::string_view key = absl::StripTrailingAsciiWhitespace(line.substr(0, colon));
  if (!IsPlainKey(key)) return std::nullopt;
  return std::string(key);
}

// The update done line by line on text, keeping everything else as it is.
std::string EditLines(absl::string_view text, const ConfigUpdate& update) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  std::vector<std::pair<std::string, std::string>> pending = update.set;
  std::vector<std::string> out;
  bool skipping = false;  // inside the continuation lines of a replaced or removed key
  for (const std::string& line : lines) {
    bool continuation = !line.empty() && (line[0] == ' ' || line[0] == '\t');
    if (skipping && continuation) continue;
    skipping = false;
    std::optional<std::string> key = TopLevelKey(line);
    if (key) {
      auto set = std::find_if(pending.begin(), pending.end(),
                              [&](const auto& kv) { return kv.first == *key; });
      bool removed =
          std::find(update.remove.begin(), update.remove.end(), *key) != update.remove.end();
      if (set != pending.end()) {
        out.push_back(KeyLine(set->first, set->second));
        pending.erase(set);
        skipping = true;
        continue;
      }
      if (removed) {
        skipping = true;
        continue;
      }
    }
    out.push_back(line);
  }
  for (const auto& [key, value] : pending) out.push_back(KeyLine(key, value));
  if (out.empty()) return "";
  return absl::StrCat(absl::StrJoin(out, "\n"), "\n");
}

std::string RenderYaml(const json& values) {
  std::string out;
  for (const auto& [key, value] : values.items()) absl::StrAppend(&out, KeyLine(key, value), "\n");
  return out;
}

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// Creates the directory of path with mode 0700 (its parents with the default mode) when absent.
absl::Status MakePrivateDirectory(const std::string& path) {
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) return absl::OkStatus();
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return absl::OkStatus();
  if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", dir.parent_path().string(), ": ", ec.message()));
  }
  if (::mkdir(dir.c_str(), kPrivateDir) != 0 && errno != EEXIST) {
    return Errno("cannot create", dir.string());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ConfigFile> ReadConfigFile(const std::string& path) {
  ConfigFile file{.path = path};
  auto text = ReadFile(path);
  if (absl::IsNotFound(text.status())) return file;
  if (!text.ok()) return text.status();
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Errno("cannot stat", path);
  file.exists = true;
  file.permissions = st.st_mode & 0777;
  auto values = ParseConfig(*text, path);
  if (!values.ok()) return values.status();
  file.values = *std::move(values);
  return file;
}

absl::Status CheckSecretIsPrivate(const ConfigFile& file) {
  if (!file.exists || !file.values.contains(kConfigSecretKey)) return absl::OkStatus();
  if ((file.permissions & 077) == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrFormat(
      "%s holds a secret access key but others may read it (mode %04o); run `chmod 600 %s`",
      file.path, file.permissions, file.path));
}

absl::StatusOr<std::string> EditConfigText(absl::string_view text, const ConfigUpdate& update) {
  auto before = ParseConfig(text, "the config file");
  if (!before.ok()) return before.status();
  json want = Applied(*before, update);
  std::string edited = EditLines(text, update);
  auto after = ParseConfig(edited, "the edited config file");
  if (after.ok() && *after == want) return edited;
  std::string rendered = RenderYaml(want);
  after = ParseConfig(rendered, "the rewritten config file");
  if (!after.ok() || *after != want) {
    return absl::InternalError("cannot write the config file's values back as YAML");
  }
  return rendered;
}

absl::Status UpdateConfigFile(const std::string& path, const ConfigUpdate& update) {
  auto text = ReadFile(path);
  if (!text.ok() && !absl::IsNotFound(text.status())) return text.status();
  auto edited = EditConfigText(text.ok() ? *text : std::string(), update);
  if (!edited.ok()) {
    return absl::Status(edited.status().code(),
                        absl::StrCat(path, ": ", edited.status().message()));
  }
  if (absl::Status made = MakePrivateDirectory(path); !made.ok()) return made;
  // The temporary file is created under this umask, so the secret is never readable by others.
  mode_t old_umask = ::umask(077);
  absl::Status written = WriteFileAtomically(path, *edited);
  ::umask(old_umask);
  if (!written.ok()) return written;
  if (::chmod(path.c_str(), kPrivateFile) != 0) return Errno("cannot chmod", path);
  return absl::OkStatus();
}

}  // namespace dlab
