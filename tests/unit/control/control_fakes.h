#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "operator/control/compute_runtime.h"
#include "operator/control/timeline_service.h"

// In-memory fakes of the pageserver's timeline API and of the compute runtime, for reconciler
// unit tests.
namespace pgbranch::control::testing {

class FakeTimelineService : public TimelineService {
 public:
  absl::Status EnsureTenant(const std::string& tenant_id) override {
    tenants.insert(tenant_id);
    return absl::OkStatus();
  }
  absl::StatusOr<TimelineInfo> CreateTimeline(const std::string& tenant, const std::string& id,
                                              const std::string& ancestor, uint64_t lsn,
                                              std::optional<absl::Time> at) override {
    if (!available) return absl::UnavailableError("pageserver down");
    if (!tenants.count(tenant)) return absl::NotFoundError("no tenant " + tenant);
    if (timelines.count(id)) return absl::AlreadyExistsError("timeline " + id + " exists");
    TimelineInfo t;
    t.tenant_id = tenant;
    t.timeline_id = id;
    t.ancestor_timeline_id = ancestor;
    if (!ancestor.empty()) {
      auto it = timelines.find(ancestor);
      if (it == timelines.end()) return absl::NotFoundError("no timeline " + ancestor);
      // As the pageserver: a timeline's own history starts at its branch point.
      if (lsn != 0 && lsn < std::max(it->second.ancestor_lsn, it->second.oldest_readable_lsn)) {
        return absl::OutOfRangeError("LSN " + std::to_string(lsn) +
                                     " is before the oldest readable point of timeline " +
                                     ancestor);
      }
      t.ancestor_lsn = lsn ? lsn : it->second.head_lsn;
      t.head_lsn = t.ancestor_lsn;
      it->second.children.push_back(id);
    }
    timelines[id] = t;
    return t;
  }
  absl::StatusOr<TimelineInfo> GetTimeline(const std::string& tenant,
                                           const std::string& id) override {
    if (!available) return absl::UnavailableError("pageserver down");
    auto it = timelines.find(id);
    if (it == timelines.end()) return absl::NotFoundError("no timeline " + id);
    return it->second;
  }
  absl::Status DeleteTimeline(const std::string& tenant, const std::string& id) override {
    auto it = timelines.find(id);
    if (it == timelines.end()) return absl::NotFoundError("no timeline " + id);
    if (!it->second.children.empty()) return absl::FailedPreconditionError(id + " has children");
    if (!it->second.ancestor_timeline_id.empty()) {
      auto& c = timelines[it->second.ancestor_timeline_id].children;
      c.erase(std::remove(c.begin(), c.end(), id), c.end());
    }
    timelines.erase(it);
    deleted.push_back(id);
    return absl::OkStatus();
  }
  absl::StatusOr<uint64_t> ResetTimeline(const std::string& tenant,
                                         const std::string& id) override {
    auto it = timelines.find(id);
    if (it == timelines.end()) return absl::NotFoundError("no timeline " + id);
    if (!it->second.children.empty()) return absl::FailedPreconditionError(id + " has children");
    it->second.ancestor_lsn = timelines[it->second.ancestor_timeline_id].head_lsn;
    it->second.head_lsn = it->second.ancestor_lsn;
    ++resets;
    return it->second.ancestor_lsn;
  }
  absl::Status RewindTimeline(const std::string& tenant, const std::string& id, uint64_t lsn,
                              const std::string& backup_id) override {
    if (!available) return absl::UnavailableError("pageserver down");
    auto it = timelines.find(id);
    if (it == timelines.end()) return absl::NotFoundError("no timeline " + id);
    if (timelines.count(backup_id)) return absl::AlreadyExistsError(backup_id + " exists");
    TimelineInfo& t = it->second;
    if (lsn < t.ancestor_lsn || lsn > t.head_lsn) return absl::OutOfRangeError("lsn");
    TimelineInfo b = t;
    b.timeline_id = backup_id;
    b.children.push_back(id);
    for (const std::string& c : b.children) timelines[c].ancestor_timeline_id = backup_id;
    if (!b.ancestor_timeline_id.empty()) {
      for (std::string& c : timelines[b.ancestor_timeline_id].children) {
        if (c == id) c = backup_id;
      }
    }
    TimelineInfo& n = timelines[id];
    n.children.clear();
    n.ancestor_lsn = lsn;
    n.head_lsn = lsn;
    timelines[backup_id] = b;
    ++rewinds;
    return absl::OkStatus();
  }
  absl::Status SetRetention(const std::string&, const std::string& id,
                            std::optional<absl::Duration> window,
                            std::optional<uint64_t>) override {
    retention[id] = window.value_or(absl::ZeroDuration());
    return absl::OkStatus();
  }

