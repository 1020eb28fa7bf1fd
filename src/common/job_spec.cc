#include "common/job_spec.h"

#include <regex>
#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/quantity.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using nlohmann::json;

absl::Status FieldError(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

std::string TypeName(const json& v) {
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_array()) return "a list";
  if (v.is_object()) return "a mapping";
  return "null";
}

absl::Status CheckKnownFields(const json& obj, absl::string_view prefix,
                              const std::set<std::string>& known) {
  for (const auto& [key, value] : obj.items()) {
    if (!known.contains(key)) {
      return FieldError(absl::StrCat(prefix, key),
                        absl::StrCat("unknown field (known: ", absl::StrJoin(known, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

// A scalar as text: strings as they are, numbers and booleans printed (YAML users write
// OMP_NUM_THREADS: 2 without quotes).
absl::StatusOr<std::string> ScalarText(const json& v, absl::string_view field) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_number_float()) return v.dump();
  return FieldError(field, absl::StrCat("must be a string, got ", TypeName(v)));
}

absl::StatusOr<int64_t> Integer(const json& v, absl::string_view field, int64_t min, int64_t max) {
  if (!v.is_number_integer() && !v.is_number_unsigned()) {
    return FieldError(field, absl::StrCat("must be an integer, got ", TypeName(v)));
  }
  int64_t n = v.get<int64_t>();
  if (n < min || n > max) {
    return FieldError(field, absl::StrCat("must be between ", min, " and ", max, ", got ", n));
  }
  return n;
}

absl::StatusOr<std::map<std::string, std::string>> StringMap(const json& v, absl::string_view field,
                                                             const std::regex& key_re,
                                                             absl::string_view key_rule) {
  if (!v.is_object())
    return FieldError(field, absl::StrCat("must be a mapping, got ", TypeName(v)));
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : v.items()) {
    std::string path = absl::StrCat(field, ".", key);
    if (!std::regex_match(key, key_re)) return FieldError(path, key_rule);
    auto text = ScalarText(value, path);
    if (!text.ok()) return text.status();
    out[key] = *text;
  }
  return out;
}

bool IsSafeRelativePath(const std::string& p) {
  if (p.empty() || p[0] == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    if (p.compare(start, end - start, "..") == 0 && end - start == 2) return false;
    start = end + 1;
  }
  return true;
}

absl::Status ParseCommand(const json& v, absl::string_view field, std::vector<std::string>* command,
                          bool* shell) {
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (s.find_first_not_of(" \t\n") == std::string::npos) return FieldError(field, "is empty");
    *command = {"/bin/sh", "-c", s};
    *shell = true;
    return absl::OkStatus();
  }
  if (!v.is_array()) {
    return FieldError(
        field, absl::StrCat("must be a list of strings or one shell string, got ", TypeName(v)));
  }
  if (v.empty()) return FieldError(field, "is empty");
  for (size_t i = 0; i < v.size(); ++i) {
    auto text = ScalarText(v[i], absl::StrCat(field, "[", i, "]"));
    if (!text.ok()) return text.status();
    command->push_back(*text);
  }
  if ((*command)[0].empty()) return FieldError(absl::StrCat(field, "[0]"), "is empty");
  return absl::OkStatus();
}

json ResourcesJson(const Resources& r) {
  json j = {{"cpus", FormatCpuMillis(r.cpu_millis)},
            {"memory", FormatMemoryBytes(r.memory_bytes)},
            {"gpus", r.gpus}};
  if (r.gpu_type.find(',') != std::string::npos) {
    j["gpu_type"] = std::vector<std::string>(absl::StrSplit(r.gpu_type, ','));
  } else if (!r.gpu_type.empty()) {
    j["gpu_type"] = r.gpu_type;
  }
  return j;
}

json CommandJson(const std::vector<std::string>& command, bool shell) {
  if (shell) return command.back();
  return command;
}

absl::Status ParseResources(const json& v, absl::string_view field, Resources* r) {
  if (!v.is_object()) {
    return FieldError(field, absl::StrCat("must be a mapping, got ", TypeName(v)));
  }
  std::string prefix = absl::StrCat(field, ".");
  if (auto s = CheckKnownFields(v, prefix, {"cpus", "memory", "gpus", "gpu_type"}); !s.ok()) {
    return s;
  }
  auto status = [&](absl::string_view sub, absl::string_view problem) {
    return FieldError(absl::StrCat(prefix, sub), problem);
  };
  if (v.contains("cpus")) {
    const json& c = v["cpus"];
    if (!c.is_number() && !c.is_string()) {
      return status("cpus",
                    absl::StrCat("must be a number or a quantity like 500m, got ", TypeName(c)));
    }
    auto millis = ParseCpuMillis(c.is_string() ? c.get<std::string>() : c.dump());
    if (!millis.ok()) return status("cpus", millis.status().message());
    r->cpu_millis = *millis;
  }
  if (v.contains("memory")) {
    const json& m = v["memory"];
    if (!m.is_number_integer() && !m.is_number_unsigned() && !m.is_string()) {
      return status("memory", absl::StrCat("must be a quantity like 4Gi or a number of bytes, got ",
                                           TypeName(m)));
    }
    auto bytes = ParseMemoryBytes(m.is_string() ? m.get<std::string>() : m.dump());
    if (!bytes.ok()) return status("memory", bytes.status().message());
    r->memory_bytes = *bytes;
  }
  if (v.contains("gpus")) {
    auto gpus = Integer(v["gpus"], absl::StrCat(prefix, "gpus"), 0, 1024);
    if (!gpus.ok()) return gpus.status();
    r->gpus = static_cast<int>(*gpus);
    if (r->gpus == 0) r->gpu_type.clear();  // a role without GPUs drops the job's GPU type
  }
  if (v.contains("gpu_type") && !v["gpu_type"].is_null()) {
    const json& t = v["gpu_type"];
    // Acceptable types, any of them: a list, or names separated by commas in a string.
    std::vector<std::string> types;
    if (t.is_array()) {
      for (const json& one : t) {
        if (!one.is_string() || one.get<std::string>().find(',') != std::string::npos) {
          return status("gpu_type", "must be a type name or a list of type names");
        }
        types.push_back(one.get<std::string>());
      }
    } else if (!t.is_string()) {
      return status("gpu_type",
                    absl::StrCat("must be a string or a list of strings, got ", TypeName(t)));
    } else {
      types = absl::StrSplit(t.get<std::string>(), ',');
    }
    for (std::string& type : types) {
      absl::StripAsciiWhitespace(&type);
      if (type.empty() && (types.size() > 1 || t.is_array())) {
        return status("gpu_type", "has an empty type name (e.g. [H100, A100] or \"H100,A100\")");
      }
    }
    // "" or [] used to be taken as any type, silently; leaving the field out says that. A role
    // may still say "" to take any type where the job asks for one.
    bool role = field != "resources";
    if (!role && (types.empty() || (types.size() == 1 && types[0].empty()))) {
      return status("gpu_type", "is empty; name a type (e.g. H100), or leave it out for any type");
    }
    r->gpu_type = absl::StrJoin(types, ",");
    if (!r->gpu_type.empty() && r->gpus == 0) {
      return status("gpu_type", absl::StrCat("is set but ", prefix, "gpus is 0"));
    }
  }
  return absl::OkStatus();
}

constexpr int kMaxTasks = 256;

// `tasks: N`, or `tasks: {role: count | {count, resources, command}}` (roles in name order).
absl::Status ParseTasks(const json& v, JobSpec* spec) {
  if (v.is_number_integer() || v.is_number_unsigned()) {
    auto n = Integer(v, "tasks", 1, kMaxTasks);
    if (!n.ok()) return n.status();
    if (*n > 1) spec->task_groups = {TaskGroup{.count = static_cast<int>(*n)}};
    return absl::OkStatus();
  }
  if (!v.is_object()) {
    return FieldError("tasks", absl::StrCat("must be a number of tasks or a mapping of role to "
                                            "count (e.g. {ps: 1, worker: 2}), got ",
                                            TypeName(v)));
  }
  if (v.empty()) return FieldError("tasks", "names no role");
  static const std::regex kRole("[A-Za-z][A-Za-z0-9_-]{0,31}");
  int total = 0;
  for (const auto& [role, value] : v.items()) {
    std::string field = absl::StrCat("tasks.", role);
    if (!std::regex_match(role, kRole)) {
      return FieldError(field,
                        "a role must be 1-32 letters, digits, '_' or '-', starting with a letter");
    }
    TaskGroup group{.role = role};
    if (value.is_object()) {
      if (auto s =
              CheckKnownFields(value, absl::StrCat(field, "."), {"count", "resources", "command"});
          !s.ok()) {
        return s;
      }
      if (!value.contains("count")) return FieldError(absl::StrCat(field, ".count"), "is required");
      auto n = Integer(value["count"], absl::StrCat(field, ".count"), 1, kMaxTasks);
      if (!n.ok()) return n.status();
      group.count = static_cast<int>(*n);
      if (value.contains("resources")) {
        // A role's resources start from the job's and override what the role names.
        Resources r = spec->resources;
        if (auto s = ParseResources(value["resources"], absl::StrCat(field, ".resources"), &r);
            !s.ok()) {
          return s;
        }
        group.resources = r;
      }
      if (value.contains("command")) {
        if (auto s = ParseCommand(value["command"], absl::StrCat(field, ".command"), &group.command,
                                  &group.shell);
            !s.ok()) {
          return s;
        }
      }
    } else {
      auto n = Integer(value, absl::StrCat(field), 1, kMaxTasks);
      if (!n.ok()) {
        return FieldError(field, absl::StrCat("must be a count or a mapping with count, resources "
                                              "and command, got ",
                                              TypeName(value)));
      }
      group.count = static_cast<int>(*n);
    }
    total += group.count;
    spec->task_groups.push_back(std::move(group));
  }
  if (total > kMaxTasks) {
    return FieldError("tasks", absl::StrCat(total, " tasks in all; at most ", kMaxTasks));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<JobSpec> ParseJobSpec(const json& v) {
  if (!v.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec: must be a mapping of fields, got ", TypeName(v)));
  }
  if (auto s = CheckKnownFields(v, "",
                                {"name", "command", "workdir", "env", "resources", "priority",
                                 "max_runtime", "max_restarts", "labels", "tasks",
                                 "restart_backoff", "max_infra_restarts", "preemptible", "image"});
      !s.ok()) {
    return s;
  }
  JobSpec spec;
  static const std::regex kName("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");
  if (!v.contains("name")) return FieldError("name", "is required");
  if (!v["name"].is_string()) {
    return FieldError("name", absl::StrCat("must be a string, got ", TypeName(v["name"])));
  }
  spec.name = v["name"].get<std::string>();
  if (!std::regex_match(spec.name, kName)) {
    return FieldError(
        "name", "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit");
  }

  if (!v.contains("command")) return FieldError("command", "is required");
  if (auto s = ParseCommand(v["command"], "command", &spec.command, &spec.shell); !s.ok()) return s;

  if (v.contains("workdir")) {
    if (!v["workdir"].is_string()) {
      return FieldError("workdir", absl::StrCat("must be a string, got ", TypeName(v["workdir"])));
    }
    spec.workdir = v["workdir"].get<std::string>();
    if (!IsSafeRelativePath(spec.workdir)) {
      return FieldError("workdir",
                        "must be a relative path inside the code snapshot, without '..'");
    }
  }

  if (v.contains("image")) {
    // An OCI image reference: [registry/]path[:tag][@digest]; checked loosely here, the
    // cluster's runtime has the last word.
    static const std::regex kImage("[a-z0-9][A-Za-z0-9._/:@+-]{0,254}");
    if (!v["image"].is_string()) {
      return FieldError("image", absl::StrCat("must be a string, got ", TypeName(v["image"])));
    }
    spec.image = v["image"].get<std::string>();
    if (!std::regex_match(spec.image, kImage)) {
      return FieldError("image",
                        "must be an image reference like ghcr.io/team/train:1.0 (lower-case "
                        "first character; letters, digits and . _ / : @ + -)");
    }
  }

  if (v.contains("env")) {
    static const std::regex kEnvName("[A-Za-z_][A-Za-z0-9_]*");
    auto env =
        StringMap(v["env"], "env", kEnvName,
                  "is not a valid variable name (letters, digits, '_'; not starting with a digit)");
    if (!env.ok()) return env.status();
    for (const auto& [key, value] : *env) {
      if (key.starts_with("DLAB_") || key == "CUDA_VISIBLE_DEVICES") {
        return FieldError(absl::StrCat("env.", key), "is set by dlab and cannot be overridden");
      }
    }
    spec.env = *std::move(env);
  }

  if (v.contains("resources")) {
    if (auto s = ParseResources(v["resources"], "resources", &spec.resources); !s.ok()) return s;
  }

  if (v.contains("priority")) {
    auto p = Integer(v["priority"], "priority", -1000, 1000);
    if (!p.ok()) return p.status();
    spec.priority = static_cast<int>(*p);
  }

  if (v.contains("max_runtime") && !v["max_runtime"].is_null()) {
    const json& m = v["max_runtime"];
    if (!m.is_string() && !m.is_number()) {
      return FieldError(
          "max_runtime",
          absl::StrCat("must be a duration like 2h or a number of seconds, got ", TypeName(m)));
    }
    auto d = ParseDuration(m.is_string() ? m.get<std::string>() : m.dump());
    if (!d.ok()) return FieldError("max_runtime", d.status().message());
    spec.max_runtime = *d;
  }

  if (v.contains("max_restarts")) {
    auto n = Integer(v["max_restarts"], "max_restarts", 0, 100);
    if (!n.ok()) return n.status();
    spec.max_restarts = static_cast<int>(*n);
  }

  if (v.contains("restart_backoff") && !v["restart_backoff"].is_null()) {
    const json& m = v["restart_backoff"];
    if (!m.is_string() && !m.is_number()) {
      return FieldError(
          "restart_backoff",
          absl::StrCat("must be a duration like 10s or a number of seconds, got ", TypeName(m)));
    }
    auto d = ParseDuration(m.is_string() ? m.get<std::string>() : m.dump());
    if (!d.ok()) return FieldError("restart_backoff", d.status().message());
    if (*d > absl::Minutes(5)) return FieldError("restart_backoff", "must be at most 5m");
    spec.restart_backoff = *d;
  }

  if (v.contains("max_infra_restarts")) {
    auto n = Integer(v["max_infra_restarts"], "max_infra_restarts", 0, 1000);
    if (!n.ok()) return n.status();
    spec.max_infra_restarts = static_cast<int>(*n);
  }

  if (v.contains("preemptible")) {
    if (!v["preemptible"].is_boolean()) {
      return FieldError("preemptible",
                        absl::StrCat("must be true or false, got ", TypeName(v["preemptible"])));
    }
    spec.preemptible = v["preemptible"].get<bool>();
  }

  // After resources: roles inherit the job's resources.
  if (v.contains("tasks")) {
    if (auto s = ParseTasks(v["tasks"], &spec); !s.ok()) return s;
  }

  if (v.contains("labels")) {
    static const std::regex kLabelKey("[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?");
    auto labels = StringMap(v["labels"], "labels", kLabelKey,
                            "must be 1-63 letters, digits, '.', '_', '/' or '-'");
    if (!labels.ok()) return labels.status();
    for (const auto& [key, value] : *labels) {
      if (value.size() > 256 || value.find_first_of(",\n") != std::string::npos) {
        return FieldError(absl::StrCat("labels.", key),
                          "must be at most 256 characters, without commas or newlines");
      }
    }
    spec.labels = *std::move(labels);
  }
  return spec;
}

json JobSpecToJson(const JobSpec& spec) {
  json j;
  j["name"] = spec.name;
  j["command"] = CommandJson(spec.command, spec.shell);
  j["workdir"] = spec.workdir;
  j["env"] = spec.env;
  j["resources"] = ResourcesJson(spec.resources);
  j["priority"] = spec.priority;
  j["max_runtime"] = spec.max_runtime == absl::ZeroDuration()
                         ? json(nullptr)
                         : json(absl::FormatDuration(spec.max_runtime));
  j["max_restarts"] = spec.max_restarts;
  j["max_infra_restarts"] = spec.max_infra_restarts;
  j["preemptible"] = spec.preemptible;
  j["restart_backoff"] = absl::FormatDuration(spec.restart_backoff);
  j["labels"] = spec.labels;
  if (!spec.image.empty()) j["image"] = spec.image;
  if (spec.task_groups.empty()) {
    j["tasks"] = 1;
  } else if (spec.task_groups[0].role.empty()) {
    j["tasks"] = spec.task_groups[0].count;
  } else {
    json roles = json::object();
    for (const TaskGroup& g : spec.task_groups) {
      json role = {{"count", g.count}};
      if (g.resources) role["resources"] = ResourcesJson(*g.resources);
      if (!g.command.empty()) role["command"] = CommandJson(g.command, g.shell);
      roles[g.role] = std::move(role);
    }
    j["tasks"] = std::move(roles);
  }
  return j;
}

}  // namespace dlab
