#include "sim/cluster_spec.h"

#include <charconv>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "sim/csv.h"

namespace dlab::sim {
namespace {

// Large enough for any real cluster (Alibaba's has 1,213 nodes and 6,212 GPUs); the scheduler
// keeps a few hundred bytes per node and per GPU.
constexpr int kMaxNodes = 100000;
constexpr int kMaxGpusPerNode = 1024;
constexpr int64_t kMaxGpus = 1000000;  // in all

NodeCapacity NodeOf(int gpus, const std::string& type, int64_t cpu_millis, int64_t memory_bytes) {
  NodeCapacity node{.cpu_millis = cpu_millis, .memory_bytes = memory_bytes};
  for (int i = 0; i < gpus; ++i) node.gpus.push_back({.index = i, .type = type, .model = type});
  return node;
}

bool ParseInt(std::string_view text, int* value) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

// Whether spec looks like NxG[:TYPE] at all: digits, then 'x'.
bool LooksLikeShape(std::string_view spec) {
  size_t x = spec.find('x');
  return x != std::string_view::npos && x > 0 &&
         spec.substr(0, x).find_first_not_of("0123456789") == std::string_view::npos;
}

absl::StatusOr<std::vector<NodeCapacity>> ParseShape(std::string_view spec) {
  size_t x = spec.find('x');
  size_t colon = spec.find(':');
  std::string_view gpus_text =
      spec.substr(x + 1, colon == std::string_view::npos ? std::string_view::npos : colon - x - 1);
  std::string type = colon == std::string_view::npos ? "" : std::string(spec.substr(colon + 1));
  int nodes = 0, gpus = 0;
  if (!ParseInt(spec.substr(0, x), &nodes) || !ParseInt(gpus_text, &gpus) || nodes < 1 ||
      nodes > kMaxNodes || gpus < 1 || gpus > kMaxGpusPerNode || int64_t{nodes} * gpus > kMaxGpus ||
      (colon != std::string_view::npos && type.empty())) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cluster: expected NODESxGPUS[:TYPE] (e.g. 16x8 or 4x8:H100; 1 to ",
                     kMaxNodes, " nodes of 1 to ", kMaxGpusPerNode, " GPUs, at most ", kMaxGpus,
                     " GPUs in all) or a node file, got '", std::string(spec), "'"));
  }
  NodeCapacity node =
      NodeOf(gpus, type, gpus * kNodeCpuMillisPerGpu, gpus * kNodeMemoryBytesPerGpu);
  return std::vector<NodeCapacity>(nodes, node);
}

absl::StatusOr<NodeCapacity> ReadNode(const CsvFile& file, const CsvLine& line,
                                      const std::vector<size_t>& columns) {
  int64_t values[3];  // cpu_milli, memory_mib, gpu
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<int64_t> value = IntField(file, line, columns[i]);
    if (!value.ok()) return value.status();
    int64_t limit = i == 2 ? kMaxGpusPerNode : int64_t{1} << 40;
    if (*value < 0 || *value > limit) {
      return file.Error(
          line, absl::StrCat(file.header[columns[i]], ": must be 0 to ", limit, ", got ", *value));
    }
    values[i] = *value;
  }
  return NodeOf(static_cast<int>(values[2]), line.fields[columns[3]], values[0], values[1] << 20);
}

}  // namespace

absl::StatusOr<std::vector<NodeCapacity>> ParseNodeFile(std::string_view text, std::string source) {
  absl::StatusOr<CsvFile> file = ParseCsv(text, std::move(source));
  if (!file.ok()) return file.status();
  std::vector<size_t> columns;
  for (const char* name : {"cpu_milli", "memory_mib", "gpu", "model"}) {
    auto column = file->Column(name);
    if (!column) {
      return absl::InvalidArgumentError(
          absl::StrCat(file->source, ":1: no column ", name,
                       " (a node file has the columns sn,cpu_milli,memory_mib,gpu,model)"));
    }
    columns.push_back(*column);
  }
  std::vector<NodeCapacity> nodes;
  int64_t gpus = 0;
  for (const CsvLine& line : file->lines) {
    absl::StatusOr<NodeCapacity> node = ReadNode(*file, line, columns);
    if (!node.ok()) return node.status();
    gpus += static_cast<int64_t>(node->gpus.size());
    if (nodes.size() == kMaxNodes || gpus > kMaxGpus) {
      return file->Error(
          line, absl::StrCat("more than ", kMaxNodes, " nodes or ", kMaxGpus, " GPUs in all"));
    }
    nodes.push_back(*std::move(node));
  }
  if (nodes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(file->source, ": no nodes"));
  }
  return nodes;
}

absl::StatusOr<std::vector<NodeCapacity>> ParseCluster(std::string_view spec) {
  if (LooksLikeShape(spec)) return ParseShape(spec);
  std::string path(spec);
  absl::StatusOr<std::string> text = ReadFile(path);
  if (absl::IsNotFound(text.status())) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cluster: expected NODESxGPUS[:TYPE] (e.g. 16x8) or a node file, got '",
                     path, "' (no such file)"));
  }
  if (!text.ok()) return text.status();
  return ParseNodeFile(*text, path);
}

int TotalGpus(const std::vector<NodeCapacity>& nodes) {
  int total = 0;
  for (const NodeCapacity& node : nodes) total += static_cast<int>(node.gpus.size());
  return total;
}

}  // namespace dlab::sim
