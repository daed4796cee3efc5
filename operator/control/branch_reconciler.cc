#include "operator/control/branch_reconciler.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "operator/control/branch_restore.h"
#include "operator/control/conditions.h"
#include "operator/control/start_point.h"
#include "operator/model/field_error.h"
#include "operator/model/json.h"

namespace pgbranch::control {
namespace {

// Errors that another attempt will not fix: report them in a condition and wait for a change.
bool IsPermanent(const absl::Status& s) {
  return absl::IsInvalidArgument(s) || absl::IsFailedPrecondition(s) || absl::IsOutOfRange(s) ||
         absl::IsNotFound(s);
}

std::vector<std::string> ChildrenOf(ObjectStore* store, const std::string& ns,
                                    const std::string& name) {
  std::vector<std::string> out;
  for (const Branch& c : store->ListChildBranches(ns, name)) {
    if (c.spec.parent == name) out.push_back(c.metadata.name);
  }
  return out;
}

}  // namespace

uint64_t DivergedBytes(const TimelineInfo& info) {
  const uint64_t logical = static_cast<uint64_t>(std::max<int64_t>(0, info.logical_size));
  // A root has no parent: all of its data is its own.
  if (info.ancestor_timeline_id.empty()) return logical;
  return std::min(info.diverged_bytes, logical);
}

bool ResetPending(const Branch& b) {
  return (!b.spec.parent.empty() && b.spec.reset_generation > b.status.observed_reset_generation) ||
         RestorePending(b);
}

absl::Status BranchReconciler::Write(const Branch& b, const BranchStatus& st) {
  absl::Status s = ctx_.store->UpdateBranchStatus(b.metadata.namespace_, b.metadata.name, st);
  return absl::IsNotFound(s) ? absl::OkStatus() : s;
}

absl::StatusOr<ReconcileResult> BranchReconciler::Reconcile(const std::string& ns,
                                                            const std::string& name) {
  std::optional<Branch> found = ctx_.store->GetBranch(ns, name);
  if (!found) return ReconcileResult::Done();
  const Branch& b = *found;
  BranchStatus st = b.status;
  const absl::Time now = ctx_.Now();
  const int64_t gen = b.metadata.generation;

  if (b.metadata.deletion_timestamp) return Finalize(b, &st);

  PGB_ASSIGN_OR_RETURN(auto wait, EnsureTimeline(b, &st));
  if (wait) return *wait;

  // Retention follows the spec; applied once per generation.
  if (st.observed_generation != gen && (b.spec.history_window || b.spec.history_bytes)) {
    PGB_RETURN_IF_ERROR(ctx_.timelines->SetRetention(st.tenant_id, st.timeline_id,
                                                     b.spec.history_window, b.spec.history_bytes));
  }

  PGB_ASSIGN_OR_RETURN(auto reset_wait, MaybeReset(b, &st));
  if (reset_wait) return *reset_wait;

  // Figures for `branch get` and printer columns.
  if (auto info = ctx_.timelines->GetTimeline(st.tenant_id, st.timeline_id); info.ok()) {
    st.head_lsn = info->head_lsn;
    st.logical_size = info->logical_size;
    st.diverged_bytes = DivergedBytes(*info);
  } else if (!absl::IsUnavailable(info.status())) {
    SetCondition(&st.conditions, "Ready", false, "TimelineMissing",
                 absl::StrCat("the pageserver does not know timeline ", st.timeline_id, ": ",
                              info.status().message()),
                 gen, now);
    st.phase = kPhaseFailed;
    PGB_RETURN_IF_ERROR(Write(b, st));
    return ReconcileResult::After(absl::Seconds(30));
  }

  // Expiry (Lakebase semantics: ttl counts from creation, expireTime is absolute).
  st.expire_time.reset();
  if (b.spec.ttl) st.expire_time = b.metadata.creation_timestamp + *b.spec.ttl;
  if (b.spec.expire_time) st.expire_time = *b.spec.expire_time;
  absl::Duration requeue = absl::Seconds(30);
  if (st.expire_time && now >= *st.expire_time) {
    std::vector<std::string> children = ChildrenOf(ctx_.store, ns, name);
    if (children.empty()) {
      LogInfo("Branch expired; deleting it with its endpoints",
              {{"namespace", ns}, {"branch", name}, {"expire_time", Rfc3339(*st.expire_time)}});
      st.phase = kPhaseExpired;
      PGB_RETURN_IF_ERROR(Write(b, st));
      PGB_RETURN_IF_ERROR(ctx_.store->RequestBranchDeletion(ns, name));
      return ReconcileResult::After(absl::ZeroDuration());
    }
    SetCondition(
        &st.conditions, "Expired", true, "HasChildren",
        absl::StrCat("expired at ", Rfc3339(*st.expire_time),
                     " but kept while it has child branches: ", absl::StrJoin(children, ", ")),
        gen, now);
    st.phase = kPhaseExpired;
  } else {
    RemoveCondition(&st.conditions, "Expired");
    st.phase = kPhaseReady;
    if (st.expire_time) requeue = std::min(requeue, *st.expire_time - now);
  }
  SetCondition(&st.conditions, "Ready", true, "TimelineReady",
               absl::StrCat("timeline ", st.timeline_id, " of tenant ", st.tenant_id), gen, now);
  st.observed_generation = gen;
  PGB_RETURN_IF_ERROR(Write(b, st));
  return ReconcileResult::After(std::max(requeue, absl::Milliseconds(1)));
}

void BranchReconciler::CheckpointParent(const std::string& ns, const std::string& parent,
                                        const std::string& child) {
  for (const Endpoint& e : ctx_.store->ListBranchEndpoints(ns, parent)) {
    if (e.spec.branch != parent || e.spec.type != EndpointType::kReadWrite ||
        ctx_.computes->Observe(ns, e.metadata.name).state != ComputeState::kRunning) {
      continue;
    }
    const absl::Time start = absl::Now();
    absl::StatusOr<bool> done =
        ctx_.computes->Checkpoint(ns, e.metadata.name, kParentCheckpointTimeout);
    const std::string took =
        absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Microseconds(100)));
    if (done.ok()) {
      LogInfo(*done ? "Checkpointed the parent before branching"
                    : "The parent needs no checkpoint before branching (little WAL since its last)",
              {{"namespace", ns},
               {"branch", child},
               {"parent", parent},
               {"endpoint", e.metadata.name},
               {"took", took}});
    } else if (!absl::IsUnimplemented(done.status())) {
      // The branch is as correct without it: its first start replays more WAL.
      LogWarning("Cannot checkpoint the parent before branching; the branch replays its WAL",
                 {{"namespace", ns},
                  {"branch", child},
                  {"parent", parent},
                  {"endpoint", e.metadata.name},
                  {"took", took},
                  {"error", done.status().ToString()}});
    }
    return;  // one read-write endpoint per branch
  }
}

