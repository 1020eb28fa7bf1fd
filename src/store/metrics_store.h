// MetricsStore: training metrics (scalar series per job, keyed by metric name and step) and
// checkpoint records. It lives in its own SQLite database (the server opens
// <data_dir>/metrics.db), apart from the job Store, so that high-volume metric writes never
// contend with job state transitions. WAL mode with synchronous=NORMAL: a committed write
// survives the process being killed, but the last transactions may be lost on a power failure or
// kernel crash (power-loss durability is traded for ingestion speed; metrics are re-sent or
// re-read from TensorBoard files by a resumed job). Thread-safe: one connection behind a mutex.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace dlab {

// Metric names under this prefix are dlab's own (the monitor records a running job's GPU
// utilisation as system/gpu_utilization_pct, see docs/monitoring.md). Jobs cannot report them:
// the metrics route refuses them and TensorBoard ingestion skips them, so such a series is
// always dlab's measurement.
inline constexpr char kSystemMetricPrefix[] = "system/";

struct MetricValue {
  std::string name;
  double value = 0;
};

// The values of one training step.
struct MetricReport {
  int64_t step = 0;
  double time = 0;  // Unix seconds
  std::vector<MetricValue> values;
};

struct MetricPoint {
  int64_t step = 0;
  double time = 0;  // Unix seconds
  double value = 0;
};

struct MetricSeries {
  std::string name;
  int64_t count = 0;                // points stored
  std::vector<MetricPoint> points;  // step order, downsampled
  MetricPoint latest;               // the point with the highest step
};

struct CheckpointRecord {
  int64_t id = 0;
  int64_t job_id = 0;
  int attempt = 0;
  int64_t step = 0;
  std::string path;
  std::map<std::string, double> metrics;
  absl::Time time = absl::InfinitePast();  // InfinitePast: now, when added
};

class MetricsStore {
 public:
  virtual ~MetricsStore() = default;

  // Opens (creating if needed) the SQLite database at path and migrates it to the current
  // schema. Unavailable when the file cannot be opened or is not a dlab metrics database.
  static absl::StatusOr<std::unique_ptr<MetricsStore>> OpenSqlite(const std::string& path);

  // Writes all reports in one transaction and returns the number of values written.
  // Idempotent: (job, name, step) is unique and a repeat overwrites the earlier value (a resumed
  // attempt that redoes a step replaces it). InvalidArgument (nothing written) for a negative
  // step, an empty name or a value that is not finite; Unavailable when the database fails.
  virtual absl::StatusOr<int64_t> Append(int64_t job_id, int attempt,
                                         const std::vector<MetricReport>& reports) = 0;

  // The series of a job, sorted by name; names empty: every metric of the job. Names without
  // points are left out. max_points > 0 downsamples each series to at most max_points points by
  // min/max per bucket: the first and last points are kept, the points between them are split
  // into (max_points - 2) / 2 buckets of consecutive steps, and each bucket keeps its lowest and
  // its highest value, so spikes survive. Unavailable when the database fails.
  virtual absl::StatusOr<std::vector<MetricSeries>> Series(int64_t job_id,
                                                           const std::vector<std::string>& names,
                                                           int max_points) = 0;

  // Records a checkpoint, assigning its id (and its time when unset). The same checkpoint
  // (attempt, step and path) as the newest one is not recorded twice: that one is returned.
  // InvalidArgument for an empty path or a metric value that is not finite; Unavailable when
  // the database fails.
  virtual absl::StatusOr<CheckpointRecord> AddCheckpoint(const CheckpointRecord& record) = 0;
  // Oldest first.
  virtual absl::StatusOr<std::vector<CheckpointRecord>> ListCheckpoints(int64_t job_id) = 0;
  // The most recently recorded checkpoint of the job; nullopt when it has none.
  virtual absl::StatusOr<std::optional<CheckpointRecord>> LatestCheckpoint(int64_t job_id) = 0;
};

// Downsamples points (in step order) to at most max_points as MetricsStore::Series describes;
// max_points <= 0 keeps all. Exposed for tests and for other readers of series.
std::vector<MetricPoint> DownsampleMinMax(const std::vector<MetricPoint>& points, int max_points);

}  // namespace dlab
