#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "operator/control/reconcile_context.h"
#include "operator/control/timeline_service.h"

// Reconciles one Branch: its timeline at the pageserver (created from the parent at the start
// point), retention, declarative reset from the parent (computes stopped first, so no writer
// survives a reset), status figures, expiry (an expired branch is deleted with its endpoints;
// one with children is kept and says so), and deletion (refused while children exist;
// endpoints first, then the timeline). Level-triggered: every pass starts from what is.
// Not thread-safe: one reconcile worker calls it.
namespace pgbranch::control {

// How long a new branch waits for its parent's checkpoint; past it, the branch is taken anyway
// (and replays the WAL since the parent's previous checkpoint at its first start).
inline constexpr absl::Duration kParentCheckpointTimeout = absl::Seconds(2);

class BranchReconciler {
 public:
  explicit BranchReconciler(ReconcileContext ctx) : ctx_(std::move(ctx)) {}
  // An error means "try again with back-off"; conditions already tell the user why.
  absl::StatusOr<ReconcileResult> Reconcile(const std::string& ns, const std::string& name);

 private:
  absl::StatusOr<ReconcileResult> Finalize(const Branch& b, BranchStatus* st);
  // Creates the timeline; returns a requeue when the parent is not ready yet.
  absl::StatusOr<std::optional<ReconcileResult>> EnsureTimeline(const Branch& b, BranchStatus* st);
  // Before a branch at the parent's head: the parent's running read-write compute checkpoints
  // (bounded by kParentCheckpointTimeout), so that the child's data directory has its redo
  // point next to the branch point and its first start replays next to no WAL. Best effort.
  void CheckpointParent(const std::string& ns, const std::string& parent, const std::string& child);
  absl::StatusOr<std::optional<ReconcileResult>> MaybeReset(const Branch& b, BranchStatus* st);
  absl::Status Write(const Branch& b, const BranchStatus& st);

  ReconcileContext ctx_;
};

// status.divergedBytes (docs/sizes-and-lsns.md): how much of the branch's data at its head it
// wrote itself instead of sharing with its parent — all of it for a root. The pageserver's
// diverged_bytes counts every version the timeline wrote and still keeps (superseded versions
// inside the retention window too, which is how a root's figure outgrew its logical size), so a
// child's figure is that count capped at the logical size: an upper bound, never more than the
// data the branch holds.
uint64_t DivergedBytes(const TimelineInfo& info);

// Whether a reset from the parent has been asked for and not yet done.
bool ResetPending(const Branch& b);

}  // namespace pgbranch::control
