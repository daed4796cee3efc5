#pragma once

#include <libpq-fe.h>

#include <functional>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

// What PostgreSQL is doing, from pg_stat_activity: the input of scale to zero.
namespace pgbranch::compute {

struct ActivitySnapshot {
  // Client sessions (client backends and walsenders) by state, the agent's own excluded.
  // "active" includes sessions still authenticating or in a fast-path call.
  int active = 0;
  int idle = 0;
  int idle_in_transaction = 0;  // aborted transactions included
  int client_sessions = 0;      // active + idle + idle_in_transaction
  int autovacuum_workers = 0;

  // An open session, idle or not, must never be suspended; nor a running autovacuum.
  bool busy() const { return client_sessions > 0 || autovacuum_workers > 0; }
};

// Source of snapshots; an interface so status and metrics can be tested without PostgreSQL.
class ActivitySource {
 public:
  virtual ~ActivitySource() = default;
  virtual absl::StatusOr<ActivitySnapshot> Sample() = 0;
};

// Samples over one persistent libpq connection on the unix socket (reconnecting once when it
// broke). Thread-safe: the HTTP handler and the background sampler share it.
class PgActivitySource : public ActivitySource {
 public:
  explicit PgActivitySource(std::string conninfo);
  ~PgActivitySource() override;

  absl::StatusOr<ActivitySnapshot> Sample() override;
  // A sample only if the connection is open and no other thread is using it (it never
  // connects, never waits): Unavailable otherwise.
  absl::StatusOr<ActivitySnapshot> TrySample();
  // Runs `fn` on the same connection (connecting first if needed; once more on a fresh one if
  // it failed because the connection broke, so `fn` must be safe to repeat), holding it
  // meanwhile: the agent's other superuser work (the parent's checkpoint before a branch) costs
  // no new backend, and no extra session shows in pg_stat_activity (it would count as a client
  // and keep the compute from being suspended). FailedPrecondition after Close.
  absl::Status WithConnection(const std::function<absl::Status(PGconn*)>& fn);
  // Closes the connection (before PostgreSQL stops, so the agent does not hold a backend).
  void Close();

 private:
  absl::Status ConnectLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<ActivitySnapshot> SampleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string conninfo_;
  std::mutex mu_;
  PGconn* conn_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace pgbranch::compute