absl::StatusOr<std::optional<ReconcileResult>> BranchReconciler::EnsureTimeline(const Branch& b,
                                                                                BranchStatus* st) {
  if (!st->timeline_id.empty()) return std::nullopt;
  const std::string& ns = b.metadata.namespace_;
  const absl::Time now = ctx_.Now();
  const int64_t gen = b.metadata.generation;
  const std::string tenant = ctx_.tenant_for_namespace(ns);
  // Keeps a restored branch's previous state: its timeline is made by that restore (then it is
  // adopted below as an existing timeline); an empty one of the id would make the restore fail.
  if (WaitsForRestore(b)) {
    auto made = ctx_.timelines->GetTimeline(tenant, ctx_.timeline_for_branch(b));
    if (!made.ok() && !absl::IsNotFound(made.status())) return made.status();
    if (!made.ok()) {
      st->phase = kPhasePending;
      SetCondition(&st->conditions, "Ready", false, "WaitingForRestore",
                   absl::StrCat("keeps the state of branch ",
                                b.metadata.annotations.at(kAnnotationRestoreOf),
                                " before its restore; waiting for the restore"),
                   gen, now);
      PGB_RETURN_IF_ERROR(Write(b, *st));
      return ReconcileResult::After(absl::Seconds(1));
    }
  }
  std::string parent_timeline;
  if (!b.spec.parent.empty()) {
    std::optional<Branch> parent = ctx_.store->GetBranch(ns, b.spec.parent);
    if (!parent || parent->metadata.deletion_timestamp || parent->status.timeline_id.empty()) {
      st->phase = kPhasePending;
      SetCondition(&st->conditions, "Ready", false, "ParentNotReady",
                   parent ? absl::StrCat("waiting for parent branch ", b.spec.parent)
                          : absl::StrCat("parent branch ", b.spec.parent,
                                         " does not exist; create it first"),
                   gen, now);
      PGB_RETURN_IF_ERROR(Write(b, *st));
      return ReconcileResult::After(absl::Seconds(1));
    }
    parent_timeline = parent->status.timeline_id;
  }
  PGB_RETURN_IF_ERROR(ctx_.timelines->EnsureTenant(tenant));
  // The timeline id is stable for the object: a retry after a crash finds what it created.
  const std::string timeline_id = ctx_.timeline_for_branch(b);
  // A start point outside the parent's readable history never becomes valid by retrying (a
  // time in the future does, later): say so in the condition and look again slowly. Skipped
  // when the timeline already exists (a retry after a crash; the parent may have moved on).
  if (!parent_timeline.empty()) {
    StartPoint point;
    point.object = ObjectName("Branch", b.metadata.name);
    point.source = b.spec.parent;
    point.tenant_id = tenant;
    point.timeline_id = parent_timeline;
    point.lsn = b.spec.lsn;
    point.at = b.spec.timestamp;
    absl::Status s = CheckStartPoint(ctx_.timelines, point, now);
    if (!s.ok() && !ErrorField(s).empty() &&
        absl::IsNotFound(ctx_.timelines->GetTimeline(tenant, timeline_id).status())) {
      st->phase = kPhaseFailed;
      SetCondition(&st->conditions, "Ready", false, kReasonStartPointOutOfRange,
                   absl::StrCat(ErrorField(s), ": ", ErrorDetail(s)), gen, now);
      PGB_RETURN_IF_ERROR(Write(b, *st));
      return ReconcileResult::After(absl::Seconds(30));
    }
    if (absl::IsUnavailable(s)) return s;
  }
  if (!parent_timeline.empty() && b.spec.lsn.value_or(0) == 0 && !b.spec.timestamp) {
    CheckpointParent(ns, b.spec.parent, b.metadata.name);
  }
  auto info = ctx_.timelines->CreateTimeline(tenant, timeline_id, parent_timeline,
                                             b.spec.lsn.value_or(0), b.spec.timestamp);
  if (absl::IsAlreadyExists(info.status())) {
    info = ctx_.timelines->GetTimeline(tenant, timeline_id);
    if (info.ok() && info->ancestor_timeline_id != parent_timeline) {
      info = absl::AlreadyExistsError(absl::StrCat(
          "timeline ", timeline_id, " already exists at the pageserver with another parent (",
          info->ancestor_timeline_id.empty() ? "none" : info->ancestor_timeline_id, ")"));
    }
  }
  if (!info.ok()) {
    if (!IsPermanent(info.status()) && !absl::IsAlreadyExists(info.status())) {
      return info.status();
    }
    st->phase = kPhaseFailed;
    SetCondition(&st->conditions, "Ready", false, "TimelineCreateFailed",
                 std::string(info.status().message()), gen, now);
    PGB_RETURN_IF_ERROR(Write(b, *st));
    return ReconcileResult::After(absl::Seconds(30));
  }
  st->tenant_id = tenant;
  st->timeline_id = info->timeline_id;
  st->parent_timeline_id = info->ancestor_timeline_id;
  st->parent_lsn = info->ancestor_lsn;
  st->head_lsn = info->head_lsn;
  st->observed_reset_generation = b.spec.reset_generation;  // a new branch is already fresh
  // Endpoints created with the branch were waiting for this: let them start now.
  for (const Endpoint& e : ctx_.store->ListBranchEndpoints(ns, b.metadata.name)) {
    if (e.spec.branch == b.metadata.name) ctx_.Enqueue(Kind::kEndpoint, ns, e.metadata.name);
  }
  LogInfo("Created timeline", {{"namespace", ns},
                               {"branch", b.metadata.name},
                               {"tenant", tenant},
                               {"timeline", st->timeline_id},
                               {"parent", b.spec.parent},
                               {"lsn", std::to_string(st->parent_lsn)}});
  return std::nullopt;
}

