#include "cli/credentials.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "common/testing/temp_dir.h"

namespace dlab {
namespace {

class CredentialsTest : public ::testing::Test {
 protected:
  // The config file with the given text and mode, as the CLI reads it.
  ConfigFile Config(const std::string& text, unsigned mode = 0600) {
    path_ = (dir_.path() / "config").string();
    std::ofstream(path_) << text;
    ::chmod(path_.c_str(), mode);
    auto config = ReadConfigFile(path_);
    EXPECT_TRUE(config.ok()) << config.status();
    return config.value_or(ConfigFile{});
  }

  testing::TempDir dir_;
  std::string path_;
};

constexpr char kConfigKey[] = "access_key_id: AKFILE\nsecret_access_key: file-secret\n";

TEST_F(CredentialsTest, NoneAnywhereMeansUnsigned) {
  auto key = ResolveCredentials(IdentitySources{}, ConfigFile{});
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_FALSE(key->has_value());
  key = ResolveCredentials(IdentitySources{.env_key_id = "", .env_secret = ""},
                           Config("url: http://a:1\n"));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_FALSE(key->has_value());
}

TEST_F(CredentialsTest, EnvironmentWinsOverTheConfigFile) {
  auto key = ResolveCredentials(IdentitySources{.env_key_id = "AKENV", .env_secret = "env-secret"},
                                Config(kConfigKey));
  ASSERT_TRUE(key.ok() && key->has_value()) << key.status();
  EXPECT_EQ((*key)->key_id, "AKENV");
  EXPECT_EQ((*key)->secret, "env-secret");
}

TEST_F(CredentialsTest, ConfigFileKey) {
  auto key = ResolveCredentials(IdentitySources{}, Config(kConfigKey));
  ASSERT_TRUE(key.ok() && key->has_value()) << key.status();
  EXPECT_EQ((*key)->key_id, "AKFILE");
  EXPECT_EQ((*key)->secret, "file-secret");
}

TEST_F(CredentialsTest, HalfAKeyNamesWhatIsMissing) {
  auto key = ResolveCredentials(IdentitySources{.env_key_id = "AKENV"}, Config(kConfigKey));
  EXPECT_EQ(key.status(), absl::InvalidArgumentError(
                              "environment: DLAB_ACCESS_KEY_ID is set but DLAB_SECRET_ACCESS_KEY "
                              "is not; an access key needs both"));
  key = ResolveCredentials(IdentitySources{.env_secret = "s"}, ConfigFile{});
  EXPECT_NE(key.status().message().find("DLAB_ACCESS_KEY_ID is not"), absl::string_view::npos)
      << key.status();
  key = ResolveCredentials(IdentitySources{}, Config("secret_access_key: abc\n"));
  EXPECT_EQ(key.status(),
            absl::InvalidArgumentError(path_ + ": secret_access_key is set but "
                                               "access_key_id is not; an access key needs "
                                               "both"));
}

TEST_F(CredentialsTest, GroupReadableSecretIsRefusedUnlessTheEnvironmentHasAKey) {
  auto key = ResolveCredentials(IdentitySources{}, Config(kConfigKey, 0644));
  EXPECT_EQ(key.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(key.status().message().find("chmod 600 " + path_), absl::string_view::npos)
      << key.status();
  key = ResolveCredentials(IdentitySources{.env_key_id = "AKENV", .env_secret = "env-secret"},
                           Config(kConfigKey, 0644));
  ASSERT_TRUE(key.ok() && key->has_value()) << key.status();
  EXPECT_EQ((*key)->key_id, "AKENV");
}

TEST_F(CredentialsTest, NonStringValuesAreRefused) {
  auto key =
      ResolveCredentials(IdentitySources{}, Config("access_key_id: 12\nsecret_access_key: abc\n"));
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CredentialsTest, TenantFromFlagThenEnvironmentThenConfigFile) {
  ConfigFile config = Config("tenant: from-file\n");
  EXPECT_EQ(*ResolveTenant({.tenant_flag = "from-flag", .env_tenant = "from-env"}, config),
            "from-flag");
  EXPECT_EQ(*ResolveTenant({.tenant_flag = "", .env_tenant = "from-env"}, config), "from-env");
  EXPECT_EQ(*ResolveTenant({}, config), "from-file");
  EXPECT_EQ(*ResolveTenant({}, ConfigFile{}), std::nullopt);
  EXPECT_EQ(ResolveTenant({}, Config("tenant: [a, b]\n")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CredentialsTest, EnvironmentIsReadFromTheProcess) {
  ::setenv("DLAB_ACCESS_KEY_ID", "AKPROC", 1);
  ::setenv("DLAB_SECRET_ACCESS_KEY", "proc-secret", 1);
  ::setenv("DLAB_TENANT", "proc-tenant", 1);
  IdentitySources sources = IdentitySourcesFromEnvironment(std::nullopt);
  ::unsetenv("DLAB_ACCESS_KEY_ID");
  ::unsetenv("DLAB_SECRET_ACCESS_KEY");
  ::unsetenv("DLAB_TENANT");
  EXPECT_EQ(sources.env_key_id, "AKPROC");
  EXPECT_EQ(sources.env_secret, "proc-secret");
  EXPECT_EQ(*ResolveTenant(sources, ConfigFile{}), "proc-tenant");
}

}  // namespace
}  // namespace dlab
