#include "pageserver/server/config.h"

#include <cstdio>
#include <fstream>

#include "gtest/gtest.h"

namespace pgbranch::pageserver {
namespace {

TEST(ServerConfigTest, FlagsOverrideTheYamlFile) {
  std::string path = testing::TempDir() + "/pageserver.yaml";
  std::ofstream(path) << "listen: 0.0.0.0:7000\ndata_dir: /from/yaml\n"
                         "retention: {history_seconds: 60, history_bytes: 1000}\n";
  auto c = ParseServerConfig({"--config", path, "--data-dir", "/from/flag"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "0.0.0.0:7000");
  EXPECT_EQ(c->data_dir, "/from/flag");
  EXPECT_EQ(c->retention.history_seconds, 60u);
  EXPECT_EQ(c->retention.history_bytes, 1000u);
}

TEST(ServerConfigTest, SigningKeyFileFromYamlOrFlag) {
  std::string path = testing::TempDir() + "/pageserver-auth.yaml";
  std::ofstream(path) << "data_dir: /d\n"
                         "auth: {token_file: /t.yaml, signing_key_file: /etc/k/signing-key}\n";
  auto yaml = ParseServerConfig({"--config", path});
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  EXPECT_EQ(yaml->token_file, "/t.yaml");
  EXPECT_EQ(yaml->signing_key_file, "/etc/k/signing-key");
  auto flag = ParseServerConfig({"--config", path, "--token-signing-key-file", "/other"});
  ASSERT_TRUE(flag.ok()) << flag.status();
  EXPECT_EQ(flag->signing_key_file, "/other");
}

TEST(ServerConfigTest, UnixSocketFromYamlOrFlagMustBeAbsolute) {
  std::string path = testing::TempDir() + "/pageserver-unix.yaml";
  std::ofstream(path) << "data_dir: /d\nlisten_unix: /run/ps.sock\n";
  auto yaml = ParseServerConfig({"--config", path});
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  EXPECT_EQ(yaml->listen_unix, "/run/ps.sock");
  auto flag = ParseServerConfig({"--data-dir", "/d", "--listen-unix", "/tmp/x.sock"});
  ASSERT_TRUE(flag.ok()) << flag.status();
  EXPECT_EQ(flag->listen_unix, "/tmp/x.sock");
  EXPECT_EQ(ParseServerConfig({"--data-dir", "/d"})->listen_unix, "");
  auto relative = ParseServerConfig({"--data-dir", "/d", "--listen-unix", "ps.sock"});
  ASSERT_FALSE(relative.ok());
  EXPECT_NE(relative.status().message().find("absolute path"), std::string::npos);
}

TEST(ServerConfigTest, RejectsBadInputWithReadableMessages) {
  auto missing = ParseServerConfig({});
  EXPECT_NE(missing.status().message().find("--data-dir"), std::string::npos);
  auto unknown = ParseServerConfig({"--data-dir", "/d", "--bogus", "1"});
  EXPECT_NE(unknown.status().message().find("unknown flag '--bogus'"), std::string::npos);
  auto nan = ParseServerConfig({"--data-dir", "/d", "--history-seconds", "soon"});
  EXPECT_NE(nan.status().message().find("not a number"), std::string::npos);
  std::string path = testing::TempDir() + "/bad.yaml";
  std::ofstream(path) << "data_dir: /d\nretension: {}\n";
  auto typo = ParseServerConfig({"--config", path});
  EXPECT_NE(typo.status().message().find("unknown key 'retension'"), std::string::npos);
  EXPECT_FALSE(ParseServerConfig({"--data-dir", "/d", "--tls-cert", "c"}).ok());
}

}  // namespace
}  // namespace pgbranch::pageserver