absl::StatusOr<std::optional<ReconcileResult>> BranchReconciler::MaybeReset(const Branch& b,
                                                                            BranchStatus* st) {
  Branch current = b;
  current.status = *st;
  if (!ResetPending(current)) return std::nullopt;
  const std::string& ns = b.metadata.namespace_;
  const absl::Time now = ctx_.Now();
  const int64_t gen = b.metadata.generation;
  const bool restore = RestorePending(current);
  // A root has nothing to reset from; the API server's policy refuses it already (a restore is
  // the only way back for a root), this covers clusters without the policy.
  if (b.spec.parent.empty() && !restore) {
    SetCondition(&st->conditions, "ResetRefused", true, "RootBranch",
                 "a root branch has no parent to reset from; restore it to a restore point "
                 "instead (pgbranch branch restore)",
                 gen, now);
    return std::nullopt;
  }
  if (b.spec.protected_ && !restore) {  // a restore of a protected branch was allowed explicitly
    SetCondition(&st->conditions, "ResetRefused", true, "Protected",
                 "a protected branch cannot be reset; set protected: false first", gen, now);
    return std::nullopt;
  }
  // Computes of this branch stop first (their endpoint reconcilers see ResetPending).
  st->phase = kPhaseResetting;
  std::vector<std::string> running;
  for (const Endpoint& e : ctx_.store->ListBranchEndpoints(ns, b.metadata.name)) {
    if (e.spec.branch != b.metadata.name) continue;
    if (ctx_.computes->Observe(ns, e.metadata.name).state != ComputeState::kAbsent) {
      running.push_back(e.metadata.name);
      ctx_.Enqueue(Kind::kEndpoint, ns, e.metadata.name);
    }
  }
  if (!running.empty()) {
    SetCondition(
        &st->conditions, "Ready", false, "Resetting",
        absl::StrCat("stopping endpoints before the reset: ", absl::StrJoin(running, ", ")), gen,
        now);
    PGB_RETURN_IF_ERROR(Write(b, *st));
    return ReconcileResult::After(absl::Milliseconds(100));
  }
  if (restore) {
    PGB_RETURN_IF_ERROR(BranchRestore(ctx_).Run(b, st));
    for (const Endpoint& e : ctx_.store->ListBranchEndpoints(ns, b.metadata.name)) {
      if (e.spec.branch == b.metadata.name) ctx_.Enqueue(Kind::kEndpoint, ns, e.metadata.name);
    }
    return std::nullopt;
  }
  auto lsn = ctx_.timelines->ResetTimeline(st->tenant_id, st->timeline_id);
  if (!lsn.ok()) {
    if (!IsPermanent(lsn.status())) return lsn.status();
    SetCondition(&st->conditions, "ResetRefused", true, "ResetFailed",
                 std::string(lsn.status().message()), gen, now);
    st->observed_reset_generation = b.spec.reset_generation;
    return std::nullopt;
  }
  RemoveCondition(&st->conditions, "ResetRefused");
  st->parent_lsn = *lsn;
  st->observed_reset_generation = b.spec.reset_generation;
  st->last_reset_time = now;
  LogInfo("Reset branch from its parent", {{"namespace", ns},
                                           {"branch", b.metadata.name},
                                           {"parent", b.spec.parent},
                                           {"lsn", std::to_string(*lsn)}});
  for (const Endpoint& e : ctx_.store->ListBranchEndpoints(ns, b.metadata.name)) {
    if (e.spec.branch == b.metadata.name) ctx_.Enqueue(Kind::kEndpoint, ns, e.metadata.name);
  }
  return std::nullopt;
}

