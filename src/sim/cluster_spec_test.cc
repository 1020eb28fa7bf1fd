#include "sim/cluster_spec.h"

#include <gtest/gtest.h>

namespace dlab::sim {
namespace {

TEST(ParseClusterTest, AlikeNodes) {
  auto nodes = ParseCluster("3x8:H100");
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  ASSERT_EQ(nodes->size(), 3u);
  EXPECT_EQ((*nodes)[2].gpus.size(), 8u);
  EXPECT_EQ((*nodes)[2].gpus[7].index, 7);
  EXPECT_EQ((*nodes)[2].gpus[7].type, "H100");
  EXPECT_EQ((*nodes)[0].cpu_millis, 8 * kNodeCpuMillisPerGpu);
  EXPECT_EQ((*nodes)[0].memory_bytes, 8 * kNodeMemoryBytesPerGpu);
  EXPECT_EQ(TotalGpus(*nodes), 24);
  auto pool = ParseCluster("1x4");
  ASSERT_TRUE(pool.ok());
  EXPECT_EQ(pool->size(), 1u);
  EXPECT_EQ((*pool)[0].gpus[0].type, "");
}

TEST(ParseClusterTest, RefusesMalformedSpecs) {
  // 1000x1024 is 1,024,000 GPUs in all.
  for (const char* bad : {"4x", "0x8", "4x0", "4xa", "4x8:", "4x8x2", "100001x1", "1000x1024"}) {
    auto nodes = ParseCluster(bad);
    ASSERT_FALSE(nodes.ok()) << bad;
    EXPECT_EQ(nodes.status().message(),
              std::string("--cluster: expected NODESxGPUS[:TYPE] (e.g. 16x8 or 4x8:H100; 1 to "
                          "100000 nodes of 1 to 1024 GPUs, at most 1000000 GPUs in all) or a node "
                          "file, got '") +
                  bad + "'");
  }
  EXPECT_EQ(ParseCluster("big").status().message(),
            "--cluster: expected NODESxGPUS[:TYPE] (e.g. 16x8) or a node file, got 'big' (no "
            "such file)");
}

TEST(ParseNodeFileTest, ReadsAlibabaNodes) {
  auto nodes = ParseNodeFile(
      "sn,cpu_milli,memory_mib,gpu,model\n"
      "n0,64000,262144,2,P100\n"
      "n1,96000,393216,8,G2\n",
      "nodes.csv");
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ((*nodes)[0].cpu_millis, 64000);
  EXPECT_EQ((*nodes)[0].memory_bytes, int64_t{262144} << 20);
  EXPECT_EQ((*nodes)[1].gpus.size(), 8u);
  EXPECT_EQ((*nodes)[1].gpus[0].type, "G2");
  EXPECT_EQ(TotalGpus(*nodes), 10);
}

TEST(ParseNodeFileTest, ErrorsNameTheLine) {
  EXPECT_EQ(ParseNodeFile("sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,-2,P100\n", "n.csv")
                .status()
                .message(),
            "n.csv:2: gpu: must be 0 to 1024, got -2");
  EXPECT_EQ(ParseNodeFile("sn,cpu_milli,gpu,model\n", "n.csv").status().message(),
            "n.csv:1: no column memory_mib (a node file has the columns "
            "sn,cpu_milli,memory_mib,gpu,model)");
  EXPECT_EQ(ParseNodeFile("sn,cpu_milli,memory_mib,gpu,model\n", "n.csv").status().message(),
            "n.csv: no nodes");
}

}  // namespace
}  // namespace dlab::sim
