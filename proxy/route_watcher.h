#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "proxy/control_client.h"

namespace pgbranch::proxy {

// Keeps the proxy's per-endpoint listeners in step with the controller's route table.
//
// A background thread long-polls GET /v1/routes, passing the version it has APPLIED (every
// listener of that version open), and calls `apply` with each new table. When `apply` fails
// (a port cannot be bound) the version is not acknowledged and the table is fetched and applied
// again after a back-off; so is a failed poll (controller down), with back-off doubling from
// `initial_backoff` to `max_backoff`.
class RouteWatcher {
 public:
  using ApplyFn = std::function<absl::Status(const RouteTable&)>;
  struct Options {
    int wait_seconds = 30;
    std::chrono::milliseconds initial_backoff{100};
    std::chrono::milliseconds max_backoff{5000};
  };

  RouteWatcher(ControlClient* control, ApplyFn apply, Options options);
  ~RouteWatcher();  // Stop()

  void Start();
  // Ends the thread. A long poll in progress ends only when the ControlClient is shut down
  // (ControlClient::Shutdown()) or the poll returns: call that first. Idempotent.
  void Stop();

  // The version applied last (0 before the first), for tests and logs.
  int64_t applied_version() const;

 private:
  void Loop();
  bool Sleep(std::chrono::milliseconds d);  // false when stopping

  ControlClient* const control_;
  const ApplyFn apply_;
  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;            // GUARDED_BY(mu_)
  int64_t applied_version_ = 0;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace pgbranch::proxy
