#include "operator/control/endpoint_reconciler.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "operator/control/branch_reconciler.h"
#include "operator/control/branch_restore.h"
#include "operator/control/conditions.h"
#include "operator/model/duration.h"
#include "operator/model/json.h"

namespace pgbranch::control {
namespace {

// Back-off between automatic restarts of a compute that keeps failing; a wake skips it.
absl::Duration RestartBackoff(int failures) {
  return std::min(absl::Seconds(60), absl::Seconds(1) * (1 << std::min(failures, 6)));
}

bool Active(ComputeState s) { return s == ComputeState::kStarting || s == ComputeState::kRunning; }

// The time in a request annotation (kAnnotationSuspendRequestedAt...); none when absent or not a
// time (a person's typo must not stop a compute).
std::optional<absl::Time> RequestTime(const Endpoint& e, const char* annotation) {
  auto it = e.metadata.annotations.find(annotation);
  if (it == e.metadata.annotations.end()) return std::nullopt;
  absl::StatusOr<absl::Time> t = ParseRfc3339(it->second);
  if (!t.ok()) return std::nullopt;
  return *t;
}

}  // namespace

std::string EndpointReconciler::ReadOnlyTimelineId(const std::string& endpoint) {
  std::string id = "ro." + endpoint;
  if (id.size() <= 64) return id;
  return absl::StrCat(id.substr(0, 47), ".", std::hash<std::string>{}(endpoint) % 100000000);
}

std::optional<EndpointReconciler::Failure> EndpointReconciler::LastFailure(
    const std::string& ns, const std::string& name) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = failures_.find(ObjectKey(ns, name));
  if (it == failures_.end()) return std::nullopt;
  return it->second;
}

void EndpointReconciler::RecordFailure(const std::string& key, const std::string& message,
                                       absl::Time now) {
  std::lock_guard<std::mutex> l(mu_);
  Failure& f = failures_[key];
  f.time = now;
  f.message = message;
  ++f.count;
}

void EndpointReconciler::ClearFailure(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  failures_.erase(key);
}

absl::Status EndpointReconciler::Write(const Endpoint& e, const EndpointStatus& st) {
  absl::Status s = ctx_.store->UpdateEndpointStatus(e.metadata.namespace_, e.metadata.name, st);
  return absl::IsNotFound(s) ? absl::OkStatus() : s;
}

