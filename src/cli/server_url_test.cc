#include "cli/server_url.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace dlab {
namespace {

namespace fs = std::filesystem;

class ServerUrlTest : public testing::Test {
 protected:
  void SetUp() override {
    home_ =
        fs::temp_directory_path() / ("dlab-server-url-test-" + std::to_string(::getpid()) + "-" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(home_);
    fs::create_directories(home_);
  }
  void TearDown() override { fs::remove_all(home_); }

  void WriteConfig(const fs::path& dir, const std::string& text) {
    fs::create_directories(dir / "dlab");
    std::ofstream(dir / "dlab" / "config") << text;
  }

  fs::path home_;
};

TEST_F(ServerUrlTest, DefaultWhenNothingIsSet) {
  EXPECT_EQ(*ResolveServerUrl(UrlSources{.home = home_.string()}), "http://127.0.0.1:8080");
  EXPECT_EQ(*ResolveServerUrl(UrlSources{}), "http://127.0.0.1:8080");
}

TEST_F(ServerUrlTest, ConfigFileUnderHome) {
  WriteConfig(home_ / ".config", "# my cluster\nurl: http://gpu-box:9000/\n");
  EXPECT_EQ(*ResolveServerUrl(UrlSources{.home = home_.string()}), "http://gpu-box:9000");
}

TEST_F(ServerUrlTest, XdgConfigHomeWinsOverHome) {
  WriteConfig(home_ / ".config", "url: http://from-home:1\n");
  WriteConfig(home_ / "xdg", "url: http://from-xdg:2\n");
  EXPECT_EQ(*ResolveServerUrl(
                UrlSources{.xdg_config_home = (home_ / "xdg").string(), .home = home_.string()}),
            "http://from-xdg:2");
}

TEST_F(ServerUrlTest, EnvironmentWinsOverConfigFile) {
  WriteConfig(home_ / ".config", "url: http://from-file:1\n");
  EXPECT_EQ(*ResolveServerUrl(UrlSources{.env_url = "http://from-env:2", .home = home_.string()}),
            "http://from-env:2");
}

TEST_F(ServerUrlTest, FlagWinsOverEverything) {
  WriteConfig(home_ / ".config", "url: http://from-file:1\n");
  EXPECT_EQ(
      *ResolveServerUrl(UrlSources{
          .flag = "http://from-flag:3", .env_url = "http://from-env:2", .home = home_.string()}),
      "http://from-flag:3");
}

TEST_F(ServerUrlTest, EmptyValuesDoNotCount) {
  WriteConfig(home_ / ".config", "url: http://from-file:1\n");
  EXPECT_EQ(*ResolveServerUrl(UrlSources{
                .flag = "", .env_url = "", .xdg_config_home = "", .home = home_.string()}),
            "http://from-file:1");
}

TEST_F(ServerUrlTest, ConfigFileWithoutUrlFallsBackToDefault) {
  WriteConfig(home_ / ".config", "other: 1\n");
  EXPECT_EQ(*ResolveServerUrl(UrlSources{.home = home_.string()}), "http://127.0.0.1:8080");
}

TEST_F(ServerUrlTest, BrokenConfigFileIsReportedWithItsPath) {
  WriteConfig(home_ / ".config", "url: [unclosed\n");
  absl::StatusOr<std::string> url = ResolveServerUrl(UrlSources{.home = home_.string()});
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(url.status().message().find(".config/dlab/config"), std::string::npos) << url.status();
}

TEST_F(ServerUrlTest, EnvironmentIsReadFromTheProcess) {
  ::setenv("DLAB_URL", "http://env-box:7", 1);
  UrlSources sources = UrlSourcesFromEnvironment(std::nullopt);
  ::unsetenv("DLAB_URL");
  EXPECT_EQ(*ResolveServerUrl(sources), "http://env-box:7");
}

}  // namespace
}  // namespace dlab