  // Commit times per timeline (LSN -> time), for the LSN <-> time lookups; a timeline with none
  // answers UNIMPLEMENTED, as a service without them would.
  absl::StatusOr<uint64_t> LsnForTimestamp(const std::string&, const std::string& id,
                                           absl::Time at) override {
    auto it = commit_times.find(id);
    if (it == commit_times.end()) return absl::UnimplementedError("no commit times");
    std::optional<uint64_t> lsn;
    for (const auto& [l, t] : it->second) {
      if (t <= at) lsn = l;
    }
    if (!lsn) return absl::OutOfRangeError("before the oldest point");
    return *lsn;
  }
  absl::StatusOr<absl::Time> TimestampForLsn(const std::string&, const std::string& id,
                                             uint64_t lsn) override {
    auto it = commit_times.find(id);
    if (it == commit_times.end()) return absl::UnimplementedError("no commit times");
    std::optional<absl::Time> at;
    for (const auto& [l, t] : it->second) {
      if (l <= lsn) at = t;
    }
    if (!at) return absl::OutOfRangeError("no commit time");
    return *at;
  }

  bool available = true;
  std::map<std::string, std::map<uint64_t, absl::Time>> commit_times;
  std::set<std::string> tenants;
  std::map<std::string, TimelineInfo> timelines;
  std::vector<std::string> deleted;
  std::map<std::string, absl::Duration> retention;
  int resets = 0;
  int rewinds = 0;
};

// Computes that do what they are told at once; tests move them between states.
class FakeComputeRuntime : public ComputeRuntime {
 public:
  absl::Status Start(const ComputeSpec& spec) override {
    ComputeObservation& o = computes[spec.ns + "/" + spec.endpoint];
    if (o.state == ComputeState::kStarting || o.state == ComputeState::kRunning) {
      return absl::OkStatus();
    }
    o = {};
    o.state = ComputeState::kStarting;
    specs[spec.ns + "/" + spec.endpoint] = spec;
    ++starts;
    return absl::OkStatus();
  }
  absl::Status Stop(const std::string& ns, const std::string& endpoint) override {
    auto it = computes.find(ns + "/" + endpoint);
    if (it == computes.end()) return absl::OkStatus();
    if (it->second.state == ComputeState::kFailed) {
      computes.erase(it);
    } else {
      it->second.state = ComputeState::kStopping;
      ++stops;
    }
    return absl::OkStatus();
  }
  ComputeObservation Observe(const std::string& ns, const std::string& endpoint) override {
    auto it = computes.find(ns + "/" + endpoint);
    return it == computes.end() ? ComputeObservation{} : it->second;
  }

  absl::StatusOr<bool> Checkpoint(const std::string& ns, const std::string& endpoint,
                                  absl::Duration timeout) override {
    checkpoints.push_back(ns + "/" + endpoint);
    // What the timeline service held when asked: the checkpoint comes before the branch point.
    checkpoint_timelines.push_back(timelines_at_checkpoint ? timelines_at_checkpoint() : 0);
    if (!checkpoint_error.ok()) return checkpoint_error;
    return true;
  }

  // Test controls.
  void FinishStarting(const std::string& key) { computes[key].state = ComputeState::kRunning; }
  void FinishStopping(const std::string& key) {
    if (computes[key].state == ComputeState::kStopping) computes.erase(key);
  }
  void Fail(const std::string& key, const std::string& why) {
    computes[key].state = ComputeState::kFailed;
    computes[key].message = why;
  }

  std::map<std::string, ComputeObservation> computes;
  std::map<std::string, ComputeSpec> specs;
  std::vector<std::string> checkpoints;  // "ns/endpoint", in order
  std::vector<size_t> checkpoint_timelines;
  std::function<size_t()> timelines_at_checkpoint;
  absl::Status checkpoint_error;
  int starts = 0;
  int stops = 0;
};

}  // namespace pgbranch::control::testing
