// Alerts: rules from the server config, evaluated against observations (telemetry, job and
// node states), each incident firing once and resolving once. The engine is pure state: what
// to observe and where to deliver (webhook.h) is the caller's. Thread-compatible (one
// evaluating thread, or a lock around it).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json_fwd.hpp"

namespace dlab {

// What a rule watches. Each kind names the key of its incidents (a GPU, a job, a node, a
// tenant) and what value it compares with the threshold.
enum class AlertKind {
  kGpuTemperatureAbove,  // key "node/gpu N", value °C; fires when value > threshold
  kJobGpuIdleBelow,      // key "job N", value: mean utilisation % of its GPUs; value < threshold
  kJobFailed,            // key "job N"; fires when the job ends FAILED (never resolves)
  kNodeLost,             // key "node NAME"; fires while the node is lost
  kTenantAtQuota,        // key "tenant NAME"; fires while a tenant's use is at its quota
};

struct AlertRule {
  std::string name;
  AlertKind kind = AlertKind::kJobFailed;
  double threshold = 0;
  absl::Duration for_duration = absl::ZeroDuration();  // condition must hold this long
  std::string webhook;                                 // URL ("" : shown only, not sent)
};

// alerts: {rules: [{name, kind, threshold, for, webhook}, ...]} -> rules. InvalidArgument
// naming the field ("alerts.rules[1].kind: ...").
absl::StatusOr<std::vector<AlertRule>> ParseAlertRules(const nlohmann::json& alerts);
std::string AlertKindName(AlertKind kind);  // "gpu_temperature_above", ...

// One thing the caller saw for a rule's key at a moment: whether the rule's condition holds.
struct AlertObservation {
  bool active = false;
  double value = 0;     // what was compared (°C, %), for the message
  std::string message;  // human-readable, e.g. "GPU 0 of node-1 at 91 °C (limit 85)"
};

// A transition to deliver and show.
struct AlertEvent {
  std::string rule;
  std::string kind;
  std::string key;
  std::string state;  // "firing" or "resolved"
  std::string message;
  double value = 0;
  double threshold = 0;
  absl::Time since;  // when the condition began to hold
  absl::Time time;   // of this transition
  std::string webhook;
};

// The body a webhook receives (JSON).
nlohmann::json AlertEventJson(const AlertEvent& event);

class AlertEngine {
 public:
  explicit AlertEngine(std::vector<AlertRule> rules);

  const std::vector<AlertRule>& rules() const { return rules_; }

  // Everything seen for rule `rule` at `now`, by key. A key not in the map has its condition
  // false. Returns the transitions: firing once the condition has held for `for`, resolved
  // when it stops holding after having fired (a condition that clears before `for` fires
  // nothing). Event-like kinds (job_failed) fire once per key and never resolve.
  std::vector<AlertEvent> Observe(const std::string& rule,
                                  const std::map<std::string, AlertObservation>& seen,
                                  absl::Time now);

  // The incidents firing now, oldest first.
  std::vector<AlertEvent> Firing() const;

 private:
  struct Incident {
    absl::Time since;
    bool fired = false;
    AlertObservation last;
  };
  std::vector<AlertRule> rules_;
  std::map<std::string, std::map<std::string, Incident>> incidents_;  // rule -> key -> incident
  std::map<std::string, std::map<std::string, bool>> done_;  // rule -> keys of events fired
};

}  // namespace dlab
