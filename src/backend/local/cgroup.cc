#include "backend/local/cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "backend/local/attempt_files.h"
#include "common/quantity.h"

namespace dlab {
namespace {

constexpr int64_t kCpuPeriodUs = 100000;
constexpr auto kSettleTimeout = std::chrono::seconds(2);

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

absl::Status WriteCgroupFile(const std::string& path, absl::string_view value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  int err = errno;
  if (fd >= 0) {
    ssize_t n = write(fd, value.data(), value.size());
    err = errno;
    close(fd);
    if (n == static_cast<ssize_t>(value.size())) return absl::OkStatus();
  }
  return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(err)));
}

absl::Status MakeGroup(const std::string& dir) {
  if (mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", std::strerror(errno)));
}

std::string VersionLabel(CgroupVersion v) {
  return v == CgroupVersion::kV2 ? "(cgroup v2)" : "(cgroup v1)";
}

// 1000 -> "1 CPU", 2000 -> "2 CPUs", 1500 -> "1.5 CPUs".
std::string CpuCount(int64_t millis) {
  return absl::StrCat(static_cast<double>(millis) / 1000, millis == 1000 ? " CPU" : " CPUs");
}

std::string NotEnforced(absl::string_view resource, absl::string_view why) {
  return absl::StrCat(resource, ": not enforced: ", why);
}

// The value of "key N" in a flat-keyed cgroup file; -1 when absent.
int64_t ReadKeyedValue(const std::string& path, absl::string_view key) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return -1;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    absl::string_view rest = line;
    int64_t value = 0;
    if (absl::ConsumePrefix(&rest, key) && absl::ConsumePrefix(&rest, " ") &&
        absl::SimpleAtoi(rest, &value)) {
      return value;
    }
  }
  return -1;
}

}  // namespace

CgroupMounts DetectCgroupMounts(const std::string& fs_root) {
  CgroupMounts mounts;
  absl::StatusOr<std::string> controllers = ReadFile(fs_root + "/cgroup.controllers");
  if (controllers.ok()) {
    mounts.version = CgroupVersion::kV2;
    for (absl::string_view c : absl::StrSplit(*controllers, absl::ByAnyChar(" \n"))) {
      if (c == "cpu") mounts.cpu_root = fs_root;
      if (c == "memory") mounts.memory_root = fs_root;
    }
    return mounts;
  }
  for (const char* name : {"cpu,cpuacct", "cpu"}) {
    std::string root = absl::StrCat(fs_root, "/", name);
    if (Exists(root + "/cpu.cfs_quota_us")) {
      mounts.cpu_root = root;
      break;
    }
  }
  if (Exists(fs_root + "/memory/memory.limit_in_bytes")) mounts.memory_root = fs_root + "/memory";
  if (!mounts.cpu_root.empty() || !mounts.memory_root.empty()) mounts.version = CgroupVersion::kV1;
  return mounts;
}

