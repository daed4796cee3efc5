#pragma once

#include <string>

#include "absl/status/status.h"
#include "operator/control/reconcile_context.h"

// `pgbranch branch restore PARENT --to RESTORE_POINT`: PARENT's data goes back to the state its
// restore point was taken of, under the same timeline id (so its endpoints, connection strings
// and computes' configuration stay). The pageserver rewinds PARENT's timeline to the restore
// point's branch point in one log record; PARENT's state before the restore becomes the timeline
// of the branch named in kAnnotationRestoreKeepAs, which adopts PARENT's child timelines and is
// PARENT's timeline's parent from then on. Every timeline stays owned by a Branch: nothing is
// orphaned, and the keeping branch cannot be deleted while PARENT's data is built on it.
// The caller (the branch reconciler's reset step) has stopped PARENT's computes first.
namespace pgbranch::control {

// Whether a restore has been asked for and not yet done (a pending reset that is a restore).
bool RestorePending(const Branch& b);

class BranchRestore {
 public:
  explicit BranchRestore(const ReconcileContext& ctx) : ctx_(ctx) {}
  // Performs PARENT's restore (b is PARENT, st its status being written). OK when done or when
  // refused (condition RestoreRefused set, the keeping branch removed again); an error means
  // "try again" (the step is idempotent: a retry after a crash finds the rewind done).
  absl::Status Run(const Branch& b, BranchStatus* st);

 private:
  // The rewind's LSN, or FAILED_PRECONDITION with the reason for the user.
  absl::StatusOr<uint64_t> RewindPoint(const Branch& b, const BranchStatus& st,
                                       const Branch& restore_point);
  absl::Status Refuse(const Branch& b, BranchStatus* st, const std::string& why);

  const ReconcileContext& ctx_;
};

// Whether a branch's own timeline was made by a restore of another branch and does not exist
// yet (it waits rather than create an empty timeline of that id).
bool WaitsForRestore(const Branch& b);

}  // namespace pgbranch::control
