#include "monitor/alerts.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/quantity.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using json = nlohmann::json;

constexpr std::pair<AlertKind, const char*> kKinds[] = {
    {AlertKind::kGpuTemperatureAbove, "gpu_temperature_above"},
    {AlertKind::kJobGpuIdleBelow, "job_gpu_idle_below"},
    {AlertKind::kJobFailed, "job_failed"},
    {AlertKind::kNodeLost, "node_lost"},
    {AlertKind::kTenantAtQuota, "tenant_at_quota"},
};

bool NeedsThreshold(AlertKind k) {
  return k == AlertKind::kGpuTemperatureAbove || k == AlertKind::kJobGpuIdleBelow;
}

bool EventLike(AlertKind k) { return k == AlertKind::kJobFailed; }

absl::Status Bad(const std::string& field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

std::string RFC3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace

std::string AlertKindName(AlertKind kind) {
  for (const auto& [k, name] : kKinds) {
    if (k == kind) return name;
  }
  return "unknown";
}

absl::StatusOr<std::vector<AlertRule>> ParseAlertRules(const json& alerts) {
  if (!alerts.is_object()) return Bad("alerts", "must be a mapping {rules: [...]}");
  for (const auto& [key, value] : alerts.items()) {
    if (key != "rules") return Bad(absl::StrCat("alerts.", key), "unknown field (known: rules)");
  }
  std::vector<AlertRule> rules;
  if (!alerts.contains("rules")) return rules;
  const json& list = alerts["rules"];
  if (!list.is_array()) return Bad("alerts.rules", "must be a list of {name, kind, ...}");
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& r = list[i];
    std::string at = absl::StrCat("alerts.rules[", i, "]");
    if (!r.is_object()) return Bad(at, "must be a mapping {name, kind, threshold, for, webhook}");
    for (const auto& [key, value] : r.items()) {
      if (key != "name" && key != "kind" && key != "threshold" && key != "for" &&
          key != "webhook") {
        return Bad(absl::StrCat(at, ".", key),
                   "unknown field (known: name, kind, threshold, for, webhook)");
      }
    }
    AlertRule rule;
    if (!r.contains("name") || !r["name"].is_string() || r["name"].get<std::string>().empty()) {
      return Bad(at + ".name", "is required (a string)");
    }
    rule.name = r["name"].get<std::string>();
    if (!names.insert(rule.name).second) {
      return Bad(at + ".name", absl::StrCat("'", rule.name, "' is used by another rule"));
    }
    std::string kind = r.value("kind", json("")).is_string() ? r.value("kind", "") : "";
    bool known = false;
    std::string all;
    for (const auto& [k, name] : kKinds) {
      absl::StrAppend(&all, all.empty() ? "" : ", ", name);
      if (kind == name) {
        rule.kind = k;
        known = true;
      }
    }
    if (!known) return Bad(at + ".kind", absl::StrCat("must be one of ", all));
    if (NeedsThreshold(rule.kind)) {
      if (!r.contains("threshold") || !r["threshold"].is_number()) {
        return Bad(
            at + ".threshold",
            absl::StrCat("is required for ", kind, " (a number: ",
                         rule.kind == AlertKind::kGpuTemperatureAbove ? "degrees C" : "percent",
                         ")"));
      }
      rule.threshold = r["threshold"].get<double>();
    } else if (r.contains("threshold")) {
      return Bad(at + ".threshold", absl::StrCat("is not used by ", kind));
    }
    if (r.contains("for")) {
      if (!r["for"].is_string()) return Bad(at + ".for", "must be a duration like 30m");
      auto d = ParseDuration(r["for"].get<std::string>());
      if (!d.ok()) return Bad(at + ".for", d.status().message());
      rule.for_duration = *d;
    }
    if (r.contains("webhook")) {
      if (!r["webhook"].is_string()) return Bad(at + ".webhook", "must be a URL string");
      rule.webhook = r["webhook"].get<std::string>();
      if (!rule.webhook.starts_with("http://") && !rule.webhook.starts_with("https://")) {
        return Bad(at + ".webhook", "must be an http:// or https:// URL");
      }
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

json AlertEventJson(const AlertEvent& e) {
  return {{"rule", e.rule},
          {"kind", e.kind},
          {"key", e.key},
          {"state", e.state},
          {"message", e.message},
          {"value", e.value},
          {"threshold", e.threshold},
          {"since", RFC3339(e.since)},
          {"time", RFC3339(e.time)}};
}

AlertEngine::AlertEngine(std::vector<AlertRule> rules) : rules_(std::move(rules)) {}

std::vector<AlertEvent> AlertEngine::Observe(const std::string& rule_name,
                                             const std::map<std::string, AlertObservation>& seen,
                                             absl::Time now) {
  std::vector<AlertEvent> events;
  auto rule = std::find_if(rules_.begin(), rules_.end(),
                           [&](const AlertRule& r) { return r.name == rule_name; });
  if (rule == rules_.end()) return events;
  auto event = [&](const std::string& key, const Incident& in, const char* state) {
    return AlertEvent{.rule = rule->name,
                      .kind = AlertKindName(rule->kind),
                      .key = key,
                      .state = state,
                      .message = in.last.message,
                      .value = in.last.value,
                      .threshold = rule->threshold,
                      .since = in.since,
                      .time = now,
                      .webhook = rule->webhook};
  };
  auto& incidents = incidents_[rule->name];
  auto& done = done_[rule->name];
  for (const auto& [key, obs] : seen) {
    if (!obs.active) continue;
    if (EventLike(rule->kind) && done.contains(key)) continue;  // fired once, for good
    auto [it, fresh] = incidents.try_emplace(key, Incident{.since = now});
    it->second.last = obs;
    if (!it->second.fired && now - it->second.since >= rule->for_duration) {
      it->second.fired = true;
      events.push_back(event(key, it->second, "firing"));
      if (EventLike(rule->kind)) {
        done[key] = true;
        incidents.erase(it);
      }
    }
  }
  for (auto it = incidents.begin(); it != incidents.end();) {
    auto obs = seen.find(it->first);
    if (obs != seen.end() && obs->second.active) {
      ++it;
      continue;
    }
    if (it->second.fired) events.push_back(event(it->first, it->second, "resolved"));
    it = incidents.erase(it);
  }
  return events;
}

std::vector<AlertEvent> AlertEngine::Firing() const {
  std::vector<AlertEvent> out;
  for (const AlertRule& rule : rules_) {
    auto incidents = incidents_.find(rule.name);
    if (incidents == incidents_.end()) continue;
    for (const auto& [key, in] : incidents->second) {
      if (!in.fired) continue;
      out.push_back({.rule = rule.name,
                     .kind = AlertKindName(rule.kind),
                     .key = key,
                     .state = "firing",
                     .message = in.last.message,
                     .value = in.last.value,
                     .threshold = rule.threshold,
                     .since = in.since,
                     .time = in.since + rule.for_duration,
                     .webhook = rule.webhook});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const AlertEvent& a, const AlertEvent& b) { return a.since < b.since; });
  return out;
}

}  // namespace dlab
