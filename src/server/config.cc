#include "server/config.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/quantity.h"
#include "common/yaml_json.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using nlohmann::json;

absl::Status Field(const std::string& field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::StatusOr<std::string> Text(const json& v, const std::string& field) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return v.dump();
  return Field(field, "must be a string");
}

// A duration field ("30s", "5m"), its errors naming the field; below `min`, the problem
// `too_small`.
absl::StatusOr<absl::Duration> DurationField(const json& v, const std::string& field,
                                             absl::Duration min = -absl::InfiniteDuration(),
                                             absl::string_view too_small = "") {
  auto t = Text(v, field);
  if (!t.ok()) return t.status();
  auto d = ParseDuration(*t);
  if (!d.ok()) return Field(field, d.status().message());
  if (*d < min) return Field(field, too_small);
  return *d;
}

// An integer field within [lo, hi]; else the problem, naming the field.
absl::StatusOr<int> IntInRange(const json& v, const std::string& field, int64_t lo, int64_t hi,
                               absl::string_view problem) {
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
    return Field(field, problem);
  }
  return v.get<int>();
}

absl::Status Known(const json& obj, const std::string& prefix,
                   std::initializer_list<const char*> keys) {
  for (const auto& [key, value] : obj.items()) {
    bool ok = false;
    for (const char* k : keys) ok = ok || key == k;
    if (!ok) return Field(prefix + key, "unknown field");
  }
  return absl::OkStatus();
}

absl::Status ParseGpus(const json& v, ServerConfig* c) {
  if (v.is_string()) {
    std::string mode = v.get<std::string>();
    if (mode != "auto" && mode != "none")
      return Field("node.gpus", "must be auto, none, or a list");
    c->gpus_mode = mode;
    c->gpus.clear();
    return absl::OkStatus();
  }
  if (!v.is_array()) return Field("node.gpus", "must be auto, none, or a list of {type, count}");
  c->gpus_mode = "declared";
  c->gpus.clear();
  for (size_t i = 0; i < v.size(); ++i) {
    std::string f = absl::StrCat("node.gpus[", i, "]");
    const json& g = v[i];
    if (!g.is_object()) return Field(f, "must be a mapping {type, model, count}");
    if (auto s = Known(g, f + ".", {"type", "model", "count"}); !s.ok()) return s;
    GpuDeclaration d;
    if (!g.contains("type") || !g["type"].is_string())
      return Field(f + ".type", "is required (e.g. H100)");
    d.type = g["type"].get<std::string>();
    d.model =
        g.contains("model") && g["model"].is_string() ? g["model"].get<std::string>() : d.type;
    if (g.contains("count")) {
      if (!g["count"].is_number_integer() || g["count"].get<int>() < 1) {
        return Field(f + ".count", "must be a positive integer");
      }
      d.count = g["count"].get<int>();
    }
    c->gpus.push_back(d);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseListen(const std::string& listen, ServerConfig* config) {
  auto colon = listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos && colon > 0) {
    auto [p, ec] = std::from_chars(listen.data() + colon + 1, listen.data() + listen.size(), port);
    if (ec != std::errc() || p != listen.data() + listen.size()) port = -1;
  }
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen: expected HOST:PORT, got '", listen, "'"));
  }
  config->host = listen.substr(0, colon);
  config->port = port;
  return absl::OkStatus();
}

