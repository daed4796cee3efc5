#pragma once

#include <list>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "operator/kube/kube_client.h"

// Kubernetes Events (core v1, what `kubectl describe` shows) about our objects. Repeats of the
// same object + type + reason + message within `aggregation_window` bump `count` and
// `lastTimestamp` of the existing Event (a merge PATCH) instead of creating another.
// Best effort: failures are logged, never returned. Synchronous (one API call per Record).
// Thread-safe.
namespace pgbranch::kube {

struct ObjectReference {
  std::string api_version;  // e.g. "pgbranch.io/v1alpha1"
  std::string kind;         // e.g. "Branch"
  std::string name_space;   // "" for cluster-scoped objects
  std::string name;
  std::string uid;
  // From an object's apiVersion, kind and metadata.
  static ObjectReference From(const web::json::value& obj);
};

class EventRecorder {
 public:
  enum class Type { kNormal, kWarning };
  struct Options {
    std::string reporting_controller = "pgbranch-operator";
    std::string reporting_instance;  // e.g. the pod name
    absl::Duration aggregation_window = absl::Minutes(10);
    size_t max_tracked = 4096;  // aggregation memory, least recently used dropped first
    Clock* clock = RealClock();
  };

  EventRecorder(KubeClient* client, Options options);
  explicit EventRecorder(KubeClient* client) : EventRecorder(client, Options()) {}

  // `reason` is CamelCase ("Created", "SuspendFailed"); `message` a sentence for people.
  void Record(const ObjectReference& object, Type type, const std::string& reason,
              const std::string& message);
  void Normal(const ObjectReference& o, const std::string& reason, const std::string& message) {
    Record(o, Type::kNormal, reason, message);
  }
  void Warning(const ObjectReference& o, const std::string& reason, const std::string& message) {
    Record(o, Type::kWarning, reason, message);
  }

 private:
  struct Seen {
    std::string event_namespace;
    std::string event_name;
    int64_t count = 0;
    absl::Time last = absl::InfinitePast();
    std::list<std::string>::iterator lru;
  };
  void Remember(const std::string& key, Seen seen) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  KubeClient* const client_;
  const Options options_;
  // Serializes recording, so two repeats never both create an Event.
  absl::Mutex mu_;
  std::map<std::string, Seen> seen_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);  // front = most recent
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace pgbranch::kube
