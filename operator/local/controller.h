#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "operator/control/activity_tracker.h"
#include "operator/control/branch_reconciler.h"
#include "operator/control/endpoint_reconciler.h"
#include "operator/control/timeline_service.h"
#include "operator/local/local_compute_runtime.h"
#include "operator/local/local_store.h"

// The local controller: the reconcile core run over the local store and local computes. One
// worker thread takes keys from a de-duplicating work queue (changes, requeues, a resync every
// two seconds, exponential back-off after errors); API threads call Wake() and the proxy's
// route and activity calls. Thread-safe.
namespace pgbranch::cli {

class Controller {
 public:
  struct Options {
    std::string ns = "default";
    absl::Duration wake_timeout = absl::Seconds(60);
    absl::Duration resync = absl::Seconds(2);
  };

  Controller(Options options, LocalStore* store, control::TimelineService* timelines,
             LocalComputeOptions compute_options, Clock* clock);
  ~Controller();

  // Adopts the computes an earlier controller left running (of endpoints that still exist),
  // stops the others, then starts the worker.
  void Start();
  // Stops the worker and every compute (bounded).
  void Shutdown();

  struct Address {
    std::string host;
    int port = 0;
    int status_port = 0;  // the compute agent's /status (the proxy checks it without us)
  };
  // Starts the endpoint's compute if needed and returns where PostgreSQL listens once it accepts
  // connections. NOT_FOUND for an unknown endpoint; UNAVAILABLE with a message for a person when
  // the compute failed or did not start in time.
  absl::StatusOr<Address> Wake(const std::string& name);

  // The proxy's long poll: returns when the route table's version differs from `known` or after
  // `wait`. A call with `known` also says that the proxy now serves that version.
  std::vector<LocalStore::Route> WaitRoutes(int64_t known, absl::Duration wait, int64_t* version);
  int64_t ProxyAppliedVersion() const;
  // Holds the caller until `reached()` is true or `max` has passed, checking it again at each
  // change the controller makes or learns of (a reconcile done, work queued, routes applied by
  // the proxy), instead of polling. `reached` is called without the controller's lock held.
  void WaitUntil(const std::function<bool()>& reached, absl::Duration max);
  void ReportProxyActivity(const std::map<std::string, int>& connections);

  void Enqueue(control::Kind kind, const std::string& ns, const std::string& name);

  // What the daemon supervisor saw of the pageserver: while it is unreachable, wakes fail with
  // `message` and running endpoints carry a PageserverReachable=False condition.
  void SetPageserverReachable(bool reachable, const std::string& message);
  LocalStore* store() { return store_; }
  const Options& options() const { return options_; }

 private:
  using Key = std::tuple<control::Kind, std::string, std::string>;
  void Run();
  void ProcessOne(const Key& key);
  // After an endpoint's reconcile: pushes changed postgresParameters to its running compute
  // and records the outcome and the pageserver's reachability as conditions.
  void ReconcileExtras(const std::string& ns, const std::string& name);

  const Options options_;
  LocalStore* const store_;
  Clock* const clock_;
  control::ActivityTracker activity_;
  std::unique_ptr<LocalComputeRuntime> runtime_;
  std::unique_ptr<control::BranchReconciler> branches_;
  std::unique_ptr<control::EndpointReconciler> endpoints_;

  mutable std::mutex mu_;
  std::condition_variable cv_;             // work arrived, or a compute/route changed
  std::map<Key, absl::Time> due_;          // GUARDED_BY(mu_)
  std::map<Key, absl::Duration> backoff_;  // GUARDED_BY(mu_)
  int64_t proxy_applied_version_ = 0;      // GUARDED_BY(mu_)
  int64_t routes_seen_version_ = 0;        // GUARDED_BY(mu_)
  bool stop_ = false;                      // GUARDED_BY(mu_)
  // Bumped (with cv_ notified) at each change WaitUntil may await. GUARDED_BY(mu_)
  uint64_t changes_ = 0;
  bool pageserver_reachable_ = true;  // GUARDED_BY(mu_)
  std::string pageserver_message_;    // GUARDED_BY(mu_)
  std::thread worker_;
};

}  // namespace pgbranch::cli
