// The modeled cluster of a simulation: --cluster NODESxGPUS[:TYPE] (alike nodes) or a node file
// (Alibaba's sn,cpu_milli,memory_mib,gpu,model). Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sched/scheduler.h"

namespace dlab::sim {

// What a node of NODESxGPUS has besides its GPUs: enough that GPUs are the binding resource.
inline constexpr int64_t kNodeCpuMillisPerGpu = 8000;
inline constexpr int64_t kNodeMemoryBytesPerGpu = int64_t{64} << 30;

// "NxG" or "NxG:TYPE" (N >= 1 nodes of G >= 1 GPUs, of TYPE when given); anything else is taken
// as the path of a node file. InvalidArgument quoting a malformed NxG spec; the node file's
// errors otherwise (NotFound when it does not exist).
absl::StatusOr<std::vector<NodeCapacity>> ParseCluster(std::string_view spec);

// A node file: columns sn, cpu_milli, memory_mib, gpu, model (the GPU type). InvalidArgument
// naming the line of a bad row.
absl::StatusOr<std::vector<NodeCapacity>> ParseNodeFile(std::string_view text, std::string source);

int TotalGpus(const std::vector<NodeCapacity>& nodes);

}  // namespace dlab::sim
