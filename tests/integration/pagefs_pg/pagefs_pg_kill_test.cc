// kill -9 of each process under a PostgreSQL write load (DESIGN.md section 6, tier 2): of
// PostgreSQL, of pagefs, of the pageserver. After restarting what was killed, PostgreSQL must
// recover, pass pg_amcheck and hold every ledger row whose commit was ever acknowledged
// (acknowledged means durable, end to end).
#include <chrono>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/integration/pagefs_pg/pagefs_pg_fixture.h"

namespace pgbranch::testing {
namespace {

using StopMode = PostgresInstance::StopMode;

constexpr int kScale = 2;  // 200,000 pgbench_accounts rows

class KillTest : public PagefsPgTest {
 protected:
  void TearDown() override {
    // Whatever happened: no client may wait on a server that is going away.
    if (ledger_) ledger_->Abort();
    if (pg_) pg_->Kill9();
    load_.reset();
  }

  // A primary on `main` under load: pgbench -c 2 and the ledger client, past a checkpoint.
  void StartUnderLoad() {
    PG_ASSERT_OK(InitPrimary("main", &mount_, &pg_));
    PG_ASSERT_OK(pg_->Pgbench({"-i", "-q", "-s", std::to_string(kScale)}).status());
    ledger_ = std::make_unique<LedgerWriter>(pg_.get());
    PG_ASSERT_OK(ledger_->Start());
    load_ = std::make_unique<BackgroundPgbench>(
        pg_.get(), std::vector<std::string>{"-n", "-c", "2", "-j", "2", "-T", "120"});
    ASSERT_TRUE(ledger_->WaitForAcked(50, 60)) << ledger_->error();
    PG_ASSERT_OK(pg_->Query("CHECKPOINT").status());
    // Some load after the checkpoint, so that recovery has WAL to replay.
    int64_t target = ledger_->acked() + 300;
    ASSERT_TRUE(ledger_->WaitForAcked(target, 60)) << ledger_->error();
  }

  // After the kill: stops the clients (they fail on the dead server) and records what was
  // acknowledged: final, since nothing can be acknowledged any more.
  void StopLoad() {
    ledger_->Abort();
    const CommandResult& result = load_->Join();
    EXPECT_NE(result.exit_code, 0) << "pgbench did not notice the crash";
    acked_ = ledger_->acked();
    sent_ = ledger_->sent();
    ASSERT_GT(acked_, 0);
    std::cout << "[   INFO   ] ledger rows acknowledged before the crash: " << acked_
              << ", begun: " << sent_ << "\n";
  }

  // Starts PostgreSQL on the (re)mounted data directory and checks what recovery gave back.
  void RecoverAndCheck() {
    PG_ASSERT_OK(pg_->Start());
    PG_ASSERT_OK_AND_ASSIGN(
        int64_t present,
        pg_->QueryInt(absl::StrCat("SELECT count(*) FROM ledger WHERE id <= ", acked_)));
    EXPECT_EQ(present, acked_) << "acknowledged ledger rows lost (acked " << acked_ << ")";
    PG_ASSERT_OK_AND_ASSIGN(int64_t max_id,
                            pg_->QueryInt("SELECT coalesce(max(id), 0) FROM ledger"));
    EXPECT_LE(max_id, sent_);
    EXPECT_GE(max_id, acked_);
    PG_ASSERT_OK_AND_ASSIGN(int64_t accounts,
                            pg_->QueryInt("SELECT count(*) FROM pgbench_accounts"));
    EXPECT_EQ(accounts, kScale * 100000);
    PG_ASSERT_OK(pg_->AmCheck());
    // A working primary again: it can write and checkpoint, and pgbench runs.
    PG_ASSERT_OK(pg_->Query(absl::StrCat("INSERT INTO ledger VALUES (", sent_ + 1,
                                         ", 'after recovery');\nCHECKPOINT;"))
                     .status());
    PG_ASSERT_OK(pg_->Pgbench({"-n", "-c", "2", "-t", "200"}).status());
    PG_ASSERT_OK(pg_->Stop(StopMode::kFast));
    EXPECT_EQ(mount_->Unmount(), 0);
  }

  std::unique_ptr<PagefsMount> mount_;
  std::unique_ptr<PostgresInstance> pg_;
  std::unique_ptr<LedgerWriter> ledger_;
  std::unique_ptr<BackgroundPgbench> load_;
  int64_t acked_ = 0;
  int64_t sent_ = 0;
};

TEST_F(KillTest, KillPostgres) {
  ASSERT_NO_FATAL_FAILURE(StartUnderLoad());
  pg_->Kill9();
  ASSERT_NO_FATAL_FAILURE(StopLoad());
  // Same mount, same pagefs: only the compute crashed.
  ASSERT_NO_FATAL_FAILURE(RecoverAndCheck());
}

TEST_F(KillTest, KillPagefs) {
  ASSERT_NO_FATAL_FAILURE(StartUnderLoad());
  mount_->Kill();  // PostgreSQL now gets ENOTCONN; it may PANIC on its own
  pg_->Kill9();
  ASSERT_NO_FATAL_FAILURE(StopLoad());
  PG_ASSERT_OK(mount_->Mount());  // a new pagefs, a new writer generation
  ASSERT_NO_FATAL_FAILURE(RecoverAndCheck());
}

TEST_F(KillTest, KillPageserver) {
  ASSERT_NO_FATAL_FAILURE(StartUnderLoad());
  server_->Kill();
  // pagefs cannot commit any more and holds the old address: the compute restarts as a whole.
  pg_->Kill9();
  mount_->Kill();
  ASSERT_NO_FATAL_FAILURE(StopLoad());
  PG_ASSERT_OK(RestartPageserver());
  PG_ASSERT_OK_AND_ASSIGN(mount_, MountTimeline("main", "main"));
  ASSERT_NO_FATAL_FAILURE(RecoverAndCheck());
}

}  // namespace
}  // namespace pgbranch::testing
