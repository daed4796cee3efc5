#pragma once

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "operator/kube/kube_client.h"

// Leader election on a coordination.k8s.io/v1 Lease, like client-go's leaderelection:
// - a candidate takes the Lease when it is absent, released (holderIdentity ""), or expired;
//   expiry is judged by OUR clock since we last saw the record change (observed time +
//   leaseDurationSeconds), not by comparing renewTime with our clock (clocks may skew);
// - the leader renews every retry_period; each write carries the resourceVersion read, so a
//   concurrent writer makes it fail with ABORTED (lost the race);
// - when the leader has not renewed successfully for renew_deadline, or sees another holder,
//   it stops leading at once (OnStoppedLeading) and the elector ends: the operator exits;
// - Stop() while leading releases the Lease (holderIdentity "", leaseDurationSeconds 1) so a
//   successor takes over without waiting for expiry, then calls OnStoppedLeading.
// Callbacks run on the elector's thread and must not block (start workers elsewhere) nor call
// Stop(). IsLeader() is thread-safe.
namespace pgbranch::kube {

class LeaderElector {
 public:
  struct Options {
    std::string lease_namespace;
    std::string lease_name;
    std::string identity;  // unique per process, e.g. pod name + random suffix
    absl::Duration lease_duration = absl::Seconds(15);
    absl::Duration renew_deadline = absl::Seconds(10);
    absl::Duration retry_period = absl::Seconds(2);
    Clock* clock = RealClock();  // for timestamps and expiry judgement
    std::function<void()> on_started_leading;
    std::function<void()> on_stopped_leading;
    std::function<void(const std::string& identity)> on_new_leader;  // optional
  };

  LeaderElector(KubeClient* client, Options options);
  ~LeaderElector();  // Stop()

  void Start();  // starts the election thread; call once
  // Releases the Lease when leading (best effort) and ends the thread; idempotent.
  void Stop();
  bool IsLeader();
  // True once the elector has ended: stopped, or lost the lease.
  bool Done();

 private:
  void Run();
  // One attempt to take or renew the Lease; true when we hold it after the call.
  bool TryAcquireOrRenew();
  void Release();
  bool SleepFor(absl::Duration d);
  absl::Time Now() const;

  KubeClient* const client_;
  const Options options_;

  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool leading_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;

  // Only the election thread touches these.
  std::string observed_record_;  // holder + renewTime + rv of the last record seen
  absl::Time observed_time_ = absl::InfinitePast();
  std::string last_holder_;
  std::thread thread_;
};

}  // namespace pgbranch::kube
