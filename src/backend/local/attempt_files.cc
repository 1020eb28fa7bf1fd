#include "backend/local/attempt_files.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using nlohmann::json;

absl::StatusOr<json> ReadJson(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrCat("cannot parse ", path));
  }
  return j;
}

// Converts a parsed document into T, turning library exceptions into DataLoss.
template <typename T, typename Fn>
absl::StatusOr<T> Decode(const std::string& path, Fn fn) {
  absl::StatusOr<json> j = ReadJson(path);
  if (!j.ok()) return j.status();
  try {
    return fn(*j);
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("bad content in ", path, ": ", e.what()));
  }
}

}  // namespace

std::string AttemptFile(absl::string_view dir, absl::string_view name) {
  return absl::StrCat(dir, "/", name);
}

absl::Status WriteLaunchSpec(const std::string& path, const LaunchSpec& spec) {
  json tasks = json::array();
  for (const TaskSpec& t : spec.tasks) {
    tasks.push_back({{"rank", t.rank},
                     {"argv", t.argv},
                     {"env", t.env},
                     {"log_path", t.log_path},
                     {"cpu_millis", t.cpu_millis},
                     {"memory_bytes", t.memory_bytes},
                     {"gpus", t.gpus},
                     {"auxiliary", t.auxiliary},
                     {"role", t.role},
                     {"role_index", t.role_index}});
  }
  json j = {{"job_id", spec.job_id},
            {"attempt", spec.attempt},
            {"workdir", spec.workdir},
            {"env", spec.env},
            {"log_path", spec.log_path},
            {"tasks", tasks},
            {"max_runtime_ms", spec.max_runtime_ms},
            {"kill_grace_ms", spec.kill_grace_ms},
            {"notify_socket", spec.notify_socket}};
  if (spec.slurm_steps) {
    const SlurmStepsSpec& s = *spec.slurm_steps;
    j["slurm_steps"] = {{"bin_dir", s.bin_dir},
                        {"gpu_type", s.gpu_type},
                        {"master_port", s.master_port},
                        {"task_ports", s.task_ports},
                        {"hostfile", s.hostfile}};
  }
  return WriteFileAtomically(path, j.dump(2) + "\n", {.sync = false});
}

absl::StatusOr<LaunchSpec> ReadLaunchSpec(const std::string& path) {
  return Decode<LaunchSpec>(path, [](const json& j) {
    LaunchSpec spec;
    spec.job_id = j.at("job_id").get<int64_t>();
    spec.attempt = j.at("attempt").get<int>();
    spec.workdir = j.at("workdir").get<std::string>();
    spec.env = j.at("env").get<std::map<std::string, std::string>>();
    spec.log_path = j.at("log_path").get<std::string>();
    for (const json& t : j.at("tasks")) {
      spec.tasks.push_back({.rank = t.at("rank").get<int>(),
                            .argv = t.at("argv").get<std::vector<std::string>>(),
                            .env = t.at("env").get<std::map<std::string, std::string>>(),
                            .log_path = t.at("log_path").get<std::string>(),
                            .cpu_millis = t.at("cpu_millis").get<int64_t>(),
                            .memory_bytes = t.at("memory_bytes").get<int64_t>(),
                            .gpus = t.at("gpus").get<std::vector<int>>(),
                            .auxiliary = t.value("auxiliary", false),
                            .role = t.value("role", ""),
                            .role_index = t.value("role_index", 0)});
    }
    spec.max_runtime_ms = j.at("max_runtime_ms").get<int64_t>();
    spec.kill_grace_ms = j.at("kill_grace_ms").get<int64_t>();
    spec.notify_socket = j.value("notify_socket", "");
    if (j.contains("slurm_steps")) {
      const json& s = j.at("slurm_steps");
      spec.slurm_steps = SlurmStepsSpec{.bin_dir = s.at("bin_dir").get<std::string>(),
                                        .gpu_type = s.at("gpu_type").get<std::string>(),
                                        .master_port = s.at("master_port").get<int>(),
                                        .task_ports = s.at("task_ports").get<std::vector<int>>(),
                                        .hostfile = s.at("hostfile").get<std::string>()};
    }
    return spec;
  });
}

absl::Status WriteStartedRecord(const std::string& path, const StartedRecord& record) {
  json j = {{"pid", record.pid},
            {"pgid", record.pgid},
            {"task_pids", record.task_pids},
            {"start_time_ms", record.start_time_ms},
            {"limit_notes", record.limit_notes}};
  return WriteFileAtomically(path, j.dump(2) + "\n", {.sync = false});
}

absl::StatusOr<StartedRecord> ReadStartedRecord(const std::string& path) {
  return Decode<StartedRecord>(path, [](const json& j) {
    StartedRecord record;
    record.pid = j.at("pid").get<int64_t>();
    record.pgid = j.at("pgid").get<int64_t>();
    record.task_pids = j.value("task_pids", std::vector<int64_t>{});
    record.start_time_ms = j.at("start_time_ms").get<int64_t>();
    record.limit_notes = j.value("limit_notes", std::vector<std::string>{});
    return record;
  });
}

absl::Status WriteExitRecord(const std::string& path, const ExitRecord& record) {
  json tasks = json::array();
  for (const TaskExit& t : record.tasks) {
    tasks.push_back({{"rank", t.rank},
                     {"exit_code", t.exit_code},
                     {"signal", t.signal},
                     {"end_reason", t.end_reason}});
  }
  json j = {{"exit_code", record.exit_code},
            {"signal", record.signal},
            {"end_reason", record.end_reason},
            {"message", record.message},
            {"end_time_ms", record.end_time_ms},
            {"limit_notes", record.limit_notes},
            {"tasks", tasks},
            {"failed_rank", record.failed_rank}};
  return WriteFileAtomically(path, j.dump(2) + "\n");
}

absl::StatusOr<ExitRecord> ReadExitRecord(const std::string& path) {
  return Decode<ExitRecord>(path, [](const json& j) {
    ExitRecord record;
    record.exit_code = j.at("exit_code").get<int>();
    record.signal = j.value("signal", "");
    record.end_reason = j.at("end_reason").get<std::string>();
    record.message = j.value("message", "");
    record.end_time_ms = j.at("end_time_ms").get<int64_t>();
    record.limit_notes = j.value("limit_notes", std::vector<std::string>{});
    for (const json& t : j.value("tasks", json::array())) {
      record.tasks.push_back({.rank = t.at("rank").get<int>(),
                              .exit_code = t.at("exit_code").get<int>(),
                              .signal = t.value("signal", ""),
                              .end_reason = t.value("end_reason", "")});
    }
    record.failed_rank = j.value("failed_rank", -1);
    return record;
  });
}

std::string NotifySocketName(absl::string_view canonical_data_dir) {
  uint64_t hash = 1469598103934665603ULL;  // FNV-1a: stable across builds and processes
  for (unsigned char c : canonical_data_dir) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return absl::StrFormat("dlab-%016x", hash);
}

void SendNotification(absl::string_view socket_name, absl::string_view attempt_dir) {
  if (socket_name.empty() || socket_name.size() + 1 > sizeof(sockaddr_un::sun_path)) return;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, socket_name.data(), socket_name.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + socket_name.size());
  (void)sendto(fd, attempt_dir.data(), attempt_dir.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&addr), len);
  close(fd);
}

}  // namespace dlab
