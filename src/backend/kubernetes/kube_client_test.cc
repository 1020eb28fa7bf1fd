#include "backend/kubernetes/kube_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace dlab {
namespace {

using ::testing::HasSubstr;

class KubeClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("kube_client_test." + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path dir_;
};

constexpr char kConfig[] = R"(
apiVersion: v1
kind: Config
current-context: dev
clusters:
  - name: prod
    cluster: {server: "https://prod:6443", certificate-authority: certs/ca.pem}
  - name: dev
    cluster: {server: "https://dev:6443", certificate-authority-data: "LS0tUEVNLS0t"}
users:
  - name: robot
    user: {token: abc123}
  - name: me
    user: {client-certificate: me.crt, client-key-data: "S0VZ"}
  - name: sso
    user: {exec: {command: kubelogin}}
contexts:
  - name: dev
    context: {cluster: dev, user: robot, namespace: ml}
  - name: prod
    context: {cluster: prod, user: me}
  - name: sso
    context: {cluster: prod, user: sso}
)";

TEST_F(KubeClientTest, AKubeconfigContextGivesServerCredentialsAndNamespace) {
  std::string path = Write("config", kConfig);
  auto dev = LoadKubeconfig(path);
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ(dev->server, "https://dev:6443");
  EXPECT_EQ(dev->namespace_, "ml");
  EXPECT_EQ(dev->token, "abc123");
  EXPECT_EQ(dev->ca_pem, "---PEM---");  // decoded from base64
  auto prod = LoadKubeconfig(path, "prod");
  ASSERT_TRUE(prod.ok()) << prod.status();
  EXPECT_EQ(prod->ca_file, (dir_ / "certs/ca.pem").string());  // relative to the file
  EXPECT_EQ(prod->client_cert_file, (dir_ / "me.crt").string());
  EXPECT_EQ(prod->client_key_pem, "KEY");
  EXPECT_THAT(LoadKubeconfig(path, "sso").status().message(), HasSubstr("exec plugin"));
  EXPECT_THAT(LoadKubeconfig(path, "nope").status().message(),
              HasSubstr("contexts has no entry named 'nope'"));
  EXPECT_TRUE(absl::IsNotFound(LoadKubeconfig((dir_ / "missing").string()).status()));
}

TEST_F(KubeClientTest, InClusterUsesTheServiceAccountFiles) {
  unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_TRUE(absl::IsFailedPrecondition(InClusterConnection(dir_.string()).status()));
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  EXPECT_THAT(InClusterConnection(dir_.string()).status().message(),
              HasSubstr("no service-account token"));
  Write("token", "tok\n");
  Write("ca.crt", "pem");
  Write("namespace", "dlab\n");
  auto c = InClusterConnection(dir_.string());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->token_file, (dir_ / "token").string());  // read again before each request
  EXPECT_EQ(c->ca_file, (dir_ / "ca.crt").string());
  EXPECT_EQ(c->namespace_, "dlab");
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
}

TEST(KubeClientErrors, AnUnreachableServerIsUnavailable) {
  KubeClient client({.server = "http://127.0.0.1:1"}, absl::Seconds(5));
  auto r = client.Request("GET", "/api/v1/nodes");
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_EQ(KubeErrorMessage(
                {.status = 404, .body = R"({"kind":"Status","message":"jobs \"x\" not found"})"}),
            "HTTP 404: jobs \"x\" not found");
}

}  // namespace
}  // namespace dlab
