// Linux control groups for the local backend: where the cpu and memory controllers are mounted
// (v2, or v1 as on hybrid hosts) and the cgroup of one attempt, created and removed by dlab-shim.
// Never fatal: what could not be enforced is reported in notes. Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace dlab {

enum class CgroupVersion { kNone, kV1, kV2 };

struct CgroupMounts {
  CgroupVersion version = CgroupVersion::kNone;
  // The hierarchy roots holding each controller; empty when it is not available. On v2 both
  // are the unified root.
  std::string cpu_root;
  std::string memory_root;
};

// v2 when fs_root/cgroup.controllers exists, otherwise v1 (cpu,cpuacct or cpu, and memory).
CgroupMounts DetectCgroupMounts(const std::string& fs_root = "/sys/fs/cgroup");

struct AttemptCgroupOptions {
  std::string fs_root = "/sys/fs/cgroup";
  bool disabled = false;  // notes then say "not enforced: cgroups disabled"
};

struct CgroupLimits {
  int64_t cpu_millis = 0;    // 0: no limit
  int64_t memory_bytes = 0;  // 0: no limit
};

// The cgroup "dlab/<name>" of one attempt, in every hierarchy that holds a controller.
class AttemptCgroup final {
 public:
  // Creates the groups and writes the limits. Never fails; notes() has one line per resource:
  // "cpu: 2 CPUs enforced (cgroup v1)" or "memory: not enforced: cannot write PATH: reason".
  static std::unique_ptr<AttemptCgroup> Create(absl::string_view name, const CgroupLimits& limits,
                                               const AttemptCgroupOptions& options);

  AttemptCgroup(const AttemptCgroup&) = delete;
  AttemptCgroup& operator=(const AttemptCgroup&) = delete;

  const std::vector<std::string>& notes() const { return notes_; }

  // Moves the calling process into the groups. Only open/write/close: safe in a forked child.
  void JoinFromChild() const noexcept;
  // The kernel's count of OOM kills in the memory group; -1 when unknown.
  int64_t OomKillCount() const;
  // SIGKILLs every process left in the groups; returns once they are empty or after ~2 s.
  void KillAll() const;
  // Removes the groups (waiting up to ~2 s for dying processes to leave).
  void Remove();

 private:
  AttemptCgroup() = default;

  CgroupVersion version_ = CgroupVersion::kNone;
  std::vector<std::string> dirs_;  // the groups created, one per hierarchy
  std::vector<std::string> procs_files_;
  std::string memory_dir_;  // empty: no memory group
  std::vector<std::string> notes_;
};

}  // namespace dlab
