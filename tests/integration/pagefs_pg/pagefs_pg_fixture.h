#pragma once

// Shared by the PostgreSQL-on-pagefs tests: a fresh pageserver per test with tenant `t1` and its
// root timeline `main`, helpers to branch and mount timelines and run PostgreSQL on them, and two
// load generators (pgbench in the background, and a ledger client whose acknowledged commits the
// tests check after crashes and at branch points).
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "pageserver/proto/pageserver.grpc.pb.h"
#include "tests/support/pagefs_mount.h"
#include "tests/support/pageserver_process.h"
#include "tests/support/postgres_instance.h"

namespace pgbranch::testing {

// Appends rows `INSERT INTO ledger(id, note) VALUES (n, ...)`, n = 1, 2, ..., one per
// transaction (synchronous commit) through one long-running psql, one statement at a time: the
// INSERT of n+1 is sent only after n was acknowledged. After `\echo ack n` comes back, row n is
// durable by PostgreSQL's contract.
class LedgerWriter {
 public:
  explicit LedgerWriter(const PostgresInstance* pg) : pg_(pg) {}
  ~LedgerWriter() { Abort(); }

  // Creates the table (if missing) and starts the client thread.
  absl::Status Start();
  // Highest id whose commit was acknowledged; every id <= acked() was acknowledged.
  int64_t acked() const { return acked_.load(); }
  // Highest id whose INSERT was handed to psql; no id > sent() was begun.
  int64_t sent() const { return sent_.load(); }
  // Stops after the current row and waits for the client to exit.
  void Stop();
  // SIGKILLs the client (it may be blocked on a dead server) and waits for the thread.
  void Abort();
  // Why the client stopped on its own ("" if it did not).
  std::string error() const;
  // Blocks until acked() >= n; false if the client died or `timeout_seconds` passed.
  bool WaitForAcked(int64_t n, int timeout_seconds) const;

 private:
  void Run();

  const PostgresInstance* pg_;
  PostgresPipe psql_;
  std::atomic<pid_t> psql_pid_{-1};
  std::atomic<int64_t> acked_{0};
  std::atomic<int64_t> sent_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  mutable std::mutex mu_;
  std::string error_;
  std::thread thread_;
};

// `pgbench ARGS` in a background thread.
class BackgroundPgbench {
 public:
  BackgroundPgbench(const PostgresInstance* pg, std::vector<std::string> args);
  ~BackgroundPgbench() { Join(); }
  // Waits for pgbench to end and returns its result.
  const CommandResult& Join();

 private:
  CommandResult result_;
  std::thread thread_;
};

class PagefsPgTest : public ::testing::Test {
 protected:
  void SetUp() override;

  // Restarts a killed pageserver on the same data directory (it gets a new port).
  absl::Status RestartPageserver();

  // A child of `parent` at `lsn` (0: the head); returns the timeline (ancestor_lsn filled in).
  absl::StatusOr<pageserver::v1::Timeline> CreateBranch(const std::string& id,
                                                        const std::string& parent, uint64_t lsn);
  absl::StatusOr<uint64_t> HeadLsn(const std::string& timeline);

  // Mounts `timeline` read-write at <tmp>/mnt/<name> (root directory made traversable by
  // postgres), with pagefs's `extra_args`.
  absl::StatusOr<std::unique_ptr<PagefsMount>> MountTimeline(
      const std::string& timeline, const std::string& name,
      const std::vector<std::string>& extra_args = {});
  // A PostgreSQL instance on <mount>/pgdata with its sockets in <tmp>/s/<name>.
  std::unique_ptr<PostgresInstance> NewPostgres(const PagefsMount& mount, const std::string& name,
                                                std::vector<std::string> settings = {});
  // Mounts `timeline`, runs initdb and starts PostgreSQL on it.
  absl::Status InitPrimary(const std::string& timeline, std::unique_ptr<PagefsMount>* mount,
                           std::unique_ptr<PostgresInstance>* pg);

  std::string path(const std::string& relative) const { return dir_.path() + "/" + relative; }

  TempDir dir_;
  std::unique_ptr<PageserverProcess> server_;
  std::unique_ptr<pageserver::v1::PageService::Stub> stub_;
};

// Fails the test with the status message if `expr` is not OK.
#define PG_ASSERT_OK(expr)                       \
  do {                                           \
    const absl::Status _s = (expr);              \
    ASSERT_TRUE(_s.ok()) << #expr << ": " << _s; \
  } while (0)

// `lhs` = the value of a StatusOr `expr`, or fails the test.
#define PG_ASSERT_OK_AND_ASSIGN(lhs, expr)                    \
  auto PG_CONCAT(_so_, __LINE__) = (expr);                    \
  ASSERT_TRUE(PG_CONCAT(_so_, __LINE__).ok())                 \
      << #expr << ": " << PG_CONCAT(_so_, __LINE__).status(); \
  lhs = std::move(*PG_CONCAT(_so_, __LINE__))
#define PG_CONCAT_INNER(a, b) a##b
#define PG_CONCAT(a, b) PG_CONCAT_INNER(a, b)

}  // namespace pgbranch::testing
