#include "compute/compute_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgbranch::compute {
namespace {

using ::testing::HasSubstr;

constexpr char kMinimal[] = R"(
pageserver: 127.0.0.1:55401
tenant: default
timeline: dev
workdir: /var/lib/pgbranch/computes/dev
pg_port: 55433
pagefs_bin: /usr/bin/pagefs
password_file: /etc/pgbranch/app.password
)";

TEST(ComputeConfigTest, ParsesTheDocumentedExample) {
  // The sample of docs/local-mode-internals.md.
  absl::StatusOr<ComputeConfig> c = ParseComputeConfig(R"(
endpoint: dev                 # names only, for logs and metrics
branch: dev
pageserver: 127.0.0.1:55401
tenant: default
timeline: dev
token_file: ""                # optional bearer token for the pageserver
commit_channel: unix:/root/.pgbranch/run/pc.sock
mode: read-write
workdir: /root/.pgbranch/computes/dev
pg_port: 55433
status_listen: 127.0.0.1:0
status_port_file: /root/.pgbranch/computes/dev/status.port
pg_bin_dir: /usr/lib/postgresql/15/bin
pagefs_bin: /path/to/pagefs
role: app
database: app
password_file: /root/.pgbranch/credentials/app.password
parameters: {shared_buffers: 128MB}
stop_timeout_seconds: 20
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->endpoint, "dev");
  EXPECT_EQ(c->pageserver, "127.0.0.1:55401");
  EXPECT_EQ(c->tenant, "default");
  EXPECT_EQ(c->timeline, "dev");
  EXPECT_EQ(c->token_file, "");
  EXPECT_EQ(c->commit_channel, "unix:/root/.pgbranch/run/pc.sock");
  EXPECT_EQ(c->mode, ComputeMode::kReadWrite);
  EXPECT_EQ(c->workdir, "/root/.pgbranch/computes/dev");
  EXPECT_EQ(c->pg_port, 55433);
  EXPECT_EQ(c->status_listen, "127.0.0.1:0");
  EXPECT_EQ(c->status_port_file, "/root/.pgbranch/computes/dev/status.port");
  EXPECT_EQ(c->pagefs_bin, "/path/to/pagefs");
  EXPECT_EQ(c->role, "app");
  EXPECT_EQ(c->database, "app");
  EXPECT_EQ(c->parameters.at("shared_buffers"), "128MB");
  EXPECT_EQ(c->stop_timeout_seconds, 20);
}

TEST(ComputeConfigTest, ParsesJsonWithDefaults) {
  absl::StatusOr<ComputeConfig> c = ParseComputeConfig(R"({
    "pageserver": "127.0.0.1:1", "tenant": "t", "timeline": "x", "workdir": "/w",
    "pg_port": 5432, "pagefs_bin": "/p", "mode": "read-only",
    "parameters": {"work_mem": 4096, "jit": false}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->mode, ComputeMode::kReadOnly);
  EXPECT_EQ(c->pg_bin_dir, "/usr/lib/postgresql/15/bin");
  EXPECT_EQ(c->status_listen, "127.0.0.1:0");
  EXPECT_EQ(c->stop_timeout_seconds, 20);
  EXPECT_EQ(c->role, "app");
  EXPECT_EQ(c->commit_channel, "");  // CommitStream unless asked
  EXPECT_EQ(c->parameters.at("work_mem"), "4096");
  EXPECT_EQ(c->parameters.at("jit"), "false");
}

TEST(ComputeConfigTest, ReportsUnknownKeysWithoutFailing) {
  std::string unknown;
  absl::StatusOr<ComputeConfig> c =
      ParseComputeConfig(std::string(kMinimal) + "future_key: 1\n", &unknown);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(unknown, "future_key");
}

TEST(ComputeConfigTest, RejectsMissingAndInvalidValues) {
  struct Case {
    std::string yaml;
    std::string message;
  };
  std::string base = kMinimal;
  for (const Case& tc : std::vector<Case>{
           {"tenant: t\n", "pageserver: is required"},
           {base + "pg_port: 70000\n", "pg_port: must be a whole number in 1..65535"},
           {base + "pg_port: abc\n", "pg_port: must be a whole number"},
           {base + "mode: writable\n", "mode: 'writable': use read-write or read-only"},
           {base + "workdir: relative/dir\n", "workdir: must be an absolute path"},
           {base + "role: \"robert'); DROP\"\n", "role: 'robert'); DROP'"},
           {base + "parameters: {port: 1}\n", "port is managed by pgbranch-compute"},
           {base + "parameters: {full_page_writes: 'off'}\n", "full_page_writes is managed"},
           {base + "parameters: {'bad name': 1}\n", "'bad name' is not a PostgreSQL parameter"},
           {base + "parameters: {shared_buffers: [1, 2]}\n", "must be a string or a number"},
           {base + "parameters: [1]\n", "parameters: must be a map"},
           {base + "log_level: loud\n", "log_level: must be one of"},
           {"[1, 2]", "must be a YAML/JSON map"},
           {"{unclosed", "not valid YAML/JSON"},
       }) {
    absl::StatusOr<ComputeConfig> c = ParseComputeConfig(tc.yaml);
    ASSERT_FALSE(c.ok()) << tc.yaml;
    EXPECT_THAT(std::string(c.status().message()), HasSubstr(tc.message)) << tc.yaml;
  }
}

TEST(ComputeConfigTest, PasswordFileIsRequiredOnlyForReadWrite) {
  std::string without = R"(
pageserver: a:1
tenant: t
timeline: x
workdir: /w
pg_port: 5432
pagefs_bin: /p
)";
  absl::StatusOr<ComputeConfig> rw = ParseComputeConfig(without);
  ASSERT_FALSE(rw.ok());
  EXPECT_THAT(std::string(rw.status().message()), HasSubstr("password_file: is required"));
  EXPECT_TRUE(ParseComputeConfig(without + "mode: read-only\n").ok());
}

TEST(ComputeConfigTest, LoadNamesTheFile) {
  absl::StatusOr<ComputeConfig> c = LoadComputeConfig("/nonexistent/compute.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("/nonexistent/compute.yaml"));
}

}  // namespace
}  // namespace pgbranch::compute
