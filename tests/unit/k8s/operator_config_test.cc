#include "operator/k8s/operator_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace pgbranch::k8s {
namespace {

using ::testing::HasSubstr;

class TempYaml {
 public:
  explicit TempYaml(const std::string& text) {
    char tmpl[] = "/tmp/k8s_config_testXXXXXX";
    int fd = mkstemp(tmpl);
    path_ = tmpl;
    ::close(fd);
    std::ofstream(path_) << text;
  }
  ~TempYaml() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(OperatorConfigTest, Defaults) {
  auto c = ParseOperatorConfig({});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->namespaces, std::vector<std::string>{"default"});
  EXPECT_EQ(c->pageserver, "127.0.0.1:6400");
  EXPECT_EQ(c->compute.pageserver, "127.0.0.1:6400");  // defaults to --pageserver
  EXPECT_EQ(c->compute.image, "pgbranch/compute:dev");
  EXPECT_EQ(c->compute.image_pull_policy, "IfNotPresent");
  EXPECT_EQ(c->compute.fuse_device_resource, "");
  EXPECT_EQ(c->compute.proxy_port, 5432);
  EXPECT_EQ(c->listen, "0.0.0.0:8080");
  EXPECT_TRUE(c->leader_elect);
  EXPECT_EQ(c->lease_namespace, "default");
  EXPECT_EQ(c->lease_name, "pgbranch-operator");
  EXPECT_FALSE(c->identity.empty());  // hostname-pid
  EXPECT_EQ(c->resync_seconds, 300);
  EXPECT_EQ(c->log_level, "info");
}

TEST(OperatorConfigTest, YamlThenFlagsOverride) {
  TempYaml yaml(R"(namespaces: [team-a, team-b]
pageserver: ps:6400
compute_image: example/compute:1
image_pull_policy: Never
fuse_device_resource: github.com/fuse
proxy_host: db.example.com
proxy_port: 6432
leader_elect: false
resync_seconds: 60
)");
  auto c = ParseOperatorConfig({"--config", yaml.path(), "--compute-image=example/compute:2",
                                "--proxy-port", "7432", "--leader-elect", "true"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->namespaces, (std::vector<std::string>{"team-a", "team-b"}));
  EXPECT_EQ(c->pageserver, "ps:6400");
  EXPECT_EQ(c->compute.pageserver, "ps:6400");
  EXPECT_EQ(c->compute.image, "example/compute:2");  // flag beats file
  EXPECT_EQ(c->compute.image_pull_policy, "Never");  // from the file
  EXPECT_EQ(c->compute.fuse_device_resource, "github.com/fuse");
  EXPECT_EQ(c->compute.proxy_host, "db.example.com");
  EXPECT_EQ(c->compute.proxy_port, 7432);
  EXPECT_TRUE(c->leader_elect);
  EXPECT_EQ(c->resync_seconds, 60);
}

TEST(OperatorConfigTest, FlagsOverrideYamlRegardlessOfOrder) {
  TempYaml yaml("proxy_port: 6432\n");
  auto c = ParseOperatorConfig({"--proxy-port=7000", "--config", yaml.path()});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->compute.proxy_port, 7000);
}

TEST(OperatorConfigTest, UnknownFlagNamesIt) {
  auto c = ParseOperatorConfig({"--compute-imag", "x"});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("--compute-imag"));
}

TEST(OperatorConfigTest, UnknownYamlKeyNamesIt) {
  TempYaml yaml("compute_imag: x\n");
  auto c = ParseOperatorConfig({"--config", yaml.path()});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("compute_imag"));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(yaml.path()));
}

TEST(OperatorConfigTest, BadValuesGiveReadableErrors) {
  auto pull = ParseOperatorConfig({"--image-pull-policy", "Sometimes"});
  ASSERT_FALSE(pull.ok());
  EXPECT_THAT(std::string(pull.status().message()), HasSubstr("--image-pull-policy"));
  EXPECT_THAT(std::string(pull.status().message()), HasSubstr("Sometimes"));
  EXPECT_THAT(std::string(pull.status().message()), HasSubstr("IfNotPresent"));

  for (const char* bad : {"0", "65536", "abc"}) {
    auto port = ParseOperatorConfig({"--proxy-port", bad});
    ASSERT_FALSE(port.ok()) << bad;
    EXPECT_THAT(std::string(port.status().message()), HasSubstr("--proxy-port"));
    EXPECT_THAT(std::string(port.status().message()), HasSubstr("65535"));
  }

  auto le = ParseOperatorConfig({"--leader-elect=maybe"});
  ASSERT_FALSE(le.ok());
  EXPECT_THAT(std::string(le.status().message()), HasSubstr("--leader-elect"));
  EXPECT_THAT(std::string(le.status().message()), HasSubstr("true or false"));

  TempYaml yaml("image_pull_policy: sometimes\n");
  auto y = ParseOperatorConfig({"--config", yaml.path()});
  ASSERT_FALSE(y.ok());
  EXPECT_THAT(std::string(y.status().message()), HasSubstr("image_pull_policy"));
}

TEST(OperatorConfigTest, MissingValueAndStrayArgument) {
  auto c = ParseOperatorConfig({"--pageserver"});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("--pageserver"));
  auto stray = ParseOperatorConfig({"oops"});
  ASSERT_FALSE(stray.ok());
  EXPECT_THAT(std::string(stray.status().message()), HasSubstr("oops"));
}

TEST(OperatorConfigTest, MissingConfigFileIsAnError) {
  auto c = ParseOperatorConfig({"--config", "/nonexistent/pgbranch-operator.yaml"});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("/nonexistent/pgbranch-operator.yaml"));
}

TEST(OperatorConfigTest, HelpIsNotFoundWithUsage) {
  for (const char* h : {"--help", "-h"}) {
    auto c = ParseOperatorConfig({h});
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(std::string(c.status().message()), HasSubstr("usage: pgbranch-operator"));
    EXPECT_THAT(std::string(c.status().message()), HasSubstr("--compute-image"));
  }
}

TEST(OperatorConfigTest, SigningKeyFileFromFlagOrYaml) {
  auto flag = ParseOperatorConfig({"--pageserver-signing-key-file", "/etc/pgbranch/key"});
  ASSERT_TRUE(flag.ok()) << flag.status();
  EXPECT_EQ(flag->pageserver_signing_key_file, "/etc/pgbranch/key");
  TempYaml yaml("pageserver_signing_key_file: /k\n");
  auto y = ParseOperatorConfig({"--config", yaml.path()});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->pageserver_signing_key_file, "/k");
  auto help = ParseOperatorConfig({"--help"});
  EXPECT_THAT(std::string(help.status().message()), HasSubstr("--pageserver-signing-key-file"));
}

TEST(OperatorConfigTest, EmptyNamespacesMeanAll) {
  auto flag = ParseOperatorConfig({"--namespaces="});
  ASSERT_TRUE(flag.ok()) << flag.status();
  EXPECT_EQ(flag->namespaces, std::vector<std::string>{""});

  TempYaml empty_list("namespaces: []\n");
  auto y = ParseOperatorConfig({"--config", empty_list.path()});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->namespaces, std::vector<std::string>{""});

  TempYaml empty_item("namespaces: [\"\"]\n");
  auto y2 = ParseOperatorConfig({"--config", empty_item.path()});
  ASSERT_TRUE(y2.ok()) << y2.status();
  EXPECT_EQ(y2->namespaces, std::vector<std::string>{""});

  auto list = ParseOperatorConfig({"--namespaces", "a, b"});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->namespaces, (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace pgbranch::k8s
