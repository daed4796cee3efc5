#include "operator/kube/kube_config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace pgbranch::kube {
namespace {

namespace fs = std::filesystem;

class KubeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kube-config-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& text) {
    fs::create_directories((dir_ / rel).parent_path());
    std::ofstream(dir_ / rel) << text;
  }
  fs::path dir_;
};

constexpr char kKubeconfig[] = R"(
apiVersion: v1
kind: Config
current-context: dev
contexts:
- name: dev
  context: {cluster: c1, user: u1, namespace: team}
- name: prod
  context: {cluster: c2, user: u2}
clusters:
- name: c1
  cluster: {server: "https://127.0.0.1:6443/", certificate-authority: certs/ca.crt}
- name: c2
  cluster: {server: "https://prod:443", certificate-authority-data: CADATA}
users:
- name: u1
  user: {client-certificate: certs/client.crt, client-key: certs/client.key}
- name: u2
  user: {token: secret-token, client-certificate-data: CERTDATA, client-key-data: KEYDATA}
)";

std::string Config() {
  std::string text = kKubeconfig;
  auto sub = [&](const std::string& from, const std::string& to) {
    text.replace(text.find(from), from.size(), absl::Base64Escape(to));
  };
  sub("CADATA", "CA-PEM");
  sub("CERTDATA", "CERT-PEM");
  sub("KEYDATA", "KEY-PEM");
  return text;
}

TEST_F(KubeConfigTest, CurrentContextWithRelativeFiles) {
  Write("certs/ca.crt", "ca-file");
  Write("certs/client.crt", "cert-file");
  Write("certs/client.key", "key-file");
  Write("config", Config());
  auto c = KubeConfig::FromFile((dir_ / "config").string());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");
  EXPECT_EQ(c->ca_pem, "ca-file");
  EXPECT_EQ(c->client_cert_pem, "cert-file");
  EXPECT_EQ(c->client_key_pem, "key-file");
  EXPECT_EQ(c->default_namespace, "team");
  EXPECT_FALSE(c->token_provider);
}

TEST_F(KubeConfigTest, NamedContextWithDataAndToken) {
  Write("config", Config());
  auto c = KubeConfig::FromFile((dir_ / "config").string(), "prod");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://prod:443");
  EXPECT_EQ(c->ca_pem, "CA-PEM");
  EXPECT_EQ(c->client_cert_pem, "CERT-PEM");
  EXPECT_EQ(c->client_key_pem, "KEY-PEM");
  EXPECT_EQ(c->default_namespace, "default");
  ASSERT_TRUE(c->token_provider);
  EXPECT_EQ(c->token_provider(), "secret-token");
}

TEST_F(KubeConfigTest, ErrorsNameTheFileAndField) {
  Write("config", Config());
  std::string path = (dir_ / "config").string();
  auto missing_ctx = KubeConfig::FromFile(path, "nope");
  EXPECT_EQ(missing_ctx.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing_ctx.status().message().find(path), std::string::npos);
  EXPECT_NE(missing_ctx.status().message().find("\"nope\""), std::string::npos);
  // dev's CA file does not exist.
  auto no_ca = KubeConfig::FromFile(path);
  EXPECT_FALSE(no_ca.ok());
  EXPECT_NE(no_ca.status().message().find("certificate-authority"), std::string::npos)
      << no_ca.status();
  EXPECT_NE(no_ca.status().message().find("ca.crt"), std::string::npos);
  Write("bad", "a: [");
  EXPECT_EQ(KubeConfig::FromFile((dir_ / "bad").string()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(KubeConfigTest, InClusterRereadsTheToken) {
  std::string sa = "var/run/secrets/kubernetes.io/serviceaccount/";
  Write(sa + "token", "token-1\n");
  Write(sa + "ca.crt", "cluster-ca");
  Write(sa + "namespace", "pgbranch-system");
  setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  FakeClock clock;
  auto c = KubeConfig::InCluster(dir_.string(), &clock, absl::Minutes(1));
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.0.0.1:443");
  EXPECT_EQ(c->ca_pem, "cluster-ca");
  EXPECT_EQ(c->default_namespace, "pgbranch-system");
  EXPECT_EQ(c->token_provider(), "token-1");
  Write(sa + "token", "token-2");
  clock.Advance(30'000'000);
  EXPECT_EQ(c->token_provider(), "token-1");  // cached
  clock.Advance(31'000'000);
  EXPECT_EQ(c->token_provider(), "token-2");  // re-read after a minute
}

TEST_F(KubeConfigTest, InClusterNeedsTheEnvironment) {
  unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_EQ(KubeConfig::InCluster(dir_.string()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(KubeConfigTest, LoadPrefersExplicitThenKubeconfigEnv) {
  Write("config", Config());
  Write("certs/ca.crt", "x");
  Write("certs/client.crt", "x");
  Write("certs/client.key", "x");
  Write("other", Config());
  setenv("KUBECONFIG", ((dir_ / "missing").string() + ":" + (dir_ / "other").string()).c_str(), 1);
  auto from_env = KubeConfig::Load("", "prod");
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_NE(from_env->source.find("other"), std::string::npos);
  auto explicit_path = KubeConfig::Load((dir_ / "config").string());
  unsetenv("KUBECONFIG");
  ASSERT_TRUE(explicit_path.ok()) << explicit_path.status();
  EXPECT_NE(explicit_path->source.find((dir_ / "config").string()), std::string::npos);
}

}  // namespace
}  // namespace pgbranch::kube