absl::StatusOr<ReconcileResult> BranchReconciler::Finalize(const Branch& b, BranchStatus* st) {
  const std::string& ns = b.metadata.namespace_;
  const std::string& name = b.metadata.name;
  const absl::Time now = ctx_.Now();
  st->phase = kPhaseDeleting;
  std::vector<std::string> children = ChildrenOf(ctx_.store, ns, name);
  if (!children.empty()) {
    SetCondition(&st->conditions, "Ready", false, "HasChildren",
                 absl::StrCat("cannot delete: child branches ", absl::StrJoin(children, ", "),
                              " depend on it; delete them first"),
                 b.metadata.generation, now);
    PGB_RETURN_IF_ERROR(Write(b, *st));
    return ReconcileResult::After(absl::Seconds(5));
  }
  // Endpoints go with their branch, and must be gone before the timeline is.
  bool endpoints_left = false;
  for (const Endpoint& e : ctx_.store->ListBranchEndpoints(ns, b.metadata.name)) {
    if (e.spec.branch != name) continue;
    endpoints_left = true;
    if (!e.metadata.deletion_timestamp) {
      PGB_RETURN_IF_ERROR(ctx_.store->RequestEndpointDeletion(ns, e.metadata.name));
    }
    ctx_.Enqueue(Kind::kEndpoint, ns, e.metadata.name);
  }
  if (endpoints_left) {
    PGB_RETURN_IF_ERROR(Write(b, *st));
    return ReconcileResult::After(absl::Milliseconds(100));
  }
  if (!st->timeline_id.empty()) {
    absl::Status s = ctx_.timelines->DeleteTimeline(st->tenant_id, st->timeline_id);
    if (absl::IsFailedPrecondition(s)) {
      // Another branch's data is built on this timeline (it keeps the state of a restored
      // branch, see branch_restore.h): the branch stays until that one is deleted.
      SetCondition(&st->conditions, "Ready", false, "HasDependents",
                   absl::StrCat("cannot delete: ", s.message()), b.metadata.generation, now);
      PGB_RETURN_IF_ERROR(Write(b, *st));
      return ReconcileResult::After(absl::Seconds(30));
    }
    if (!s.ok() && !absl::IsNotFound(s)) return s;
  }
  PGB_RETURN_IF_ERROR(ctx_.store->RemoveBranch(ns, name));
  LogInfo("Deleted branch", {{"namespace", ns}, {"branch", name}, {"timeline", st->timeline_id}});
  if (!b.spec.parent.empty()) ctx_.Enqueue(Kind::kBranch, ns, b.spec.parent);
  return ReconcileResult::Done();
}

}  // namespace pgbranch::control