std::unique_ptr<AttemptCgroup> AttemptCgroup::Create(absl::string_view name,
                                                     const CgroupLimits& limits,
                                                     const AttemptCgroupOptions& options) {
  std::unique_ptr<AttemptCgroup> group(new AttemptCgroup());
  if (options.disabled) {
    group->notes_ = {NotEnforced("cpu", "cgroups disabled"),
                     NotEnforced("memory", "cgroups disabled")};
    return group;
  }
  CgroupMounts mounts = DetectCgroupMounts(options.fs_root);
  group->version_ = mounts.version;
  bool v2 = mounts.version == CgroupVersion::kV2;

  // Creates parent/dlab/name under root, enabling the controller for children on v2, and
  // returns the group's directory.
  auto prepare = [&](const std::string& root, absl::string_view controller,
                     bool needed) -> absl::StatusOr<std::string> {
    if (root.empty()) {
      return absl::UnavailableError(
          mounts.version == CgroupVersion::kNone
              ? "no cgroup hierarchy found under " + options.fs_root
              : absl::StrCat("no cgroup ", v2 ? "v2" : "v1", " ", controller, " controller"));
    }
    std::string parent = root + "/dlab";
    std::string dir = absl::StrCat(parent, "/", name);
    for (const std::string& d : {parent, dir}) {
      if (d == dir && v2 && needed) {
        for (const std::string& p : {root, parent}) {
          absl::Status enabled =
              WriteCgroupFile(p + "/cgroup.subtree_control", absl::StrCat("+", controller));
          if (!enabled.ok()) return enabled;
        }
      }
      absl::Status made = MakeGroup(d);
      if (!made.ok()) return made;
    }
    return dir;
  };
  auto track = [&](const std::string& dir) {
    for (const std::string& d : group->dirs_) {
      if (d == dir) return;
    }
    group->dirs_.push_back(dir);
    group->procs_files_.push_back(dir + "/cgroup.procs");
  };

  absl::StatusOr<std::string> cpu_dir = prepare(mounts.cpu_root, "cpu", limits.cpu_millis > 0);
  if (cpu_dir.ok()) track(*cpu_dir);
  if (limits.cpu_millis <= 0) {
    group->notes_.push_back(NotEnforced("cpu", "no limit requested"));
  } else if (!cpu_dir.ok()) {
    group->notes_.push_back(NotEnforced("cpu", cpu_dir.status().message()));
  } else {
    int64_t quota = std::max<int64_t>(1000, limits.cpu_millis * kCpuPeriodUs / 1000);
    absl::Status set =
        v2 ? WriteCgroupFile(*cpu_dir + "/cpu.max", absl::StrCat(quota, " ", kCpuPeriodUs))
           : WriteCgroupFile(*cpu_dir + "/cpu.cfs_period_us", absl::StrCat(kCpuPeriodUs));
    if (set.ok() && !v2) {
      set = WriteCgroupFile(*cpu_dir + "/cpu.cfs_quota_us", absl::StrCat(quota));
    }
    group->notes_.push_back(set.ok() ? absl::StrCat("cpu: ", CpuCount(limits.cpu_millis),
                                                    " enforced ", VersionLabel(mounts.version))
                                     : NotEnforced("cpu", set.message()));
  }

  absl::StatusOr<std::string> mem_dir =
      prepare(mounts.memory_root, "memory", limits.memory_bytes > 0);
  if (mem_dir.ok()) {
    track(*mem_dir);
    group->memory_dir_ = *mem_dir;
  }
  if (limits.memory_bytes <= 0) {
    group->notes_.push_back(NotEnforced("memory", "no limit requested"));
  } else if (!mem_dir.ok()) {
    group->notes_.push_back(NotEnforced("memory", mem_dir.status().message()));
  } else {
    std::string bytes = absl::StrCat(limits.memory_bytes);
    absl::Status set =
        WriteCgroupFile(*mem_dir + (v2 ? "/memory.max" : "/memory.limit_in_bytes"), bytes);
    if (set.ok()) {
      // No swapping past the limit, where the kernel accounts swap; best effort.
      std::string swap_file = *mem_dir + (v2 ? "/memory.swap.max" : "/memory.memsw.limit_in_bytes");
      if (Exists(swap_file)) (void)WriteCgroupFile(swap_file, v2 ? "0" : bytes);
    }
    group->notes_.push_back(set.ok()
                                ? absl::StrCat("memory: ", FormatMemoryBytes(limits.memory_bytes),
                                               " enforced ", VersionLabel(mounts.version))
                                : NotEnforced("memory", set.message()));
  }
  return group;
}

void AttemptCgroup::JoinFromChild() const noexcept {
  for (const std::string& procs : procs_files_) {
    int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) continue;
    (void)!write(fd, "0", 1);
    close(fd);
  }
}

int64_t AttemptCgroup::OomKillCount() const {
  if (memory_dir_.empty()) return -1;
  return ReadKeyedValue(
      memory_dir_ + (version_ == CgroupVersion::kV2 ? "/memory.events" : "/memory.oom_control"),
      "oom_kill");
}

void AttemptCgroup::KillAll() const {
  if (dirs_.empty()) return;
  if (version_ == CgroupVersion::kV2) (void)WriteCgroupFile(dirs_[0] + "/cgroup.kill", "1");
  auto deadline = std::chrono::steady_clock::now() + kSettleTimeout;
  for (;;) {
    bool empty = true;
    for (const std::string& procs : procs_files_) {
      absl::StatusOr<std::string> pids = ReadFile(procs);
      if (!pids.ok()) continue;
      for (absl::string_view line : absl::StrSplit(*pids, '\n', absl::SkipEmpty())) {
        int pid = 0;
        if (absl::SimpleAtoi(line, &pid) && pid > 0) {
          empty = false;
          kill(pid, SIGKILL);
        }
      }
    }
    if (empty || std::chrono::steady_clock::now() > deadline) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void AttemptCgroup::Remove() {
  auto deadline = std::chrono::steady_clock::now() + kSettleTimeout;
  for (const std::string& dir : dirs_) {
    while (rmdir(dir.c_str()) != 0 && errno == EBUSY &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  dirs_.clear();
  procs_files_.clear();
  memory_dir_.clear();
}

}  // namespace dlab
