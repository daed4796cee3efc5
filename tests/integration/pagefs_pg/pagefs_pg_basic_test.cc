// Unmodified PostgreSQL 15 on pagefs (DESIGN.md sections 3 and 6, tier 2): initdb, pgbench and
// pg_amcheck on a mount, remount; branch isolation on the ecommerce sample; fencing of a stale
// writer at the filesystem level and under PostgreSQL.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "tests/integration/pagefs_pg/pagefs_pg_fixture.h"

#ifndef PGBRANCH_SOURCE_DIR
#define PGBRANCH_SOURCE_DIR "."
#endif

namespace pgbranch::testing {
namespace {

using StopMode = PostgresInstance::StopMode;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(PagefsPgTest, InitdbPgbenchAmcheck) {
  std::unique_ptr<PagefsMount> mount;
  std::unique_ptr<PostgresInstance> pg;
  PG_ASSERT_OK(InitPrimary("main", &mount, &pg));

  PG_ASSERT_OK(pg->Pgbench({"-i", "-q", "-s", "10"}).status());
  PG_ASSERT_OK(pg->Pgbench({"-n", "-c", "4", "-j", "2", "-T", "5"}).status());
  PG_ASSERT_OK(pg->AmCheck());

  const std::string kSummary =
      "SELECT (SELECT count(*) FROM pgbench_accounts) || ' ' || "
      "(SELECT sum(abalance) FROM pgbench_accounts) || ' ' || "
      "(SELECT count(*) FROM pgbench_history) || ' ' || "
      "(SELECT sum(bbalance) FROM pgbench_branches)";
  PG_ASSERT_OK_AND_ASSIGN(std::string before, pg->Query(kSummary));
  EXPECT_EQ(before.substr(0, before.find(' ')), "1000000");
  PG_ASSERT_OK_AND_ASSIGN(int64_t history, pg->QueryInt("SELECT count(*) FROM pgbench_history"));
  EXPECT_GT(history, 0);

  PG_ASSERT_OK(pg->Stop(StopMode::kFast));
  EXPECT_EQ(mount->Unmount(), 0);
  ASSERT_FALSE(mount->IsMounted());

  PG_ASSERT_OK(mount->Mount());
  PG_ASSERT_OK(pg->Start());
  PG_ASSERT_OK_AND_ASSIGN(std::string after, pg->Query(kSummary));
  EXPECT_EQ(after, before);
  PG_ASSERT_OK(pg->AmCheck());
  PG_ASSERT_OK(pg->Stop(StopMode::kFast));
}

int64_t CountOr(const PostgresInstance& pg, const std::string& sql, int64_t fallback = -1) {
  absl::StatusOr<int64_t> v = pg.QueryInt(sql);
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : fallback;
}

// The Lakebase scenario: a dev branch taken from a running production database is a full,
// writable copy; changes on either side (rows, schema) stay on that side.
TEST_F(PagefsPgTest, EcommerceIsolation) {
  std::unique_ptr<PagefsMount> main_mount;
  std::unique_ptr<PostgresInstance> main_pg;
  PG_ASSERT_OK(InitPrimary("main", &main_mount, &main_pg));
  std::string sql = ReadFile(std::string(PGBRANCH_SOURCE_DIR) + "/scripts/sql/ecommerce.sql");
  ASSERT_FALSE(sql.empty()) << "scripts/sql/ecommerce.sql not found";
  PG_ASSERT_OK(main_pg->Query(sql).status());
  const std::string kCounts =
      "SELECT (SELECT count(*) FROM ecommerce.customers) || ' ' || "
      "(SELECT count(*) FROM ecommerce.products) || ' ' || "
      "(SELECT count(*) FROM ecommerce.orders) || ' ' || "
      "(SELECT count(*) FROM ecommerce.order_items)";
  PG_ASSERT_OK_AND_ASSIGN(std::string counts, main_pg->Query(kCounts));
  ASSERT_EQ(counts, "100 50 200 500");

  // Branch while production keeps running: the head is crash-consistent, CHECKPOINT only makes
  // the dev branch's recovery short.
  PG_ASSERT_OK(main_pg->Query("CHECKPOINT").status());
  PG_ASSERT_OK_AND_ASSIGN(pageserver::v1::Timeline dev, CreateBranch("dev", "main", 0));
  EXPECT_GT(dev.ancestor_lsn(), 0u);

  PG_ASSERT_OK_AND_ASSIGN(std::unique_ptr<PagefsMount> dev_mount, MountTimeline("dev", "dev"));
  std::unique_ptr<PostgresInstance> dev_pg = NewPostgres(*dev_mount, "dev");
  PG_ASSERT_OK(dev_pg->RemoveStalePidFile());  // main's postmaster, alive, is in it
  PG_ASSERT_OK(dev_pg->Start());
  PG_ASSERT_OK_AND_ASSIGN(std::string dev_counts, dev_pg->Query(kCounts));
  EXPECT_EQ(dev_counts, "100 50 200 500");

  // Rows: each side sees only its own writes.
  PG_ASSERT_OK(dev_pg
                   ->Query("INSERT INTO ecommerce.customers (name, email) "
                           "VALUES ('Dev Customer', 'dev@example.com')")
                   .status());
  PG_ASSERT_OK(main_pg
                   ->Query("INSERT INTO ecommerce.products (name, price_cents) "
                           "VALUES ('Main Product', 999)")
                   .status());
  EXPECT_EQ(CountOr(*dev_pg, "SELECT count(*) FROM ecommerce.customers"), 101);
  EXPECT_EQ(CountOr(*main_pg, "SELECT count(*) FROM ecommerce.customers"), 100);
  EXPECT_EQ(CountOr(*dev_pg, "SELECT count(*) FROM ecommerce.products"), 50);
  EXPECT_EQ(CountOr(*main_pg, "SELECT count(*) FROM ecommerce.products"), 51);
  EXPECT_EQ(
      CountOr(*main_pg, "SELECT count(*) FROM ecommerce.customers WHERE email = 'dev@example.com'"),
      0);

  // Schema: a migration on dev is invisible on main.
  PG_ASSERT_OK(dev_pg
                   ->Query("ALTER TABLE ecommerce.customers ADD COLUMN loyalty_tier text;\n"
                           "UPDATE ecommerce.customers SET loyalty_tier = 'gold' "
                           "WHERE id % 2 = 0;")
                   .status());
  const std::string kHasColumn =
      "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'ecommerce' "
      "AND table_name = 'customers' AND column_name = 'loyalty_tier'";
  EXPECT_EQ(CountOr(*dev_pg, kHasColumn), 1);
  EXPECT_EQ(CountOr(*main_pg, kHasColumn), 0);
  EXPECT_EQ(CountOr(*dev_pg,
                    "SELECT count(*) FROM ecommerce.customers WHERE loyalty_tier = "
                    "'gold'"),
            CountOr(*dev_pg, "SELECT count(*) FROM ecommerce.customers WHERE id % 2 = 0"));
  EXPECT_GE(CountOr(*dev_pg,
                    "SELECT count(*) FROM ecommerce.customers WHERE loyalty_tier = "
                    "'gold'"),
            50);
  PG_ASSERT_OK_AND_ASSIGN(std::string main_counts, main_pg->Query(kCounts));
  EXPECT_EQ(main_counts, "100 51 200 500");

  PG_ASSERT_OK(dev_pg->AmCheck());
  PG_ASSERT_OK(main_pg->AmCheck());
  PG_ASSERT_OK(dev_pg->Stop(StopMode::kFast));
  PG_ASSERT_OK(main_pg->Stop(StopMode::kFast));
  EXPECT_EQ(dev_mount->Unmount(), 0);
  EXPECT_EQ(main_mount->Unmount(), 0);
}

// A second read-write mount of a timeline fences the first: the stale writer can commit nothing,
// and PostgreSQL on the newest mount recovers everything committed before. Three mounts of
// `main` in turn, so that a fenced pagefs discovers it both ways: through PostgreSQL's own writes
// (first mount) and through a plain write + fsync (second mount).
TEST_F(PagefsPgTest, Fencing) {
  std::unique_ptr<PagefsMount> first_mount;
  std::unique_ptr<PostgresInstance> first_pg;
  PG_ASSERT_OK(InitPrimary("main", &first_mount, &first_pg));
  PG_ASSERT_OK(first_pg
                   ->Query("CREATE TABLE before_fence (id int PRIMARY KEY, v text);\n"
                           "INSERT INTO before_fence SELECT i, 'row ' || i "
                           "FROM generate_series(1, 1000) i;\n"
                           "CREATE INDEX ON before_fence (v);\n"
                           "CHECKPOINT;")
                   .status());
  // A committed transaction after the checkpoint: recovered from WAL on the new mount.
  PG_ASSERT_OK(
      first_pg->Query("INSERT INTO before_fence VALUES (1001, 'after checkpoint')").status());
  // A file to write through a fenced mount below (created and made durable before fencing).
  {
    int fd = open((first_mount->mountpoint() + "/fence_probe").c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0) << strerror(errno);
    ASSERT_EQ(write(fd, "before", 6), 6);
    ASSERT_EQ(fsync(fd), 0) << strerror(errno);
    close(fd);
  }
  // A session opened before fencing (new connections open relation files for writing, which a
  // fenced mount refuses: the test wants PostgreSQL's writes to be what fails).
  PostgresPipe session;
  const std::string session_log = path("s/fenced_session.stderr");
  PG_ASSERT_OK(session.Start(first_pg->PsqlArgv(), session_log));
  PG_ASSERT_OK(session.Write("\\echo connected\nSELECT count(*) FROM before_fence;\n"));
  PG_ASSERT_OK_AND_ASSIGN(std::string line, session.ReadLine(60));
  ASSERT_EQ(line, "connected");
  PG_ASSERT_OK_AND_ASSIGN(line, session.ReadLine(60));
  ASSERT_EQ(line, "1001");

  // The second mount takes the writer generation.
  PG_ASSERT_OK_AND_ASSIGN(std::unique_ptr<PagefsMount> second_mount,
                          MountTimeline("main", "second"));

  // PostgreSQL on the fenced mount cannot commit a table, rows or a checkpoint.
  PG_ASSERT_OK(
      session.Write("CREATE TABLE after_fence (id int);\n"
                    "INSERT INTO after_fence VALUES (1);\n"
                    "CHECKPOINT;\n"
                    "\\echo done\n"));
  absl::StatusOr<std::string> reply = session.ReadLine(120);
  int session_exit = session.Finish(60);
  EXPECT_FALSE(reply.ok()) << "the fenced PostgreSQL committed and checkpointed: " << *reply;
  EXPECT_NE(session_exit, 0);
  std::string session_err = ReadFile(session_log);
  EXPECT_NE(session_err.find("Input/output error"), std::string::npos)
      << session_err << "\n--- server log ---\n"
      << first_pg->LogTail();
  first_pg->Kill9();
  first_mount->Kill();  // a fenced mount cannot flush at unmount

  // The third mount fences the second, which has not committed anything yet: it finds out when
  // it tries, at fsync.
  PG_ASSERT_OK_AND_ASSIGN(std::unique_ptr<PagefsMount> third_mount, MountTimeline("main", "third"));
  {
    int fd = open((second_mount->mountpoint() + "/fence_probe").c_str(), O_WRONLY);
    ASSERT_GE(fd, 0) << strerror(errno);
    ssize_t w = write(fd, "fenced", 6);
    int write_errno = errno;
    EXPECT_TRUE(w == 6 || (w < 0 && write_errno == EIO))
        << "write: " << w << " " << strerror(write_errno);
    errno = 0;
    EXPECT_EQ(fsync(fd), -1);
    EXPECT_EQ(errno, EIO) << strerror(errno);
    // ... and keeps failing (no "fsyncgate": a failed flush is not forgotten).
    errno = 0;
    EXPECT_EQ(fsync(fd), -1);
    EXPECT_EQ(errno, EIO) << strerror(errno);
    close(fd);
  }
  {
    // Namespace changes are refused too.
    errno = 0;
    int fd = open((second_mount->mountpoint() + "/created_after_fence").c_str(), O_CREAT | O_WRONLY,
                  0644);
    EXPECT_EQ(fd, -1) << "creating a file through a fenced mount succeeded";
    EXPECT_EQ(errno, EIO) << strerror(errno);
    if (fd >= 0) close(fd);
    EXPECT_NE(mkdir((second_mount->mountpoint() + "/dir_after_fence").c_str(), 0755), 0);
  }
  second_mount->Kill();

  // The newest writer: recovery, everything committed before fencing, nothing after.
  std::unique_ptr<PostgresInstance> pg = NewPostgres(*third_mount, "third");
  PG_ASSERT_OK(pg->RemoveStalePidFile());
  PG_ASSERT_OK(pg->Start());
  EXPECT_EQ(CountOr(*pg, "SELECT count(*) FROM before_fence"), 1001);
  EXPECT_EQ(CountOr(*pg, "SELECT count(*) FROM before_fence WHERE v = 'after checkpoint'"), 1);
  PG_ASSERT_OK_AND_ASSIGN(std::string after_fence,
                          pg->Query("SELECT to_regclass('after_fence') IS NULL"));
  EXPECT_EQ(after_fence, "t") << "a table created by the fenced PostgreSQL survived";
  EXPECT_EQ(ReadFile(third_mount->mountpoint() + "/fence_probe"), "before");
  EXPECT_FALSE(std::filesystem::exists(third_mount->mountpoint() + "/created_after_fence"));
  EXPECT_FALSE(std::filesystem::exists(third_mount->mountpoint() + "/dir_after_fence"));
  PG_ASSERT_OK(pg->AmCheck());
  // And it is a working primary.
  PG_ASSERT_OK(pg->Query("CREATE TABLE after_takeover (id int);\n"
                         "INSERT INTO after_takeover VALUES (1);\n"
                         "CHECKPOINT;")
                   .status());
  PG_ASSERT_OK(pg->Stop(StopMode::kFast));
  EXPECT_EQ(third_mount->Unmount(), 0);
}

}  // namespace
}  // namespace pgbranch::testing
