#include "operator/control/branch_restore.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "operator/control/conditions.h"

namespace pgbranch::control {
namespace {

std::string Annotation(const Branch& b, const char* key) {
  auto it = b.metadata.annotations.find(key);
  return it == b.metadata.annotations.end() ? "" : it->second;
}

bool IsPermanent(const absl::Status& s) {
  return absl::IsInvalidArgument(s) || absl::IsFailedPrecondition(s) || absl::IsOutOfRange(s) ||
         absl::IsNotFound(s) || absl::IsAlreadyExists(s);
}

}  // namespace

bool RestorePending(const Branch& b) {
  int64_t gen = 0;
  return b.spec.reset_generation > b.status.observed_reset_generation &&
         !Annotation(b, kAnnotationRestoreTo).empty() &&
         !Annotation(b, kAnnotationRestoreKeepAs).empty() &&
         absl::SimpleAtoi(Annotation(b, kAnnotationRestoreGeneration), &gen) &&
         gen == b.spec.reset_generation;
}

bool WaitsForRestore(const Branch& b) {
  return b.status.timeline_id.empty() && !Annotation(b, kAnnotationRestoreOf).empty();
}

absl::StatusOr<uint64_t> BranchRestore::RewindPoint(const Branch& b, const BranchStatus& st,
                                                    const Branch& rp) {
  const std::string& rp_name = rp.metadata.name;
  if (rp.spec.parent != b.metadata.name) {
    return absl::FailedPreconditionError(
        absl::StrCat("branch \"", rp_name, "\" is not a restore point of \"", b.metadata.name,
                     "\": a restore point is a child branch of the branch it restores"));
  }
  if (rp.status.timeline_id.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("restore point \"", rp_name, "\" has no timeline yet"));
  }
  PGB_ASSIGN_OR_RETURN(TimelineInfo r,
                       ctx_.timelines->GetTimeline(st.tenant_id, rp.status.timeline_id));
  PGB_ASSIGN_OR_RETURN(TimelineInfo p, ctx_.timelines->GetTimeline(st.tenant_id, st.timeline_id));
  if (r.head_lsn != r.ancestor_lsn) {
    return absl::FailedPreconditionError(
        absl::StrCat("restore point \"", rp_name,
                     "\" was written to since it was taken (an endpoint ran on "
                     "it), so its data is not a state \"",
                     b.metadata.name, "\" ever had"));
  }
  // Taken of PARENT's current timeline: rewind to its branch point.
  if (r.ancestor_timeline_id == p.timeline_id) return r.ancestor_lsn;
  // Taken of the state PARENT's current timeline starts from (PARENT was restored to it
  // before, or to a restore point taken at the same LSN): rewind to that start.
  if (!p.ancestor_timeline_id.empty() && r.ancestor_timeline_id == p.ancestor_timeline_id &&
      r.ancestor_lsn == p.ancestor_lsn) {
    return p.ancestor_lsn;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "restore point \"", rp_name, "\" was taken of an earlier state of \"", b.metadata.name,
      "\" than its current data starts from (it was restored since); restore to a restore point "
      "taken after that"));
}

absl::Status BranchRestore::Refuse(const Branch& b, BranchStatus* st, const std::string& why) {
  const std::string& ns = b.metadata.namespace_;
  SetCondition(&st->conditions, "RestoreRefused", true, "RestoreFailed", why, b.metadata.generation,
               ctx_.Now());
  st->observed_reset_generation = b.spec.reset_generation;
  // The branch that was to keep the current state has no timeline: nothing is left half-made.
  const std::string keep = Annotation(b, kAnnotationRestoreKeepAs);
  if (std::optional<Branch> k = ctx_.store->GetBranch(ns, keep);
      k && WaitsForRestore(*k) && Annotation(*k, kAnnotationRestoreOf) == b.metadata.name) {
    absl::Status s = ctx_.store->RequestBranchDeletion(ns, keep);
    if (!s.ok() && !absl::IsNotFound(s)) return s;
    ctx_.Enqueue(Kind::kBranch, ns, keep);
  }
  LogWarning("Restore refused", {{"namespace", ns}, {"branch", b.metadata.name}, {"why", why}});
  return absl::OkStatus();
}

absl::Status BranchRestore::Run(const Branch& b, BranchStatus* st) {
  const std::string& ns = b.metadata.namespace_;
  const std::string rp_name = Annotation(b, kAnnotationRestoreTo);
  const std::string keep = Annotation(b, kAnnotationRestoreKeepAs);
  std::optional<Branch> kept = ctx_.store->GetBranch(ns, keep);
  if (!kept || Annotation(*kept, kAnnotationRestoreOf) != b.metadata.name) {
    return Refuse(b, st,
                  absl::StrCat("branch \"", keep, "\" that was to keep the current state of \"",
                               b.metadata.name, "\" does not exist or is not made for it"));
  }
  const std::string backup_id = ctx_.timeline_for_branch(*kept);
  PGB_ASSIGN_OR_RETURN(TimelineInfo p, ctx_.timelines->GetTimeline(st->tenant_id, st->timeline_id));
  uint64_t lsn = 0;
  if (p.ancestor_timeline_id == backup_id) {
    lsn = p.ancestor_lsn;  // done before a crash; only the status is missing
  } else {
    std::optional<Branch> rp = ctx_.store->GetBranch(ns, rp_name);
    if (!rp || rp->metadata.deletion_timestamp) {
      return Refuse(b, st, absl::StrCat("restore point \"", rp_name, "\" does not exist"));
    }
    auto point = RewindPoint(b, *st, *rp);
    if (!point.ok()) {
      if (!IsPermanent(point.status())) return point.status();
      return Refuse(b, st, std::string(point.status().message()));
    }
    absl::Status s =
        ctx_.timelines->RewindTimeline(st->tenant_id, st->timeline_id, *point, backup_id);
    if (!s.ok()) {
      if (!IsPermanent(s)) return s;
      return Refuse(b, st, std::string(s.message()));
    }
    lsn = *point;
  }
  // The children of the old timeline now hang off the keeping branch's timeline.
  for (const Branch& o : ctx_.store->ListBranches(ns)) {
    if (o.metadata.name == b.metadata.name || o.status.parent_timeline_id != st->timeline_id) {
      continue;
    }
    BranchStatus os = o.status;
    os.parent_timeline_id = backup_id;
    absl::Status s = ctx_.store->UpdateBranchStatus(ns, o.metadata.name, os);
    if (!s.ok() && !absl::IsNotFound(s)) return s;
  }
  st->parent_timeline_id = backup_id;
  st->parent_lsn = lsn;
  st->head_lsn = lsn;
  st->observed_reset_generation = b.spec.reset_generation;
  st->last_reset_time = ctx_.Now();
  RemoveCondition(&st->conditions, "RestoreRefused");
  RemoveCondition(&st->conditions, "ResetRefused");
  ctx_.Enqueue(Kind::kBranch, ns, keep);
  LogInfo("Restored branch to its restore point", {{"namespace", ns},
                                                   {"branch", b.metadata.name},
                                                   {"restore_point", rp_name},
                                                   {"lsn", std::to_string(lsn)},
                                                   {"previous_state", keep}});
  return absl::OkStatus();
}

}  // namespace pgbranch::control
