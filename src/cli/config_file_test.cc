#include "cli/config_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/file_util.h"
#include "common/testing/temp_dir.h"

namespace dlab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

unsigned Mode(const fs::path& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

void Write(const fs::path& path, const std::string& text, unsigned mode) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
}

std::string Read(const fs::path& path) { return ReadFile(path.string()).value_or("(unreadable)"); }

const ConfigUpdate kLogin = {.set = {{"url", "http://gpu-box:8080"},
                                     {"access_key_id", "AKAAAAAAAAAAAAAAAAAA"},
                                     {"secret_access_key", "s3cr3t-_s3cr3t"}}};

TEST(ConfigFileTest, AbsentFileReadsAsEmpty) {
  testing::TempDir dir;
  auto config = ReadConfigFile((dir.path() / "dlab" / "config").string());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->exists);
  EXPECT_EQ(config->values, json::object());
}

TEST(ConfigFileTest, LoginCreatesAPrivateFileInAPrivateDirectory) {
  testing::TempDir dir;
  fs::path path = dir.path() / "xdg" / "dlab" / "config";
  ASSERT_TRUE(UpdateConfigFile(path.string(), kLogin).ok());
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_EQ(Mode(path.parent_path()), 0700u);
  auto config = ReadConfigFile(path.string());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->values, (json{{"url", "http://gpu-box:8080"},
                                  {"access_key_id", "AKAAAAAAAAAAAAAAAAAA"},
                                  {"secret_access_key", "s3cr3t-_s3cr3t"}}));
  EXPECT_EQ(config->permissions, 0600u);
  EXPECT_TRUE(CheckSecretIsPrivate(*config).ok());
  // No temporary file is left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(path.parent_path()), fs::directory_iterator()), 1);
}

TEST(ConfigFileTest, UpdateKeepsOtherKeysAndCommentsAndTightensTheMode) {
  testing::TempDir dir;
  fs::path path = dir.path() / "dlab" / "config";
  Write(path,
        "# my cluster\n"
        "url: http://old-box:1/   # the old one\n"
        "editor: vim\n"
        "profiles:\n"
        "  gpu: {url: http://gpu:1}\n"
        "secret_access_key: |\n"
        "  old-secret\n",
        0644);
  ASSERT_TRUE(UpdateConfigFile(path.string(), kLogin).ok());
  EXPECT_EQ(Read(path),
            "# my cluster\n"
            "url: \"http://gpu-box:8080\"\n"
            "editor: vim\n"
            "profiles:\n"
            "  gpu: {url: http://gpu:1}\n"
            "secret_access_key: \"s3cr3t-_s3cr3t\"\n"
            "access_key_id: \"AKAAAAAAAAAAAAAAAAAA\"\n");
  EXPECT_EQ(Mode(path), 0600u);
}

TEST(ConfigFileTest, LogoutRemovesOnlyTheCredentials) {
  testing::TempDir dir;
  fs::path path = dir.path() / "dlab" / "config";
  Write(path,
        "url: http://gpu-box:8080\naccess_key_id: AKAAAAAAAAAAAAAAAAAA\n"
        "secret_access_key: abc\ntenant: vision\n",
        0600);
  ASSERT_TRUE(
      UpdateConfigFile(path.string(), {.remove = {"access_key_id", "secret_access_key"}}).ok());
  EXPECT_EQ(Read(path), "url: http://gpu-box:8080\ntenant: vision\n");
}

TEST(ConfigFileTest, JsonConfigIsRewrittenAsYamlWithAllItsKeys) {
  testing::TempDir dir;
  fs::path path = dir.path() / "dlab" / "config";
  Write(path, R"({"url": "http://a:1", "retries": 3, "odd key": [1, "x"]})", 0600);
  ASSERT_TRUE(UpdateConfigFile(path.string(), {.set = {{"tenant", "vision"}}}).ok());
  auto config = ReadConfigFile(path.string());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->values, (json{{"url", "http://a:1"},
                                  {"retries", 3},
                                  {"odd key", json::array({1, "x"})},
                                  {"tenant", "vision"}}));
}

TEST(ConfigFileTest, ValuesThatNeedQuotingRoundTrip) {
  std::string tricky = "a: #b \"c\" \\d 'e'\t\xc3\xa9";
  auto text = EditConfigText("", {.set = {{"secret_access_key", tricky}, {"tenant", "123"}}});
  ASSERT_TRUE(text.ok()) << text.status();
  testing::TempDir dir;
  fs::path path = dir.path() / "config";
  Write(path, *text, 0600);
  auto config = ReadConfigFile(path.string());
  ASSERT_TRUE(config.ok()) << config.status() << "\n" << *text;
  EXPECT_EQ(config->values["secret_access_key"], tricky);
  EXPECT_EQ(config->values["tenant"], "123");  // stays a string
}

TEST(ConfigFileTest, NotAMappingIsRefused) {
  EXPECT_EQ(EditConfigText("- a\n- b\n", kLogin).status().code(),
            absl::StatusCode::kInvalidArgument);
  testing::TempDir dir;
  fs::path path = dir.path() / "config";
  Write(path, "url: [unclosed\n", 0600);
  absl::Status status = UpdateConfigFile(path.string(), kLogin);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find(path.string()), absl::string_view::npos) << status;
  EXPECT_EQ(Read(path), "url: [unclosed\n");  // left alone
}

TEST(ConfigFileTest, SecretReadableByOthersIsRefused) {
  testing::TempDir dir;
  fs::path path = dir.path() / "config";
  Write(path, "access_key_id: AK1\nsecret_access_key: abc\n", 0640);
  auto config = ReadConfigFile(path.string());
  ASSERT_TRUE(config.ok()) << config.status();
  absl::Status status = CheckSecretIsPrivate(*config);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("(mode 0640); run `chmod 600 " + path.string() + "`"),
            absl::string_view::npos)
      << status;

  Write(path, "url: http://a:1\n", 0644);  // nothing secret in it: fine
  config = ReadConfigFile(path.string());
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(CheckSecretIsPrivate(*config).ok());
}

}  // namespace
}  // namespace dlab
