// The catalog prefetch of a branch's mount (pagefs --prefetch-postgres, issue 11) with real
// PostgreSQL 15: a branch of a running primary mounted with the prefetch serves its branch point
// and, after catalog and data changes and a restart on a new prefetching mount, those changes
// (the prefetch never serves a page older than a write); a mount with its prefetch in flight
// survives an unmount and a kill -9; the pages a start read, kept in the timeline, become the
// plan of the next mount and of a branch, and serve what changed since.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "tests/integration/pagefs_pg/pagefs_pg_fixture.h"

namespace pgbranch::testing {
namespace {

const std::vector<std::string> kPrefetch = {"--prefetch-postgres", "pgdata"};

// Catalog changes (a new relation, a new column, a new role) and data changes, on a branch of
// `t` (600 rows, id and v).
absl::Status ChangeBranch(PostgresInstance* pg, const std::string& role) {
  return pg
      ->Query(absl::StrCat("CREATE TABLE u (id int PRIMARY KEY, w text);\n"
                           "INSERT INTO u SELECT i, 'b1' FROM generate_series(1, 50) i;\n"
                           "ALTER TABLE t ADD COLUMN extra int DEFAULT 7;\n"
                           "UPDATE t SET v = 'b1' WHERE id <= 100;\n"
                           "CREATE ROLE ",
                           role, " LOGIN;"))
      .status();
}

// Every change of ChangeBranch is there, and the indexes check.
void ExpectBranchChanges(PostgresInstance* pg, const std::string& role) {
  PG_ASSERT_OK_AND_ASSIGN(int64_t rows, pg->QueryInt("SELECT count(*) FROM u"));
  EXPECT_EQ(rows, 50);
  PG_ASSERT_OK_AND_ASSIGN(rows, pg->QueryInt("SELECT count(*) FROM t WHERE v = 'b1'"));
  EXPECT_EQ(rows, 100);
  PG_ASSERT_OK_AND_ASSIGN(rows, pg->QueryInt("SELECT sum(extra) FROM t"));
  EXPECT_EQ(rows, 7 * 600);
  PG_ASSERT_OK_AND_ASSIGN(rows, pg->QueryInt(absl::StrCat(
                                    "SELECT count(*) FROM pg_roles WHERE rolname = '", role, "'")));
  EXPECT_EQ(rows, 1);
  PG_ASSERT_OK(pg->AmCheck());
}

TEST_F(PagefsPgTest, PrefetchedBranchServesItsWrites) {
  std::unique_ptr<PagefsMount> main_mount;
  std::unique_ptr<PostgresInstance> main_pg;
  PG_ASSERT_OK(InitPrimary("main", &main_mount, &main_pg));
  PG_ASSERT_OK(main_pg
                   ->Query("CREATE TABLE t (id int PRIMARY KEY, v text);\n"
                           "INSERT INTO t SELECT i, 'main' FROM generate_series(1, 500) i;\n"
                           "CHECKPOINT;\n"
                           "INSERT INTO t SELECT i, 'after' FROM generate_series(501, 600) i;")
                   .status());
  // A branch of the running primary (a crash image), mounted with the prefetch.
  PG_ASSERT_OK(CreateBranch("b1", "main", 0).status());
  PG_ASSERT_OK_AND_ASSIGN(std::unique_ptr<PagefsMount> mount, MountTimeline("b1", "b1", kPrefetch));
  std::unique_ptr<PostgresInstance> pg = NewPostgres(*mount, "b1");
  PG_ASSERT_OK(pg->RemoveStalePidFile());
  PG_ASSERT_OK(pg->Start());
  PG_ASSERT_OK_AND_ASSIGN(int64_t rows, pg->QueryInt("SELECT count(*) FROM t"));
  EXPECT_EQ(rows, 600);
  // Catalog changes (new relations, a changed role) and data changes on the branch while and
  // after its prefetch ran.
  PG_ASSERT_OK(ChangeBranch(pg.get(), "prefetch_probe"));
  PG_ASSERT_OK(pg->Stop(PostgresInstance::StopMode::kImmediate));
  EXPECT_EQ(mount->Unmount(), 0);
  // A new prefetching mount must see every change (and PostgreSQL replays the rest).
  PG_ASSERT_OK_AND_ASSIGN(mount, MountTimeline("b1", "b1-again", kPrefetch));
  pg = NewPostgres(*mount, "b1-again");
  PG_ASSERT_OK(pg->RemoveStalePidFile());
  PG_ASSERT_OK(pg->Start());
  ExpectBranchChanges(pg.get(), "prefetch_probe");
  // The parent is untouched by its branch.
  PG_ASSERT_OK_AND_ASSIGN(rows, main_pg->QueryInt("SELECT count(*) FROM t WHERE v = 'b1'"));
  EXPECT_EQ(rows, 0);
  PG_ASSERT_OK(pg->Stop());
  EXPECT_EQ(mount->Unmount(), 0);
  PG_ASSERT_OK(main_pg->Stop());
}

// The learned plan (--learn-startup-seconds): a start's reads kept in the timeline beside the
// data directory, then catalog and data changes, then a new mount that prefetches exactly the
// learned pages, and a branch that inherits them: both serve every change (the learned pages are
// read at the new mount's head, never older), and PostgreSQL never sees the file.
TEST_F(PagefsPgTest, LearnedStartupReadsServeLaterChanges) {
  std::unique_ptr<PagefsMount> main_mount;
  std::unique_ptr<PostgresInstance> main_pg;
  PG_ASSERT_OK(InitPrimary("main", &main_mount, &main_pg));
  PG_ASSERT_OK(main_pg
                   ->Query("CREATE TABLE t (id int PRIMARY KEY, v text);\n"
                           "INSERT INTO t SELECT i, 'main' FROM generate_series(1, 600) i;")
                   .status());
  PG_ASSERT_OK(CreateBranch("b1", "main", 0).status());
  std::vector<std::string> learn = kPrefetch;
  learn.insert(learn.end(), {"--learn-startup-seconds", "1"});
  PG_ASSERT_OK_AND_ASSIGN(std::unique_ptr<PagefsMount> mount, MountTimeline("b1", "b1", learn));
  std::unique_ptr<PostgresInstance> pg = NewPostgres(*mount, "b1");
  PG_ASSERT_OK(pg->RemoveStalePidFile());
  PG_ASSERT_OK(pg->Start());
  PG_ASSERT_OK_AND_ASSIGN(int64_t rows, pg->QueryInt("SELECT count(*) FROM t"));
  EXPECT_EQ(rows, 600);
  const std::string learned = mount->mountpoint() + "/.pagefs-startup-reads";
  std::string text;
  for (int i = 0; i < 200 && text.empty(); ++i) {
    usleep(100'000);
    std::ifstream in(learned);
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  ASSERT_EQ(text.rfind("pagefs startup reads v1\n", 0), 0u) << text.substr(0, 200);
  EXPECT_NE(text.find("pgdata/global/pg_control 0+1\n"), std::string::npos);
  EXPECT_NE(text.find("pgdata/base/"), std::string::npos);
  EXPECT_EQ(text.find("pg_wal"), std::string::npos);
  // Changes to the catalogs and to the pages just learned, after the file was written.
  PG_ASSERT_OK(ChangeBranch(pg.get(), "learned_probe"));
  PG_ASSERT_OK(pg->Query("CHECKPOINT").status());
  PG_ASSERT_OK(CreateBranch("b2", "b1", 0).status());
  PG_ASSERT_OK(pg->Stop(PostgresInstance::StopMode::kImmediate));
  EXPECT_EQ(mount->Unmount(), 0);
  for (const std::string timeline : {"b1", "b2"}) {
    PG_ASSERT_OK_AND_ASSIGN(mount, MountTimeline(timeline, timeline + "-again", kPrefetch));
    EXPECT_TRUE(std::filesystem::exists(mount->mountpoint() + "/.pagefs-startup-reads"));
    pg = NewPostgres(*mount, timeline + "-again");
    PG_ASSERT_OK(pg->RemoveStalePidFile());
    PG_ASSERT_OK(pg->Start());
    ExpectBranchChanges(pg.get(), "learned_probe");
    PG_ASSERT_OK(pg->Stop());
    EXPECT_EQ(mount->Unmount(), 0);
  }
  PG_ASSERT_OK(main_pg->Stop());
}

TEST_F(PagefsPgTest, PrefetchInFlightSurvivesUnmountAndKill) {
  std::unique_ptr<PagefsMount> main_mount;
  std::unique_ptr<PostgresInstance> main_pg;
  PG_ASSERT_OK(InitPrimary("main", &main_mount, &main_pg));
  PG_ASSERT_OK(main_pg->Query("CREATE TABLE t AS SELECT generate_series(1, 100) AS i").status());
  PG_ASSERT_OK(main_pg->Stop());
  EXPECT_EQ(main_mount->Unmount(), 0);
  // Unmounted at once, the prefetch most likely still reading: a clean exit.
  for (int i = 0; i < 3; ++i) {
    PG_ASSERT_OK_AND_ASSIGN(std::unique_ptr<PagefsMount> m,
                            MountTimeline("main", absl::StrCat("u", i), kPrefetch));
    EXPECT_EQ(m->Unmount(), 0);
  }
  // Killed at once: the next mount (which fences it) is whole.
  for (int i = 0; i < 3; ++i) {
    PG_ASSERT_OK_AND_ASSIGN(std::unique_ptr<PagefsMount> m,
                            MountTimeline("main", absl::StrCat("k", i), kPrefetch));
    m->Kill();
  }
  PG_ASSERT_OK_AND_ASSIGN(std::unique_ptr<PagefsMount> mount,
                          MountTimeline("main", "after", kPrefetch));
  std::unique_ptr<PostgresInstance> pg = NewPostgres(*mount, "after");
  PG_ASSERT_OK(pg->RemoveStalePidFile());
  PG_ASSERT_OK(pg->Start());
  PG_ASSERT_OK_AND_ASSIGN(int64_t rows, pg->QueryInt("SELECT count(*) FROM t"));
  EXPECT_EQ(rows, 100);
  PG_ASSERT_OK(pg->Stop());
  EXPECT_EQ(mount->Unmount(), 0);
}

}  // namespace
}  // namespace pgbranch::testing