absl::StatusOr<ReconcileResult> EndpointReconciler::Reconcile(const std::string& ns,
                                                              const std::string& name) {
  std::optional<Endpoint> found = ctx_.store->GetEndpoint(ns, name);
  const std::string key = ObjectKey(ns, name);
  if (!found) {
    ClearFailure(key);
    return ReconcileResult::Done();
  }
  const Endpoint& e = *found;
  EndpointStatus st = e.status;
  const absl::Time now = ctx_.Now();
  const int64_t gen = e.metadata.generation;
  ComputeObservation obs = ctx_.computes->Observe(ns, name);

  if (e.metadata.deletion_timestamp) return Finalize(e, &st, obs);

  // A compute that died is a failure to report, then (after back-off or on a wake) a restart.
  if (obs.state == ComputeState::kFailed) {
    RecordFailure(key, obs.message, now);
    st.message = obs.message;
    ++st.restarts;
    LogWarning("Compute failed", {{"namespace", ns}, {"endpoint", name}, {"error", obs.message}});
    PGB_RETURN_IF_ERROR(ctx_.computes->Stop(ns, name));  // clears the failed state
    obs = ctx_.computes->Observe(ns, name);
  }

  std::optional<Branch> branch = ctx_.store->GetBranch(ns, e.spec.branch);
  std::string waiting;
  if (!branch || branch->metadata.deletion_timestamp) {
    waiting = absl::StrCat("branch ", e.spec.branch, " does not exist");
  } else if (branch->status.timeline_id.empty()) {
    waiting = absl::StrCat("waiting for branch ", e.spec.branch, " to be ready");
  } else if (ResetPending(*branch) && (!branch->spec.protected_ || RestorePending(*branch))) {
    waiting = absl::StrCat("branch ", e.spec.branch,
                           RestorePending(*branch) ? " is being restored to a restore point"
                                                   : " is being reset from its parent");
  }
  if (!waiting.empty()) {
    if (Active(obs.state)) PGB_RETURN_IF_ERROR(ctx_.computes->Stop(ns, name));
    if (obs.state == ComputeState::kAbsent && branch) {
      PGB_RETURN_IF_ERROR(DropEphemeralTimeline(e, *branch, &st));
    }
    st.phase = kPhasePending;
    SetCondition(&st.conditions, "Ready", false, "BranchNotReady", waiting, gen, now);
    PGB_RETURN_IF_ERROR(Write(e, st));
    return ReconcileResult::After(absl::Milliseconds(200));
  }

  // One read-write endpoint per branch: two writers would fence each other in turn.
  if (std::optional<std::string> holder = ReadWriteHolder(e); holder && *holder != name) {
    if (Active(obs.state)) PGB_RETURN_IF_ERROR(ctx_.computes->Stop(ns, name));
    st.phase = kPhaseConflict;
    SetCondition(&st.conditions, "Ready", false, "Conflict",
                 absl::StrCat("branch ", e.spec.branch, " already has the read-write endpoint ",
                              *holder, "; a branch takes one read-write endpoint. Delete ", *holder,
                              " first, or make this one type: ReadOnly"),
                 gen, now);
    st.observed_generation = gen;
    PGB_RETURN_IF_ERROR(Write(e, st));
    return ReconcileResult::After(absl::Seconds(5));
  }

  // Activity decides whether the compute should run.
  ActivityTracker::Activity act = ctx_.activity->Get(key);
  if (obs.state == ComputeState::kRunning) {
    running_since_.try_emplace(key, now);
  } else {
    running_since_.erase(key);
  }
  absl::Time last = e.metadata.creation_timestamp;
  if (auto it = running_since_.find(key); it != running_since_.end()) {
    last = std::max(last, it->second);
  }
  for (const auto& t : {st.last_active, obs.last_active, act.last_wake, act.last_connected}) {
    if (t) last = std::max(last, *t);
  }
  // A person's start request counts as a wake; their suspend request holds until a later wake
  // or start request, whatever the activity (they asked for the sessions to end).
  const std::optional<absl::Time> start_req = RequestTime(e, kAnnotationStartRequestedAt);
  const std::optional<absl::Time> suspend_req = RequestTime(e, kAnnotationSuspendRequestedAt);
  if (start_req) last = std::max(last, *start_req);
  // Activity is persisted (status.lastActive) only while no suspend request holds, so activity
  // after the request means a wake superseded it: that survives a controller restart, which
  // forgets the wake itself.
  const bool suspend_requested = suspend_req && !(act.last_wake && *act.last_wake > *suspend_req) &&
                                 !(start_req && *start_req > *suspend_req) &&
                                 !(st.last_active && *st.last_active > *suspend_req);
  const bool busy = obs.busy || act.connections > 0;
  if (busy) last = now;
  const absl::Duration timeout = e.spec.suspend_timeout;
  const bool never = timeout == absl::ZeroDuration();
  // A starting compute is never stopped for idleness: someone is waiting for it.
  const bool want = !suspend_requested &&
                    (busy || never || now - last < timeout || obs.state == ComputeState::kStarting);
  // Persist activity coarsely: it only matters across controller restarts (and at once when it
  // is the first since a suspend request, see above).
  if (!suspend_requested &&
      (!st.last_active || last - *st.last_active >= absl::Seconds(5) ||
       (suspend_req && *st.last_active <= *suspend_req && last > *suspend_req))) {
    st.last_active = last;
  }

  absl::Duration requeue = absl::Seconds(5);
  if (want) {
    std::optional<Failure> failure = LastFailure(ns, name);
    switch (obs.state) {
      case ComputeState::kAbsent:
      case ComputeState::kFailed: {
        bool woken_since = failure && act.last_wake && *act.last_wake > failure->time;
        if (failure && !woken_since && now - failure->time < RestartBackoff(failure->count)) {
          st.phase = kPhaseFailed;
          SetCondition(&st.conditions, "Ready", false, "ComputeFailed", failure->message, gen, now);
          requeue = failure->time + RestartBackoff(failure->count) - now;
          break;
        }
        absl::Status s = StartCompute(e, *branch, &st);
        if (!s.ok()) {
          RecordFailure(key, std::string(s.message()), now);
          st.phase = kPhaseFailed;
          st.message = std::string(s.message());
          SetCondition(&st.conditions, "Ready", false, "ComputeFailed", st.message, gen, now);
          requeue = absl::Seconds(1);
          break;
        }
        st.phase = kPhaseStarting;
        SetCondition(&st.conditions, "Ready", false, "Starting", "starting PostgreSQL", gen, now);
        requeue = ctx_.starting_poll;
        break;
      }
      case ComputeState::kStarting:
        st.phase = kPhaseStarting;
        requeue = ctx_.starting_poll;
        break;
      case ComputeState::kRunning:
        if (st.phase != kPhaseRunning) {
          LogInfo("Endpoint running", {{"namespace", ns}, {"endpoint", name}});
        }
        ClearFailure(key);
        st.phase = kPhaseRunning;
        st.message.clear();
        SetCondition(&st.conditions, "Ready", true, "Running",
                     absl::StrCat("PostgreSQL accepts connections on branch ", e.spec.branch), gen,
                     now);
        if (!never && !busy) requeue = std::min(requeue, last + timeout - now);
        break;
      case ComputeState::kStopping:
        // Woken while suspending: start again once it is down.
        st.phase = kPhaseSuspending;
        requeue = ctx_.starting_poll;
        break;
    }
  } else {
    if (Active(obs.state) && suspend_requested) {
      LogInfo("Suspending endpoint on request",
              {{"namespace", ns}, {"endpoint", name}, {"requested_at", Rfc3339(*suspend_req)}});
      PGB_RETURN_IF_ERROR(ctx_.computes->Stop(ns, name));
      obs.state = ComputeState::kStopping;
    } else if (Active(obs.state)) {
      LogInfo("Suspending idle endpoint",
              {{"namespace", ns}, {"endpoint", name}, {"idle_for", DurationToString(now - last)}});
      PGB_RETURN_IF_ERROR(ctx_.computes->Stop(ns, name));
      obs.state = ComputeState::kStopping;
    }
    if (obs.state == ComputeState::kStopping) {
      st.phase = kPhaseSuspending;
      requeue = ctx_.starting_poll;
    } else {
      if (st.phase != kPhaseSuspended) {
        LogInfo("Endpoint suspended", {{"namespace", ns}, {"endpoint", name}});
      }
      st.phase = kPhaseSuspended;
      SetCondition(&st.conditions, "Ready", true, "Suspended",
                   suspend_requested
                       ? absl::StrCat("suspended on request at ", Rfc3339Seconds(*suspend_req),
                                      "; the next connection wakes it")
                       : "no compute runs; the next connection wakes it",
                   gen, now);
      PGB_RETURN_IF_ERROR(DropEphemeralTimeline(e, *branch, &st));
    }
  }
  st.observed_generation = gen;
  PGB_RETURN_IF_ERROR(Write(e, st));
  return ReconcileResult::After(std::max(requeue, absl::Milliseconds(10)));
}

