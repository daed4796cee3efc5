#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "compute/child_process.h"
#include "compute/compute_config.h"
#include "compute/compute_layout.h"
#include "compute/gated_child.h"
#include "compute/os_user.h"

// Unmodified PostgreSQL on the mounted branch: preparing the data directory, the postmaster as
// a child of the agent (as the postgres user), readiness and the bounded stop.
//
// Not thread-safe: driven by the agent's main thread.
namespace pgbranch::compute {

// What the agent needs from global/pg_control (PostgreSQL 15, pg_control version 1300).
struct PgControlSummary {
  // DBState: 0 starting up, 1 shut down, 2 shut down in recovery, 3 shutting down, 4 in crash
  // recovery, 5 in archive recovery, 6 in production.
  int state = -1;
  // WalLevel: 0 minimal, 1 replica, 2 logical.
  int wal_level = -1;
  // The primary's settings a hot standby must match or exceed (PostgreSQL refuses to replay
  // otherwise: "insufficient parameter settings"); -1 when the file is too short to hold them.
  int max_connections = -1;
  int max_worker_processes = -1;
  int max_wal_senders = -1;
  int max_prepared_xacts = -1;
  int max_locks_per_xact = -1;
  // The last checkpoint's redo point and timeline, and the WAL segment size; 0 when the file is
  // too short to hold them.
  uint64_t redo_lsn = 0;
  uint32_t timeline = 0;
  uint32_t wal_segment_size = 0;

  static constexpr int kShutDown = 1;
  static constexpr int kWalLevelReplica = 1;

  // Cleanly shut down (as a primary): a start needs no WAL replay.
  bool clean() const { return state == kShutDown; }
  // pg_controldata's name of the state ("in production").
  std::string StateName() const;
};

// Parses the start of a pg_control file (native byte order, as the server writes it). An error
// for a file too short, of another pg_control version or with values out of range.
absl::StatusOr<PgControlSummary> ParsePgControl(std::string_view bytes);

class PostgresProcess {
 public:
  using ShouldAbort = std::function<bool()>;
  using Sleep = std::function<void(std::chrono::milliseconds)>;

  PostgresProcess(const ComputeConfig& config, const ComputeLayout& layout, const OsUser& user);

  // Whether the branch holds a PostgreSQL cluster (mnt/pgdata/PG_VERSION).
  bool HasCluster() const;

  // initdb of a new root branch into layout.initdb_dir (SCRAM for TCP, trust on the socket,
  // UTF8, 1 MB WAL segments), then an atomic rename to the data directory. A leftover of an
  // interrupted initdb is removed first. Errors quote initdb's output.
  absl::Status InitDb(const ShouldAbort& should_abort);

  // Reads global/pg_control of the data directory.
  absl::StatusOr<PgControlSummary> ReadControlFile() const;

  // Makes the data directory startable by this compute: removes the postmaster.pid copied from
  // the parent (a branch of a running database carries it; the writer generation guarantees
  // this compute owns the branch alone), and creates (read-only, or read-write with `promote`)
  // or removes (read-write) standby.signal.
  absl::Status PrepareDataDir(bool promote = false);

  // Removes standby.signal and the promote request: a start with `promote` that did not finish
  // must not leave the branch a standby. Only while the postmaster does not run.
  void RemoveStandbySignal();

  // Writes postgresql.conf, pg_hba.conf and pg_ident.conf into the workdir (atomically).
  absl::Status WriteConfigFiles() const;

  // Starts the postmaster (postgres -D DATA -c config_file=workdir/postgresql.conf), output
  // appended to workdir/postgres.log.
  //
  // With `promote` (read-write start of a data directory that was not shut down cleanly, after
  // PrepareDataDir(true)): the server starts as a standby without hot standby and is promoted
  // as `pg_ctl promote` does (a `promote` file and SIGUSR1 to the postmaster, sent by
  // WaitReady as soon as the postmaster runs). The startup process acts on the request only
  // once it has replayed all WAL in pg_wal, exactly as far as crash recovery would, and ends
  // recovery with an end-of-recovery record and a background checkpoint instead of crash
  // recovery's synchronous end-of-recovery checkpoint (seconds through FUSE).
  //
  // After Prespawn, a start without `promote` lets the postmaster spawned ahead run; a start
  // with `promote` (other arguments) discards it and spawns another.
  absl::Status Start(bool promote = false);

  // Spawns the postmaster of a start without a promotion ahead of Start, held before its main()
  // by the start gate library `gate_library` (gated_child.h; "": not done): its exec and the
  // dynamic linking of postgres and its ~40 libraries (tens of ms on a loaded machine) then
  // overlap whatever the agent does until Start (mounting the branch, choosing the recovery,
  // writing the configuration). It reads nothing of the data directory or the configuration
  // until Start. Best effort: on failure Start spawns as usual.
  void Prespawn(const std::string& gate_library);
  // The last Start let the postmaster spawned ahead run.
  bool spawned_ahead() const { return spawned_ahead_; }

  // Watches postmaster.pid until PostgreSQL accepts connections (after a start with
  // `promote`: until it has been promoted; the status line says "ready", never "standby").
  // Errors when the postmaster exits (quoting its log), when `should_abort` says so, or after
  // `timeout`.
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
  SpawnOptions PostmasterSpawnOptions(bool promote, bool gated) const;

  const ComputeConfig& config_;
  const ComputeLayout& layout_;
  const OsUser& user_;
  // Asks the postmaster to promote (idempotent; resent until it is promoted).
  void RequestPromotion();

  off_t log_offset_ = 0;
  bool promote_ = false;
  bool promote_file_written_ = false;
  ChildProcess postmaster_;
  // Spawned ahead by Prespawn, until Start.
  GatedChild gated_;
  bool spawned_ahead_ = false;
};

}  // namespace pgbranch::compute
