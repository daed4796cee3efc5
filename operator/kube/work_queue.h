#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

// The controller work queue (client-go's rate-limited delaying queue):
// - a key waiting in the queue is there once however often it is added (de-duplication);
// - a key is handed to one worker at a time: adding it while it is being processed marks it
//   dirty, and it is queued again when the worker calls Done();
// - AddAfter(key, d) queues it once d has passed (timers: TTL, suspend, requeue_after); an
//   earlier pending time wins;
// - AddRateLimited(key) = AddAfter with a per-key exponential delay (base doubling to max)
//   that grows until Forget(key) (call it after a successful reconcile).
// Thread-safe; any number of workers may call Get()/Done().
namespace pgbranch::kube {

class WorkQueue {
 public:
  struct Options {
    absl::Duration base_delay = absl::Milliseconds(5);
    absl::Duration max_delay = absl::Minutes(5);
  };
  WorkQueue() : WorkQueue(Options()) {}
  explicit WorkQueue(Options options) : options_(options) {}

  void Add(const std::string& key);
  void AddAfter(const std::string& key, absl::Duration delay);
  void AddRateLimited(const std::string& key);
  // Clears the key's back-off (does not remove a pending add).
  void Forget(const std::string& key);
  // How many rate-limited adds since the last Forget.
  int NumRequeues(const std::string& key);

  // Blocks until a key is ready (it is then in flight until Done), or returns nullopt once the
  // queue is shut down.
  std::optional<std::string> Get();
  void Done(const std::string& key);
  // Wakes every Get() with nullopt; adds are ignored from now on.
  void ShutDown();
  bool ShuttingDown();
  // Keys ready to be processed (the queue-depth metric); excludes in-flight and delayed keys.
  size_t Len();
  // Keys waiting for a delay to pass.
  size_t DelayedLen();

 private:
  void AddLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PromoteDueLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::set<std::pair<uint64_t, std::string>> queue_ ABSL_GUARDED_BY(mu_);  // (order, key): FIFO
  std::map<std::string, uint64_t> queued_ ABSL_GUARDED_BY(mu_);            // key -> order
  uint64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> processing_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> dirty_ ABSL_GUARDED_BY(mu_);  // re-added while in flight
  std::set<std::pair<absl::Time, std::string>> delayed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Time> delayed_at_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> failures_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace pgbranch::kube
