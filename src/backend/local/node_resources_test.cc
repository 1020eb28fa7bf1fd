#include "backend/local/node_resources.h"

#include <gtest/gtest.h>

#include <string>

namespace dlab {
namespace {

TEST(GpuTypeFromModelTest, NamesTheFamilyUsersAskFor) {
  const std::pair<std::string, std::string> cases[] = {
      {"NVIDIA H100 80GB HBM3", "H100"},
      {"Tesla V100-SXM2-16GB", "V100"},
      {"NVIDIA A100-SXM4-40GB", "A100"},
      {"NVIDIA GeForce RTX 4090", "RTX4090"},
      {"NVIDIA H200", "H200"},
      {"NVIDIA L4", "L4"},
      {"Tesla T4", "T4"},
      {"NVIDIA RTX A6000", "RTXA6000"},
      {"NVIDIA GeForce GTX 1080 Ti", "GTX1080"},
      {"NVIDIA", ""},
      {"", ""},
  };
  for (const auto& [model, type] : cases) {
    EXPECT_EQ(GpuTypeFromModel(model), type) << model;
  }
}

TEST(NodeResourcesTest, ReportsUsableCpuAndMemory) {
  EXPECT_GE(DetectCpuMillis(), 1);
  EXPECT_GT(DetectMemoryBytes(), int64_t{64} << 20);
}

TEST(NodeResourcesTest, GpuDiscoveryEitherListsGpusOrSaysWhyNot) {
  absl::StatusOr<std::vector<GpuDevice>> gpus = DiscoverNvmlGpus();
  if (!gpus.ok()) {
    EXPECT_EQ(gpus.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_FALSE(gpus.status().message().empty());
    return;
  }
  ASSERT_FALSE(gpus->empty());
  for (size_t i = 0; i < gpus->size(); ++i) {
    const GpuDevice& gpu = (*gpus)[i];
    EXPECT_EQ(gpu.index, static_cast<int>(i));
    EXPECT_FALSE(gpu.uuid.empty());
    EXPECT_EQ(gpu.type, GpuTypeFromModel(gpu.model));
    EXPECT_GT(gpu.memory_bytes, 0);
  }
}

}  // namespace
}  // namespace dlab
