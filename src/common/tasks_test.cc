#include "common/tasks.h"

#include <gtest/gtest.h>

#include "common/job_spec.h"
#include "common/yaml_json.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

JobSpec Spec(absl::string_view yaml) {
  auto j = ParseYamlOrJson(yaml);
  EXPECT_TRUE(j.ok());
  auto spec = ParseJobSpec(*j);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

TEST(TasksTest, PlainJobIsOneTask) {
  auto tasks = ExpandTasks(Spec("name: a\ncommand: [x]\nresources: {cpus: 2}\n"));
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].rank, 0);
  EXPECT_EQ(tasks[0].resources.cpu_millis, 2000);
  EXPECT_EQ(tasks[0].command, std::vector<std::string>{"x"});
}

TEST(TasksTest, TorchContractOnOneNode) {
  JobSpec spec = Spec("name: a\ncommand: [x]\ntasks: 3\nresources: {gpus: 1}\n");
  auto tasks = ExpandTasks(spec);
  ASSERT_EQ(tasks.size(), 3u);
  GangPlacement p{.hosts = {"127.0.0.1", "127.0.0.1", "127.0.0.1"},
                  .master_port = 40001,
                  .gpus = {{2}, {0}, {3}},
                  .hostfile = "/a/hostfile"};
  auto env = TaskEnvironments(tasks, p);
  ASSERT_EQ(env.size(), 3u);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(env[r]["RANK"], std::to_string(r));
    EXPECT_EQ(env[r]["LOCAL_RANK"], std::to_string(r));
    EXPECT_EQ(env[r]["WORLD_SIZE"], "3");
    EXPECT_EQ(env[r]["LOCAL_WORLD_SIZE"], "3");
    EXPECT_EQ(env[r]["NODE_RANK"], "0");
    EXPECT_EQ(env[r]["MASTER_ADDR"], "127.0.0.1");
    EXPECT_EQ(env[r]["MASTER_PORT"], "40001");
    EXPECT_EQ(env[r]["DLAB_HOSTFILE"], "/a/hostfile");
    EXPECT_FALSE(env[r].contains("TF_CONFIG"));
  }
  EXPECT_EQ(env[0]["CUDA_VISIBLE_DEVICES"], "2");
  EXPECT_EQ(env[2]["CUDA_VISIBLE_DEVICES"], "3");
  EXPECT_EQ(HostfileText(p.hosts), "127.0.0.1 slots=3\n");
}

TEST(TasksTest, LocalRanksAcrossNodes) {
  std::vector<TaskInfo> tasks(4);
  for (int r = 0; r < 4; ++r) tasks[r].rank = tasks[r].role_index = r;
  GangPlacement p{.hosts = {"n1", "n1", "n2", "n2"}, .master_port = 29500};
  auto env = TaskEnvironments(tasks, p);
  EXPECT_EQ(env[2]["LOCAL_RANK"], "0");
  EXPECT_EQ(env[3]["LOCAL_RANK"], "1");
  EXPECT_EQ(env[3]["NODE_RANK"], "1");
  EXPECT_EQ(env[3]["LOCAL_WORLD_SIZE"], "2");
  EXPECT_EQ(env[3]["MASTER_ADDR"], "n1");
  EXPECT_EQ(HostfileText(p.hosts), "n1 slots=2\nn2 slots=2\n");
}

TEST(TasksTest, TfConfigForRoles) {
  JobSpec spec = Spec("name: a\ncommand: [w]\ntasks: {ps: 1, worker: 2}\n");
  auto tasks = ExpandTasks(spec);
  ASSERT_EQ(tasks.size(), 3u);
  EXPECT_EQ(tasks[0].role, "ps");
  EXPECT_EQ(tasks[2].role, "worker");
  EXPECT_EQ(tasks[2].role_index, 1);
  GangPlacement p{.hosts = {"h", "h", "h"}, .master_port = 1, .task_ports = {100, 101, 102}};
  auto env = TaskEnvironments(tasks, p);
  auto config = nlohmann::json::parse(env[2]["TF_CONFIG"]);
  EXPECT_EQ(config["cluster"]["ps"], nlohmann::json({"h:100"}));
  EXPECT_EQ(config["cluster"]["worker"], nlohmann::json({"h:101", "h:102"}));
  EXPECT_EQ(config["task"]["type"], "worker");
  EXPECT_EQ(config["task"]["index"], 1);
  EXPECT_EQ(env[0]["DLAB_TASK_ROLE"], "ps");
  EXPECT_EQ(env[2]["DLAB_TASK_INDEX"], "1");
}

}  // namespace
}  // namespace dlab
