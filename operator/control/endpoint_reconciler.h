#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "operator/control/reconcile_context.h"

// Reconciles one Endpoint: whether its compute should run (scale to zero), starting and stopping
// it through the ComputeRuntime, and its status.
//
// Invariant: a compute is never stopped while it is busy — a client connection is open at the
// proxy, or the compute reports an open session, a running query or autovacuum. It is stopped
// when it has been idle for spec.suspendTimeout (0: never). Activity is the latest of: a wake
// request, an open connection, the compute's last busy moment, and the endpoint's creation (a new
// endpoint starts at once, as on Neon). During a reset of its branch the compute is stopped.
// One exception: a person's suspend request (kAnnotationSuspendRequestedAt) stops it now and
// keeps it stopped until a later wake or start request (kAnnotationStartRequestedAt).
//
// One read-write endpoint per branch: a later one gets Ready=False reason=Conflict and no
// compute (local mode refuses it before storing it; Kubernetes cannot, so this is the rule).
//
// Reconcile() runs on one worker thread; LastFailure() may be called from any thread.
namespace pgbranch::control {

class EndpointReconciler {
 public:
  explicit EndpointReconciler(ReconcileContext ctx) : ctx_(std::move(ctx)) {}
  absl::StatusOr<ReconcileResult> Reconcile(const std::string& ns, const std::string& name);

  struct Failure {
    absl::Time time;
    std::string message;
    int count = 0;
  };
  // The last failed start of the endpoint's compute since it last ran, if any.
  std::optional<Failure> LastFailure(const std::string& ns, const std::string& name) const;

  // The ephemeral timeline a ReadOnly endpoint runs on (ids of at most 64 characters).
  static std::string ReadOnlyTimelineId(const std::string& endpoint);

 private:
  absl::StatusOr<ReconcileResult> Finalize(const Endpoint& e, EndpointStatus* st,
                                           const ComputeObservation& obs);
  // The read-write endpoint that holds `e`'s branch (none for a ReadOnly `e`).
  std::optional<std::string> ReadWriteHolder(const Endpoint& e) const;
  absl::Status StartCompute(const Endpoint& e, const Branch& b, EndpointStatus* st);
  // `s`, with the branch that holds the history before `b`'s branch point named, when `s` says
  // a read-only endpoint's point is before it (OUT_OF_RANGE).
  absl::Status WithOlderHistoryHint(const Endpoint& e, const Branch& b,
                                    const absl::Status& s) const;
  // A suspended ReadOnly endpoint keeps no timeline: it would pin its branch (no reset).
  absl::Status DropEphemeralTimeline(const Endpoint& e, const Branch& b, EndpointStatus* st);
  absl::Status Write(const Endpoint& e, const EndpointStatus& st);
  void RecordFailure(const std::string& key, const std::string& message, absl::Time now);
  void ClearFailure(const std::string& key);

  ReconcileContext ctx_;
  mutable std::mutex mu_;
  std::map<std::string, Failure> failures_;  // GUARDED_BY(mu_)
  // When each compute was first seen running: a start counts as activity, so a compute gets
  // its suspendTimeout of life even when starting took longer than that (initdb).
  std::map<std::string, absl::Time> running_since_;  // only the reconcile thread
};

}  // namespace pgbranch::control
