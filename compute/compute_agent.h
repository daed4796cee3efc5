#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "common/clock.h"
#include "common/http_server.h"
#include "compute/activity_sampler.h"
#include "compute/compute_config.h"
#include "compute/compute_layout.h"
#include "compute/compute_metrics.h"
#include "compute/compute_status.h"
#include "compute/os_user.h"
#include "compute/pagefs_process.h"
#include "compute/postgres_process.h"
#include "compute/signal_waiter.h"

// pgbranch-compute: one endpoint's compute, from spawn to suspend.
//
//   start:  serve /status (state starting) → mount pagefs → initdb (new root branch) → prepare
//           the data directory → write the config files → start PostgreSQL → wait until it
//           accepts connections → role and password (read-write) → running
//
//           A read-write start of a data directory that was not shut down cleanly (pg_control;
//           a branch of a running database is a crash image) replays its WAL: by crash
//           recovery when little WAL follows the last checkpoint (its synchronous checkpoint is
//           then cheap), else as a standby promoted once it has replayed pg_wal (the checkpoint
//           runs in the background); recovery_choice.h. Readiness waits for the promotion;
//           standby.signal is removed if the start fails before it.
//   run:    sample pg_stat_activity every second (and on every /status, unless the sampler is
//           busy: /status never waits for it); watch the children;
//           on SIGHUP re-read the parameters from the config file: PostgreSQL reloads them, or
//           restarts (fast shutdown, same mount) when one of them has pg_settings.context
//           'postmaster'; /status says which ("parameters_message")
//   stop:   on SIGTERM/SIGINT: fast shutdown (then immediate, then SIGKILL), unmount (pagefs
//           flushes), exit 0. On a failure (PostgreSQL or pagefs died, a start step failed):
//           state failed with a message, the same cleanup, exit 1.
//
// Invariant: when Run() returns, no PostgreSQL of this compute runs and nothing is mounted on
// workdir/mnt. Every stop step is bounded, so the whole stop is.
//
// Threads: Run() owns the main thread (spawning and reaping children, signals); the HTTP server
// and the sampler thread only read the status and query PostgreSQL over their own connection.
namespace pgbranch::compute {

class ComputeAgent {
 public:
  // `waiter` must have blocked the signals (SignalWaiter::BlockSignals) before any thread.
  ComputeAgent(ComputeConfig config, Clock* clock, SignalWaiter* waiter);
  ~ComputeAgent();

  // Runs the compute; returns the process exit code.
  int Run();

  // The file the configuration came from: SIGHUP re-reads its parameters ("" = from the
  // environment: no reload).
  void set_config_path(std::string path) { config_path_ = std::move(path); }
  // A pagefs started ahead of the mount (spare_pagefs.h), for the first mount.
  void set_spare_pagefs(SparePagefs spare) { spare_pagefs_ = std::move(spare); }

 private:
  absl::Status StartServing();
  absl::Status StartCompute();
  absl::Status PrepareWorkdir();
  // After a new root's initdb and first start: a fast shutdown, a fresh mount and a second
  // start and role step. initdb wrote every file through the kernel's page cache, which served
  // the first start whole, so pagefs learned nothing of what a start reads; the second start
  // reads through FUSE and its pagefs keeps those pages in the timeline, where every branch of
  // the root finds them and prefetches them at its own start (docs/pagefs.md, "A new branch's
  // start reads what its parent's start read"). Once per root, ~0.5 s.
  absl::Status RestartToLearnStartReads();
  // The role and password (role_setup.h) on the endpoint's database, through the socket.
  absl::Status RunRoleStep();
  // Waits for a stop signal or a child's death; the failure message if a child died.
  std::optional<std::string> Monitor();
  // Applies the parameters of the re-read config file (SIGHUP). An error only if PostgreSQL
  // could not be brought back (the compute then fails).
  absl::Status ReloadParameters();
  // Stops whatever runs; an error if the cleanup was not clean.
  absl::Status Shutdown();

  HttpResponse Handle(const std::string& method, const std::string& path);
  // Samples pg_stat_activity into the status while running. `wait`: else (HTTP handlers) skips
  // when the sampler is busy or not connected yet, rather than blocking the answer on it.
  void RefreshActivity(bool wait);
  void SamplerLoop();

  bool ShouldAbort();
  void Sleep(std::chrono::milliseconds d) { waiter_->Sleep(d); }
  std::chrono::milliseconds Remaining() const;

  // Log fields that identify this compute.
  std::string endpoint() const { return config_.endpoint; }

  // Only `parameters` changes after construction (ReloadParameters, main thread).
  ComputeConfig config_;
  // Read-only endpoints: the primary's settings from pg_control, read at start (standby minimums).
  std::optional<PgControlSummary> primary_control_;
  std::string config_path_;
  Clock* const clock_;
  SignalWaiter* const waiter_;
  const std::chrono::steady_clock::time_point start_time_;
  std::chrono::steady_clock::time_point start_deadline_;

  ComputeStatus status_;
  ComputeMetrics metrics_;
  HttpServer http_;

  std::optional<ComputeLayout> layout_;
  std::optional<OsUser> user_;
  std::string password_;
  std::optional<SparePagefs> spare_pagefs_;
  std::unique_ptr<PagefsProcess> pagefs_;
  std::unique_ptr<PostgresProcess> postgres_;
  bool mounted_ = false;
  bool postgres_started_ = false;
  // standby.signal written for a promotion that has not completed yet.
  bool promotion_pending_ = false;
  // Durations of the start steps (seconds), logged with "Started PostgreSQL".
  double mount_seconds_ = 0, initdb_seconds_ = 0, postgres_seconds_ = 0, role_seconds_ = 0;
  std::string recovery_ = "none";

  // Created once PostgreSQL runs; closed before it stops.
  std::unique_ptr<PgActivitySource> activity_;
  std::mutex sampler_mu_;
  std::condition_variable sampler_cv_;
  bool sampler_stop_ = false;
  std::thread sampler_;
};

}  // namespace pgbranch::compute
