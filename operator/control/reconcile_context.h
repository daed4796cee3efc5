#pragma once

#include <functional>
#include <string>

#include "absl/time/time.h"
#include "common/clock.h"
#include "operator/control/activity_tracker.h"
#include "operator/control/compute_runtime.h"
#include "operator/control/object_store.h"
#include "operator/control/timeline_service.h"

// What the reconcilers work with: all of it injected, so local mode, the Kubernetes operator and
// unit tests (fakes) run the same reconcile logic.
namespace pgbranch::control {

enum class Kind { kBranch, kEndpoint };

struct ReconcileContext {
  ObjectStore* store = nullptr;
  TimelineService* timelines = nullptr;
  ComputeRuntime* computes = nullptr;
  ActivityTracker* activity = nullptr;
  Clock* clock = nullptr;
  // Asks for another pass over an object (the work queue de-duplicates).
  std::function<void(Kind, const std::string& ns, const std::string& name)> enqueue;
  // The pageserver tenant that holds a namespace's branches.
  std::function<std::string(const std::string& ns)> tenant_for_namespace =
      [](const std::string& ns) { return ns; };
  // The pageserver timeline of a branch. Local mode: the branch's name. Kubernetes: the object's
  // UID, so a branch deleted and created again under the same name never meets the old
  // timeline, and a retry after a crash finds the timeline it created.
  std::function<std::string(const Branch&)> timeline_for_branch = [](const Branch& b) {
    return b.metadata.name;
  };

  // How often a starting or stopping compute is looked at again (local mode polls; the
  // operator also gets pod events, so its timer is only a safety net).
  absl::Duration starting_poll = absl::Milliseconds(50);

  absl::Time Now() const { return absl::FromUnixMicros(clock->NowMicros()); }
  void Enqueue(Kind k, const std::string& ns, const std::string& name) const {
    if (enqueue) enqueue(k, ns, name);
  }
};

// The outcome of one pass: when to look again (InfiniteDuration: only on a change).
struct ReconcileResult {
  absl::Duration requeue_after = absl::InfiniteDuration();
  static ReconcileResult After(absl::Duration d) { return {d}; }
  static ReconcileResult Done() { return {}; }
};

inline std::string ObjectKey(const std::string& ns, const std::string& name) {
  return ns + "/" + name;
}

}  // namespace pgbranch::control
