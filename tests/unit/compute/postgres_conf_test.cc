#include "compute/postgres_conf.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgbranch::compute {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

ComputeConfig Config(ComputeMode mode) {
  ComputeConfig c;
  c.endpoint = "dev";
  c.branch = "dev";
  c.timeline = "dev";
  c.workdir = "/w/dev";
  c.pg_port = 55433;
  c.mode = mode;
  return c;
}

TEST(PostgresConfTest, PointsEverythingIntoTheWorkdir) {
  ComputeConfig c = Config(ComputeMode::kReadWrite);
  ComputeLayout layout(c.workdir);
  std::string conf = RenderPostgresqlConf(c, layout);
  EXPECT_THAT(conf, HasSubstr("data_directory = '/w/dev/mnt/pgdata'\n"));
  EXPECT_THAT(conf, HasSubstr("hba_file = '/w/dev/pg_hba.conf'\n"));
  EXPECT_THAT(conf, HasSubstr("ident_file = '/w/dev/pg_ident.conf'\n"));
  EXPECT_THAT(conf, HasSubstr("listen_addresses = '127.0.0.1'\n"));
  EXPECT_THAT(conf, HasSubstr("port = 55433\n"));
  EXPECT_THAT(conf, HasSubstr("unix_socket_directories = '/w/dev/run'\n"));
  EXPECT_THAT(conf, HasSubstr("password_encryption = 'scram-sha-256'\n"));
  EXPECT_THAT(conf, HasSubstr("full_page_writes = on\n"));
  // Recovery's look-ahead fadvise reads cost round trips for pages redo never reads (pagefs).
  EXPECT_THAT(conf, HasSubstr("recovery_prefetch = off\n"));
  EXPECT_THAT(conf, HasSubstr("wal_init_zero = off\n"));
  EXPECT_THAT(conf, HasSubstr("log_destination = 'stderr'\n"));
  EXPECT_THAT(conf, Not(HasSubstr("hot_standby")));
}

TEST(PostgresConfTest, ReadOnlyIsAHotStandby) {
  ComputeConfig c = Config(ComputeMode::kReadOnly);
  EXPECT_THAT(RenderPostgresqlConf(c, ComputeLayout(c.workdir)), HasSubstr("hot_standby = on\n"));
}

TEST(PostgresConfTest, ParametersComeLastQuoted) {
  ComputeConfig c = Config(ComputeMode::kReadWrite);
  c.parameters["shared_buffers"] = "256MB";
  c.parameters["log_line_prefix"] = "it's %m \\ ";
  c.parameters["cluster_name"] = "mine";
  std::string conf = RenderPostgresqlConf(c, ComputeLayout(c.workdir));
  EXPECT_THAT(conf, HasSubstr("shared_buffers = '256MB'\n"));
  EXPECT_THAT(conf, HasSubstr("log_line_prefix = 'it''s %m \\\\ '\n"));
  // PostgreSQL takes the last occurrence: the endpoint's parameters win over the defaults.
  EXPECT_GT(conf.rfind("log_line_prefix = 'it"), conf.find("log_line_prefix = '%m"));
  EXPECT_GT(conf.rfind("cluster_name = 'mine'"), conf.find("cluster_name = 'dev'"));
}

TEST(PostgresConfTest, HbaTrustsOnlyTheSocketAndRequiresScramOverTcp) {
  std::string hba = RenderPgHbaConf();
  EXPECT_THAT(hba, HasSubstr("local   all       all                 trust\n"));
  EXPECT_THAT(hba, HasSubstr("host    all       all   127.0.0.1/32  scram-sha-256\n"));
  EXPECT_THAT(hba, HasSubstr("host    all       all   ::1/128       scram-sha-256\n"));
  EXPECT_THAT(hba, Not(HasSubstr("md5")));
  EXPECT_THAT(hba, Not(HasSubstr("0.0.0.0")));
}

TEST(PostgresConfTest, QuotesValues) {
  EXPECT_EQ(QuoteConfValue("plain"), "'plain'");
  EXPECT_EQ(QuoteConfValue("o'neil"), "'o''neil'");
  EXPECT_EQ(QuoteConfValue("a\\b"), "'a\\\\b'");
}

}  // namespace
}  // namespace pgbranch::compute