namespace {

// backend: local | slurm | kubernetes | {type: ..., the type's fields}.
absl::Status ParseBackend(const json& b, ServerConfig* config) {
  ServerConfig& c = *config;
  if (b.is_string()) {
    c.backend = b.get<std::string>();
  } else if (!b.is_object()) {
    return Field("backend", "must be local, slurm, kubernetes, or a mapping {type: slurm, ...}");
  } else {
    if (!b.contains("type"))
      return Field("backend.type", "is required (local, slurm or kubernetes)");
    auto t = Text(b["type"], "backend.type");
    if (!t.ok()) return t.status();
    c.backend = *t;
  }
  if (c.backend != "local" && c.backend != "slurm" && c.backend != "kubernetes") {
    return Field("backend",
                 absl::StrCat("'", c.backend, "' is not one of local, slurm, kubernetes"));
  }
  if (!b.is_object()) return absl::OkStatus();
  auto strings = [&](std::initializer_list<std::pair<const char*, std::string*>> fields) {
    for (auto [key, target] : fields) {
      if (!b.contains(key)) continue;
      auto v = Text(b[key], absl::StrCat("backend.", key));
      if (!v.ok()) return v.status();
      *target = *v;
    }
    return absl::OkStatus();
  };
  if (c.backend == "local") {
    if (b.size() > 1) return Field("backend", "the local backend has no settings besides type");
    return absl::OkStatus();
  }
  if (c.backend == "slurm") {
    if (auto s =
            Known(b, "backend.",
                  {"type", "partition", "account", "qos", "bin_dir", "poll_interval", "queue_ahead",
                   "api_url", "slurmrestd", "slurmrestd_token_file", "slurmrestd_user"});
        !s.ok()) {
      return s;
    }
    if (auto s = strings({{"partition", &c.slurm.partition},
                          {"account", &c.slurm.account},
                          {"qos", &c.slurm.qos},
                          {"bin_dir", &c.slurm.bin_dir},
                          {"api_url", &c.slurm_api_url},
                          {"slurmrestd", &c.slurm.rest_url},
                          {"slurmrestd_token_file", &c.slurm.rest_token_file},
                          {"slurmrestd_user", &c.slurm.rest_user}});
        !s.ok()) {
      return s;
    }
    const std::string& rest = c.slurm.rest_url;
    if (!rest.empty() && !rest.starts_with("unix:/") && !rest.starts_with("http://") &&
        !rest.starts_with("https://")) {
      return Field("backend.slurmrestd",
                   "must be unix:/PATH (slurmrestd's socket) or an http:// or https:// URL");
    }
    if (rest.empty() && (!c.slurm.rest_token_file.empty() || !c.slurm.rest_user.empty())) {
      return Field("backend.slurmrestd",
                   "is required with slurmrestd_token_file and slurmrestd_user");
    }
    if (!c.slurm_api_url.empty() && !c.slurm_api_url.starts_with("http://") &&
        !c.slurm_api_url.starts_with("https://")) {
      return Field("backend.api_url",
                   "must be an http:// or https:// URL the compute nodes can reach dlabd at");
    }
    if (b.contains("poll_interval")) {
      auto d = DurationField(b["poll_interval"], "backend.poll_interval", absl::Milliseconds(100),
                             "must be >= 100ms");
      if (!d.ok()) return d.status();
      c.slurm_poll_interval = *d;
    }
    if (b.contains("queue_ahead")) {
      auto n = IntInRange(b["queue_ahead"], "backend.queue_ahead", 0, 8,
                          "must be an integer from 0 to 8 (nodes' worth)");
      if (!n.ok()) return n.status();
      c.slurm_queue_ahead = *n;
    }
    return absl::OkStatus();
  }
  KubeOptions& k = c.kube;
  if (auto s = Known(b, "backend.",
                     {"type", "kubeconfig", "context", "namespace", "image", "init_image",
                      "api_url", "data_claim", "code_mount", "gpu_type_label", "service_account",
                      "image_pull_secrets", "master_port", "ttl_after_finished"});
      !s.ok()) {
    return s;
  }
  if (auto s = strings({{"kubeconfig", &k.kubeconfig},
                        {"context", &k.context},
                        {"namespace", &k.namespace_},
                        {"image", &k.image},
                        {"init_image", &k.init_image},
                        {"api_url", &k.api_url},
                        {"data_claim", &k.data_claim},
                        {"code_mount", &k.code_mount},
                        {"gpu_type_label", &k.gpu_type_label},
                        {"service_account", &k.service_account}});
      !s.ok()) {
    return s;
  }
  if (k.code_mount.empty() || k.code_mount[0] != '/') {
    return Field("backend.code_mount", "must be an absolute path");
  }
  if (!k.api_url.empty() && !k.api_url.starts_with("http://") &&
      !k.api_url.starts_with("https://")) {
    return Field("backend.api_url", "must be an http:// or https:// URL pods can reach dlabd at");
  }
  if (b.contains("image_pull_secrets")) {
    const json& v = b["image_pull_secrets"];
    if (!v.is_array()) return Field("backend.image_pull_secrets", "must be a list of Secret names");
    for (const json& name : v) {
      if (!name.is_string())
        return Field("backend.image_pull_secrets", "must be a list of Secret names");
      k.image_pull_secrets.push_back(name.get<std::string>());
    }
  }
  if (b.contains("master_port")) {
    auto port = IntInRange(b["master_port"], "backend.master_port", 1, 65535,
                           "must be a port number (1-65535)");
    if (!port.ok()) return port.status();
    k.master_port = *port;
  }
  if (b.contains("ttl_after_finished")) {
    auto d = DurationField(b["ttl_after_finished"], "backend.ttl_after_finished");
    if (!d.ok()) return d.status();
    k.ttl_after_finished_s = absl::ToInt64Seconds(*d);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServerConfig> ParseServerConfig(const std::string& yaml_text, ServerConfig c) {
  auto parsed = ParseYamlOrJson(yaml_text);
  if (!parsed.ok()) return parsed.status();
  const json& root = *parsed;
  if (root.is_null()) return c;
  if (!root.is_object()) return absl::InvalidArgumentError("config: must be a mapping");
  if (auto s = Known(root, "",
                     {"listen", "data_dir", "node", "kill_grace", "max_snapshot_size",
                      "http_threads", "shim_path", "ports", "bootstrap", "session_lifetime", "auth",
                      "scheduler", "backend", "monitoring", "alerts", "console"});
      !s.ok()) {
    return s;
  }
  if (root.contains("listen")) {
    auto t = Text(root["listen"], "listen");
    if (!t.ok()) return t.status();
    if (auto s = ParseListen(*t, &c); !s.ok()) return s;
  }
  for (const char* key : {"data_dir", "shim_path"}) {
    if (!root.contains(key)) continue;
    auto t = Text(root[key], key);
    if (!t.ok()) return t.status();
    (std::string(key) == "data_dir" ? c.data_dir : c.shim_path) = *t;
  }
  if (root.contains("kill_grace")) {
    auto d = DurationField(root["kill_grace"], "kill_grace");
    if (!d.ok()) return d.status();
    c.kill_grace = *d;
  }
  if (root.contains("ports")) {
    auto t = Text(root["ports"], "ports");
    if (!t.ok()) return t.status();
    std::vector<std::string> parts = absl::StrSplit(*t, '-');
    int first = 0;
    int last = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &first) ||
        !absl::SimpleAtoi(parts[1], &last) || first < 1024 || last > 65535 || first > last) {
      return Field("ports", absl::StrCat("must be a range FIRST-LAST within 1024-65535, e.g. "
                                         "25000-29999, got '",
                                         *t, "'"));
    }
    c.first_port = first;
    c.last_port = last;
  }
  if (root.contains("max_snapshot_size")) {
    auto t = Text(root["max_snapshot_size"], "max_snapshot_size");
    if (!t.ok()) return t.status();
    auto b = ParseMemoryBytes(*t);
    if (!b.ok()) return Field("max_snapshot_size", b.status().message());
    c.max_snapshot_bytes = *b;
  }
  if (root.contains("bootstrap")) {
    const json& b = root["bootstrap"];
    if (!b.is_object()) {
      return Field("bootstrap",
                   "must be a mapping {user, password, access_key_id, secret_access_key}");
    }
    if (auto s = Known(b, "bootstrap.", {"user", "password", "access_key_id", "secret_access_key"});
        !s.ok()) {
      return s;
    }
    for (auto [key, target] :
         {std::pair{"user", &c.bootstrap.user}, std::pair{"password", &c.bootstrap.password},
          std::pair{"access_key_id", &c.bootstrap.access_key_id},
          std::pair{"secret_access_key", &c.bootstrap.secret_access_key}}) {
      if (!b.contains(key)) continue;
      auto t = Text(b[key], absl::StrCat("bootstrap.", key));
      if (!t.ok()) return t.status();
      *target = *t;
    }
  }
  if (root.contains("scheduler")) {
    const json& sc = root["scheduler"];
    if (!sc.is_object()) return Field("scheduler", "must be a mapping {policy, params, weights}");
    if (auto s = Known(sc, "scheduler.", {"policy", "params", "weights"}); !s.ok()) return s;
    if (sc.contains("weights")) {
      if (!sc["weights"].is_object()) {
        return Field("scheduler.weights", "must be a mapping of tenant name to weight");
      }
      for (const auto& [name, w] : sc["weights"].items()) {
        if (!w.is_number() || !std::isfinite(w.get<double>()) || w.get<double>() <= 0) {
          return Field(absl::StrCat("scheduler.weights.", name), "must be a positive number");
        }
        c.scheduler.tenant_weights[name] = w.get<double>();
      }
    }
    if (sc.contains("policy")) {
      auto t = Text(sc["policy"], "scheduler.policy");
      if (!t.ok()) return t.status();
      c.scheduler.policy = *t;
    }
    if (sc.contains("params")) {
      if (!sc["params"].is_object()) {
        return Field("scheduler.params", "must be a mapping, e.g. {preemption.min_runtime: 5m}");
      }
      for (const auto& [key, value] : sc["params"].items()) {
        std::string text = value.is_string() ? value.get<std::string>() : value.dump();
        // JSON has no NaN or infinity: dump() would echo a NaN as 'null'.
        if (value.is_number_float() && !std::isfinite(value.get<double>())) {
          text = absl::StrCat(value.get<double>());
        }
        c.scheduler.params[key] = text;
      }
    }
    // Policies and parameters are checked against a one-node cluster: they do not depend on it.
    if (auto s = NewScheduler(c.scheduler, {NodeCapacity{}}); !s.ok()) {
      return Field("scheduler", s.status().message());
    }
    if (c.scheduler.policy == "oracle-srtf") {
      return Field("scheduler.policy",
                   "oracle-srtf orders jobs by their true remaining run time, which only the "
                   "simulator knows (dlab-sim); for unknown run times use gittins or las");
    }
  }
  if (root.contains("backend")) {
    if (auto s = ParseBackend(root["backend"], &c); !s.ok()) return s;
  }
  if (root.contains("monitoring")) {
    const json& m = root["monitoring"];
    if (!m.is_object())
      return Field("monitoring", "must be a mapping {interval, window, telemetry_file}");
    if (auto s = Known(m, "monitoring.", {"interval", "window", "telemetry_file"}); !s.ok())
      return s;
    if (m.contains("interval")) {
      auto d = DurationField(m["interval"], "monitoring.interval", absl::Milliseconds(100),
                             "must be >= 100ms");
      if (!d.ok()) return d.status();
      c.monitoring_interval = *d;
    }
    if (m.contains("window")) {
      auto d = DurationField(m["window"], "monitoring.window", c.monitoring_interval,
                             "must be >= the interval");
      if (!d.ok()) return d.status();
      c.monitoring_window = *d;
    }
    if (m.contains("telemetry_file")) {
      auto t = Text(m["telemetry_file"], "monitoring.telemetry_file");
      if (!t.ok()) return t.status();
      c.telemetry_file = *t;
    }
  }
  if (root.contains("console")) {
    const json& m = root["console"];
    if (!m.is_object()) return Field("console", "must be a mapping {dir}");
    if (auto s = Known(m, "console.", {"dir"}); !s.ok()) return s;
    if (m.contains("dir")) {
      auto t = Text(m["dir"], "console.dir");
      if (!t.ok()) return t.status();
      c.console_dir = *t;
    }
  }
  if (root.contains("alerts")) {
    auto rules = ParseAlertRules(root["alerts"]);
    if (!rules.ok()) return rules.status();
    c.alert_rules = *std::move(rules);
  }
  if (root.contains("auth")) {
    auto t = Text(root["auth"], "auth");
    if (!t.ok()) return t.status();
    if (*t != "signed" && *t != "none") return Field("auth", "must be signed or none");
    c.auth = *t;
  }
  if (root.contains("session_lifetime")) {
    auto d = DurationField(root["session_lifetime"], "session_lifetime", absl::Minutes(1),
                           "must be at least 1m");
    if (!d.ok()) return d.status();
    c.session_lifetime = *d;
  }
  if (root.contains("http_threads")) {
    if (!root["http_threads"].is_number_integer() || root["http_threads"].get<int>() < 1) {
      return Field("http_threads", "must be a positive integer");
    }
    c.http_threads = root["http_threads"].get<int>();
  }
  if (root.contains("node")) {
    const json& node = root["node"];
    if (!node.is_object()) return Field("node", "must be a mapping {cpus, memory, gpus}");
    if (auto s = Known(node, "node.", {"cpus", "memory", "gpus"}); !s.ok()) return s;
    if (node.contains("cpus")) {
      auto t = Text(node["cpus"], "node.cpus");
      if (!t.ok()) return t.status();
      auto m = ParseCpuMillis(*t);
      if (!m.ok()) return Field("node.cpus", m.status().message());
      c.cpu_millis = *m;
    }
    if (node.contains("memory")) {
      auto t = Text(node["memory"], "node.memory");
      if (!t.ok()) return t.status();
      auto b = ParseMemoryBytes(*t);
      if (!b.ok()) return Field("node.memory", b.status().message());
      c.memory_bytes = *b;
    }
    if (node.contains("gpus")) {
      if (auto s = ParseGpus(node["gpus"], &c); !s.ok()) return s;
    }
  }
  return c;
}

void TakeEnvironmentSecrets(ServerConfig* config) {
  for (auto [name, target] :
       {std::pair{"DLAB_BOOTSTRAP_USER", &config->bootstrap.user},
        std::pair{"DLAB_BOOTSTRAP_PASSWORD", &config->bootstrap.password},
        std::pair{"DLAB_BOOTSTRAP_ACCESS_KEY_ID", &config->bootstrap.access_key_id},
        std::pair{"DLAB_BOOTSTRAP_SECRET_ACCESS_KEY", &config->bootstrap.secret_access_key}}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') *target = value;
    unsetenv(name);  // jobs inherit dlabd's environment (the shim's, sbatch's --export=ALL)
  }
  // The dlab CLI's access key, when dlabd was started from a shell that uses the CLI: a job
  // that inherited it would act with that user's rights instead of its own token's.
  unsetenv("DLAB_ACCESS_KEY_ID");
  unsetenv("DLAB_SECRET_ACCESS_KEY");
}

}  // namespace dlab