std::optional<std::string> EndpointReconciler::ReadWriteHolder(const Endpoint& e) const {
  if (e.spec.type != EndpointType::kReadWrite) return std::nullopt;
  // Admitted endpoints (already past a Conflict check) rank first, so a newcomer never takes the
  // branch from one that runs; then the oldest, then the name.
  auto rank = [](const Endpoint& x) {
    return std::make_tuple(x.status.phase.empty() || x.status.phase == kPhaseConflict,
                           x.metadata.creation_timestamp, x.metadata.name);
  };
  std::optional<Endpoint> best;
  for (const Endpoint& x : ctx_.store->ListBranchEndpoints(e.metadata.namespace_, e.spec.branch)) {
    if (x.spec.branch != e.spec.branch || x.spec.type != EndpointType::kReadWrite) continue;
    // A writer being deleted holds the branch until its compute is gone.
    if (x.metadata.deletion_timestamp &&
        ctx_.computes->Observe(x.metadata.namespace_, x.metadata.name).state ==
            ComputeState::kAbsent) {
      continue;
    }
    if (!best || rank(x) < rank(*best)) best = x;
  }
  if (!best) return std::nullopt;
  return best->metadata.name;
}

absl::Status EndpointReconciler::StartCompute(const Endpoint& e, const Branch& b,
                                              EndpointStatus* st) {
  ComputeSpec spec;
  spec.ns = e.metadata.namespace_;
  spec.endpoint = e.metadata.name;
  spec.endpoint_uid = e.metadata.uid;
  spec.branch = b.metadata.name;
  spec.tenant_id = b.status.tenant_id;
  spec.timeline_id = b.status.timeline_id;
  spec.postgres_parameters = e.spec.postgres_parameters;
  spec.cpu = e.spec.cpu;
  spec.memory = e.spec.memory;
  spec.image = e.spec.image;
  if (e.spec.type == EndpointType::kReadOnly) {
    // A fresh snapshot at each start: the past point, or the branch head as of now. PostgreSQL
    // recovers it as a hot standby; what it writes stays on the ephemeral timeline.
    spec.read_only = true;
    spec.timeline_id = ReadOnlyTimelineId(e.metadata.name);
    absl::Status s = ctx_.timelines->DeleteTimeline(spec.tenant_id, spec.timeline_id);
    if (!s.ok() && !absl::IsNotFound(s)) return s;
    auto info =
        ctx_.timelines->CreateTimeline(spec.tenant_id, spec.timeline_id, b.status.timeline_id,
                                       e.spec.lsn.value_or(0), e.spec.timestamp);
    if (!info.ok()) return WithOlderHistoryHint(e, b, info.status());
  }
  st->timeline_id = spec.timeline_id;
  LogInfo("Starting compute", {{"namespace", spec.ns},
                               {"endpoint", spec.endpoint},
                               {"branch", spec.branch},
                               {"timeline", spec.timeline_id}});
  return ctx_.computes->Start(spec);
}

