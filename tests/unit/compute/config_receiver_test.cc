#include "compute/config_receiver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgbranch::compute {
namespace {

using ::testing::HasSubstr;

constexpr char kConfig[] = R"(endpoint: ep
pageserver: 10.0.0.1:6400
tenant: t
timeline: tl
workdir: /var/lib/pgbranch
pg_port: 5432
password_file: /etc/pgbranch/credentials/password
pagefs_bin: /usr/local/bin/pagefs
)";

TEST(ConfigReceiverTest, PooledUntilAConfigurationArrives) {
  ConfigReceiver r;
  EXPECT_EQ(r.Handle("GET", "/status", "").body, "{\"state\":\"pooled\"}");
  EXPECT_EQ(r.Handle("GET", "/readyz", "").status, 503);
  EXPECT_EQ(r.Handle("GET", "/healthz", "").status, 200);
  EXPECT_FALSE(r.config().has_value());
}

TEST(ConfigReceiverTest, AcceptsOneValidConfiguration) {
  ConfigReceiver r;
  HttpResponse resp = r.Handle("PUT", "/config", kConfig);
  EXPECT_EQ(resp.status, 202);
  ASSERT_TRUE(r.config().has_value());
  EXPECT_EQ(r.config()->endpoint, "ep");
  EXPECT_EQ(r.config()->timeline, "tl");
  HttpResponse again = r.Handle("PUT", "/config", kConfig);
  EXPECT_EQ(again.status, 409);
  EXPECT_THAT(again.body, HasSubstr("one endpoint"));
}

TEST(ConfigReceiverTest, RefusesABadConfigurationWithTheKey) {
  ConfigReceiver r;
  HttpResponse resp = r.Handle("PUT", "/config", "pg_port: 70000\n");
  EXPECT_EQ(resp.status, 400);
  EXPECT_THAT(resp.body, HasSubstr("pg_port"));
  EXPECT_FALSE(r.config().has_value());
}

TEST(ConfigReceiverTest, ServesOverHttp) {
  ConfigReceiver r;
  ASSERT_TRUE(r.Start("127.0.0.1:0").ok());
  EXPECT_GT(r.port(), 0);
  r.Stop();
}

}  // namespace
}  // namespace pgbranch::compute
