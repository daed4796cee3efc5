#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "operator/compute/child_process.h"
#include "operator/compute/compute_config.h"
#include "operator/compute/compute_layout.h"
#include "operator/compute/os_user.h"

// Unmodified PostgreSQL on the mounted branch: preparing the data directory, the postmaster as
// a child of the agent (as the postgres user), readiness and the bounded stop.
//
// Not thread-safe: driven by the agent's main thread.
namespace pgbranch::compute {

class PostgresProcess {
 public:
  using ShouldAbort = std::function<bool()>;
  using Sleep = std::function<void(std::chrono::milliseconds)>;

  PostgresProcess(const ComputeConfig& config, const ComputeLayout& layout, const OsUser& user);

  // Whether the branch holds a PostgreSQL cluster (mnt/pgdata/PG_VERSION).
  bool HasCluster() const;

  // initdb of a new root branch into layout.initdb_dir (SCRAM for TCP, trust on the socket,
  // UTF8), then an atomic rename to the data directory. A leftover of an interrupted initdb is
  // removed first. Errors quote initdb's output.
  absl::Status InitDb(const ShouldAbort& should_abort);

  // Makes the data directory startable by this compute: removes the postmaster.pid copied from
  // the parent (a branch of a running database carries it; the writer generation guarantees
  // this compute owns the branch alone), and creates (read-only) or removes (read-write)
  // standby.signal.
  absl::Status PrepareDataDir();

  // Writes postgresql.conf, pg_hba.conf and pg_ident.conf into the workdir (atomically).
  absl::Status WriteConfigFiles() const;

  // Starts the postmaster (postgres -D DATA -c config_file=workdir/postgresql.conf), output
  // appended to workdir/postgres.log.
  absl::Status Start();

  // Polls (PQping on the unix socket) until PostgreSQL accepts connections. Errors when the
  // postmaster exits (quoting its log), when `should_abort` says so, or after `timeout`.
  absl::Status WaitReady(std::chrono::milliseconds timeout, const ShouldAbort& should_abort,
                         const Sleep& sleep);

  // Whether the postmaster runs (reaps it if it exited).
  bool Alive();
  // Why the postmaster stopped: its exit and the tail of its log of this run.
  std::string DescribeExit();

  // Fast shutdown (SIGINT); after `fast_timeout` immediate shutdown (SIGQUIT); after 5 more
  // seconds SIGKILL. Returns "fast", "immediate", "killed" or "not running".
  std::string Stop(std::chrono::milliseconds fast_timeout);

  // SIGKILLs processes of the postgres user whose working directory is the data directory:
  // backends orphaned by a postmaster that died (they hold files open on the mount, so the
  // unmount would have to wait for them to notice). Returns how many were found.
  int KillOrphans();

  // libpq connection string for the postgres superuser over the unix socket.
  std::string SocketConnInfo(const std::string& dbname) const;

 private:
  std::vector<std::string> Environment() const;
  // The status line of our postmaster's postmaster.pid, or "" (not written yet, or not ours).
  std::string PostmasterStatus() const;

  const ComputeConfig& config_;
  const ComputeLayout& layout_;
  const OsUser& user_;
  off_t log_offset_ = 0;
  ChildProcess postmaster_;
};

}  // namespace pgbranch::compute