absl::Status EndpointReconciler::WithOlderHistoryHint(const Endpoint& e, const Branch& b,
                                                      const absl::Status& s) const {
  // A branch's own history starts at its branch point -- for a restored branch, at the restore
  // (its older state became the kept branch, its parent). A read-only endpoint pinned before that
  // point cannot start; name the branch that holds that history.
  if (!absl::IsOutOfRange(s) || b.status.parent_timeline_id.empty()) return s;
  for (const Branch& x : ctx_.store->ListBranches(e.metadata.namespace_)) {
    if (x.status.timeline_id != b.status.parent_timeline_id) continue;
    // Not "a read-only endpoint on that branch": before that branch's first read-write start
    // its data holds another branch's password (docs/credentials.md, Limits). A branch made
    // there gets its own at its first start.
    return absl::OutOfRangeError(absl::StrCat(
        s.message(), ". Branch ", b.metadata.name, "'s own history begins at LSN ",
        b.status.parent_lsn, "; what came before is in branch ", x.metadata.name,
        ": to read it, delete this endpoint and create a branch there at the same point "
        "(pgbranch branch create NAME --parent ",
        x.metadata.name, " with the same --at or --lsn)"));
  }
  return s;
}

absl::Status EndpointReconciler::DropEphemeralTimeline(const Endpoint& e, const Branch& b,
                                                       EndpointStatus* st) {
  if (e.spec.type != EndpointType::kReadOnly || st->timeline_id.empty() ||
      st->timeline_id == b.status.timeline_id) {
    return absl::OkStatus();
  }
  absl::Status s = ctx_.timelines->DeleteTimeline(b.status.tenant_id, st->timeline_id);
  if (!s.ok() && !absl::IsNotFound(s)) return s;
  st->timeline_id.clear();
  return absl::OkStatus();
}

absl::StatusOr<ReconcileResult> EndpointReconciler::Finalize(const Endpoint& e, EndpointStatus* st,
                                                             const ComputeObservation& obs) {
  const std::string& ns = e.metadata.namespace_;
  const std::string& name = e.metadata.name;
  if (obs.state != ComputeState::kAbsent) {
    if (obs.state != ComputeState::kStopping) PGB_RETURN_IF_ERROR(ctx_.computes->Stop(ns, name));
    st->phase = kPhaseSuspending;
    PGB_RETURN_IF_ERROR(Write(e, *st));
    return ReconcileResult::After(absl::Milliseconds(50));
  }
  if (e.spec.type == EndpointType::kReadOnly && !st->timeline_id.empty()) {
    std::optional<Branch> b = ctx_.store->GetBranch(ns, e.spec.branch);
    std::string tenant = b ? b->status.tenant_id : ctx_.tenant_for_namespace(ns);
    absl::Status s = ctx_.timelines->DeleteTimeline(tenant, st->timeline_id);
    if (!s.ok() && !absl::IsNotFound(s)) return s;
  }
  PGB_RETURN_IF_ERROR(ctx_.store->RemoveEndpoint(ns, name));
  ClearFailure(ObjectKey(ns, name));
  LogInfo("Deleted endpoint", {{"namespace", ns}, {"endpoint", name}});
  ctx_.Enqueue(Kind::kBranch, ns, e.spec.branch);
  return ReconcileResult::Done();
}

}  // namespace pgbranch::control
