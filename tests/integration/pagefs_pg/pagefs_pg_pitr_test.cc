// Branches at many LSNs of a timeline under a PostgreSQL write load (DESIGN.md section 3: every
// committed LSN is a crash-consistent data directory). Each branch must recover, pass pg_amcheck,
// hold every ledger row acknowledged before its branch point and none begun after it.
#include <chrono>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/integration/pagefs_pg/pagefs_pg_fixture.h"

namespace pgbranch::testing {
namespace {

using StopMode = PostgresInstance::StopMode;

constexpr int kBranches = 24;
constexpr int kScale = 4;  // 400,000 pgbench_accounts rows
constexpr int kParallelChecks = 2;
// pgbench's rate (tps) during the branch points: the WAL a branch replays (full-page images after
// each checkpoint, mostly) grows with it, and so does the test's time.
constexpr int kRate = 400;

struct BranchPoint {
  std::string id;
  uint64_t lsn = 0;
  int64_t acked_before = 0;  // rows 1..acked_before were acknowledged before `lsn` was read
  int64_t sent_before = 0;   // rows > sent_before were begun after `lsn` was read
};

class PointInTimeTest : public PagefsPgTest {
 protected:
  // Mounts the branch, starts PostgreSQL on it (crash recovery) and checks it; a summary line.
  absl::StatusOr<std::string> CheckBranch(const BranchPoint& bp) {
    auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::unique_ptr<PagefsMount>> mount = MountTimeline(bp.id, bp.id);
    if (!mount.ok()) return mount.status();
    std::unique_ptr<PostgresInstance> pg = NewPostgres(**mount, bp.id);
    auto fail = [&](const std::string& what) {
      return absl::InternalError(absl::StrCat("branch ", bp.id, " at LSN ", bp.lsn, " (acked ",
                                              bp.acked_before, ", sent ", bp.sent_before,
                                              "): ", what, "\n--- log ---\n", pg->LogTail()));
    };
    absl::Status s = pg->RemoveStalePidFile();
    if (s.ok()) s = pg->Start();
    if (!s.ok()) return fail(s.ToString());
    absl::StatusOr<int64_t> present =
        pg->QueryInt(absl::StrCat("SELECT count(*) FROM ledger WHERE id <= ", bp.acked_before));
    if (!present.ok()) return fail(present.status().ToString());
    if (*present != bp.acked_before) {
      return fail(absl::StrCat("only ", *present, " of the ", bp.acked_before,
                               " acknowledged ledger rows are present"));
    }
    absl::StatusOr<std::string> later = pg->Query(absl::StrCat(
        "SELECT coalesce(string_agg(id::text, ','), '') FROM ledger WHERE id > ", bp.sent_before));
    if (!later.ok()) return fail(later.status().ToString());
    if (!later->empty()) return fail("rows begun after the branch point are present: " + *later);
    absl::StatusOr<int64_t> max_id = pg->QueryInt("SELECT coalesce(max(id), 0) FROM ledger");
    if (!max_id.ok()) return fail(max_id.status().ToString());
    auto recovered = std::chrono::steady_clock::now();
    absl::StatusOr<int64_t> accounts = pg->QueryInt("SELECT count(*) FROM pgbench_accounts");
    if (!accounts.ok()) return fail(accounts.status().ToString());
    if (*accounts != kScale * 100000) return fail(absl::StrCat(*accounts, " pgbench_accounts"));
    s = pg->AmCheck();
    if (!s.ok()) return fail(s.ToString());
    s = pg->Stop(StopMode::kImmediate);
    if (!s.ok()) return fail(s.ToString());
    if (int code = (*mount)->Unmount(); code != 0) {
      return fail(absl::StrCat("pagefs exit code ", code, " at unmount"));
    }
    auto ms = [](auto d) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    };
    return absl::StrCat(bp.id, " lsn=", bp.lsn, " acked<=", bp.acked_before,
                        " sent<=", bp.sent_before, " max_id=", *max_id,
                        " recovered_in_ms=", ms(recovered - start),
                        " total_ms=", ms(std::chrono::steady_clock::now() - start));
  }
};

TEST_F(PointInTimeTest, PointInTimeBranches) {
  std::unique_ptr<PagefsMount> mount;
  std::unique_ptr<PostgresInstance> pg;
  PG_ASSERT_OK(InitPrimary("main", &mount, &pg));
  PG_ASSERT_OK(pg->Pgbench({"-i", "-q", "-s", std::to_string(kScale)}).status());
  // Without it, every branch would replay the ~50 MB of WAL of the initial load.
  PG_ASSERT_OK(pg->Query("CHECKPOINT").status());
  LedgerWriter ledger(pg.get());
  PG_ASSERT_OK(ledger.Start());
  ASSERT_TRUE(ledger.WaitForAcked(1, 60)) << ledger.error();

  std::vector<BranchPoint> points;
  {
    BackgroundPgbench load(pg.get(),
                           {"-n", "-c", "2", "-j", "2", "-T", "15", "-R", std::to_string(kRate)});
    // Checkpoints all along: branch points fall before, during and after them, and recovery
    // of a branch replays at most a few seconds of WAL. A jthread joins on every exit path.
    std::jthread checkpointer([&](std::stop_token stop) {
      while (!stop.stop_requested()) {
        for (int i = 0; i < 30 && !stop.stop_requested(); ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        absl::StatusOr<std::string> r = pg->Query("CHECKPOINT");
        EXPECT_TRUE(r.ok()) << r.status();
      }
    });
    auto start = std::chrono::steady_clock::now();
    uint64_t last_lsn = 0;
    while (static_cast<int>(points.size()) < kBranches) {
      ASSERT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
      // Spread the branch points over the load (~13 s); LSNs move on their own.
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      BranchPoint bp;
      bp.acked_before = ledger.acked();
      PG_ASSERT_OK_AND_ASSIGN(bp.lsn, HeadLsn("main"));
      bp.sent_before = ledger.sent();
      if (bp.lsn == last_lsn) continue;
      last_lsn = bp.lsn;
      bp.id = absl::StrCat("pitr", points.size());
      PG_ASSERT_OK_AND_ASSIGN(pageserver::v1::Timeline t, CreateBranch(bp.id, "main", bp.lsn));
      EXPECT_EQ(t.ancestor_lsn(), bp.lsn);
      points.push_back(bp);
    }
    checkpointer.request_stop();
    checkpointer.join();
    const CommandResult& result = load.Join();
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
  }
  ledger.Stop();
  EXPECT_EQ(ledger.error(), "");
  EXPECT_GT(points.back().acked_before, points.front().acked_before);
  PG_ASSERT_OK(pg->Stop(StopMode::kFast));
  EXPECT_EQ(mount->Unmount(), 0);

  // Check the branches, a few at a time.
  std::vector<absl::StatusOr<std::string>> results(points.size(), absl::UnknownError("not run"));
  for (size_t first = 0; first < points.size(); first += kParallelChecks) {
    std::vector<std::thread> workers;
    for (size_t i = first; i < std::min(points.size(), first + kParallelChecks); ++i) {
      // Each worker starts and stops its own PostgreSQL: the postmaster's parent-death signal is
      // bound to the thread, which outlives it.
      workers.emplace_back([&, i] { results[i] = CheckBranch(points[i]); });
    }
    for (auto& w : workers) w.join();
  }
  for (size_t i = 0; i < points.size(); ++i) {
    EXPECT_TRUE(results[i].ok()) << results[i].status();
    if (results[i].ok()) std::cout << "[   INFO   ] " << *results[i] << "\n";
  }
}

// pgbench -i's COPY and index builds stream to the pageserver as they are written (a file that
// buffers more than --issue-ahead-mb is issued in the background, before any fsync of it): every
// LSN in the middle of that stream must still be a crash-consistent data directory.
TEST_F(PointInTimeTest, BranchesInTheMiddleOfABulkLoadRecover) {
  std::unique_ptr<PagefsMount> mount;
  std::unique_ptr<PostgresInstance> pg;
  PG_ASSERT_OK(InitPrimary("main", &mount, &pg));
  std::vector<BranchPoint> points;
  {
    BackgroundPgbench load(pg.get(), {"-i", "-q", "-s", std::to_string(kScale)});
    uint64_t last_lsn = 0;
    auto start = std::chrono::steady_clock::now();
    // Until pgbench ends (its connection's backend is gone) or enough points are taken.
    while (static_cast<int>(points.size()) < kBranches / 2) {
      ASSERT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(120));
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
      absl::StatusOr<int64_t> loading =
          pg->QueryInt("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgbench'");
      if (!loading.ok() || *loading == 0) break;
      BranchPoint bp;
      PG_ASSERT_OK_AND_ASSIGN(bp.lsn, HeadLsn("main"));
      if (bp.lsn == last_lsn) continue;
      last_lsn = bp.lsn;
      bp.id = absl::StrCat("bulk", points.size());
      PG_ASSERT_OK_AND_ASSIGN(pageserver::v1::Timeline t, CreateBranch(bp.id, "main", bp.lsn));
      EXPECT_EQ(t.ancestor_lsn(), bp.lsn);
      points.push_back(bp);
    }
    const CommandResult& result = load.Join();
    ASSERT_EQ(result.exit_code, 0) << result.Describe();
  }
  ASSERT_GE(points.size(), 2u) << "the load ended before two branch points were taken";
  std::cout << "[   INFO   ] " << points.size() << " branch points during pgbench -i, LSN "
            << points.front().lsn << " to " << points.back().lsn << "\n";
  PG_ASSERT_OK(pg->Stop(StopMode::kFast));
  EXPECT_EQ(mount->Unmount(), 0);

  auto check = [&](const BranchPoint& bp) -> absl::Status {
    absl::StatusOr<std::unique_ptr<PagefsMount>> m = MountTimeline(bp.id, bp.id);
    if (!m.ok()) return m.status();
    std::unique_ptr<PostgresInstance> branch = NewPostgres(**m, bp.id);
    absl::Status s = branch->RemoveStalePidFile();
    if (s.ok()) s = branch->Start();
    // A branch taken before pgbench's tables were committed has none; one after has them whole.
    if (s.ok()) {
      absl::StatusOr<int64_t> tables =
          branch->QueryInt("SELECT count(*) FROM pg_class WHERE relname = 'pgbench_accounts'");
      if (!tables.ok()) {
        s = tables.status();
      } else if (*tables == 1) {
        absl::StatusOr<int64_t> rows = branch->QueryInt("SELECT count(*) FROM pgbench_accounts");
        if (!rows.ok())
          s = rows.status();
        else if (*rows != 0 && *rows != kScale * 100000) {
          s = absl::InternalError(absl::StrCat(*rows, " pgbench_accounts rows"));
        }
      }
    }
    if (s.ok()) s = branch->AmCheck();
    if (!s.ok()) {
      return absl::InternalError(absl::StrCat("branch ", bp.id, " at LSN ", bp.lsn, ": ",
                                              s.ToString(), "\n--- log ---\n", branch->LogTail()));
    }
    s = branch->Stop(StopMode::kImmediate);
    if (int code = (*m)->Unmount(); s.ok() && code != 0) {
      s = absl::InternalError(absl::StrCat("pagefs exit code ", code, " at unmount"));
    }
    return s;
  };
  std::vector<absl::Status> results(points.size(), absl::UnknownError("not run"));
  for (size_t first = 0; first < points.size(); first += kParallelChecks) {
    std::vector<std::thread> workers;
    for (size_t i = first; i < std::min(points.size(), first + kParallelChecks); ++i) {
      workers.emplace_back([&, i] { results[i] = check(points[i]); });
    }
    for (auto& w : workers) w.join();
  }
  for (size_t i = 0; i < points.size(); ++i) EXPECT_TRUE(results[i].ok()) << results[i];
}

}  // namespace
}  // namespace pgbranch::testing
