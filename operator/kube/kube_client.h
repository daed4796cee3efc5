#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/cpprest.h"

// The Kubernetes API as the operator sees it: typed by group/version/resource, objects as JSON.
// One interface, two implementations: RestKubeClient (cpprestsdk, a real API server) and
// FakeKubeApi (in memory, with resourceVersion/generation semantics and fault injection, for
// unit tests). Thread-safe.
//
// Errors map HTTP statuses to absl codes and keep the API server's message:
//   404 -> NOT_FOUND, 409 -> ALREADY_EXISTS on create / ABORTED on a stale resourceVersion,
//   410 -> OUT_OF_RANGE ("Gone": relist), 422 -> INVALID_ARGUMENT (the admission/CEL message),
//   403 -> PERMISSION_DENIED, 401 -> UNAUTHENTICATED, 429/5xx/transport -> UNAVAILABLE.
namespace pgbranch::kube {

// Which collection: e.g. {"pgbranch.io", "v1alpha1", "branches"}, {"", "v1", "pods"},
// {"coordination.k8s.io", "v1", "leases"}. Empty namespace in a call = cluster scope / all
// namespaces (for list and watch).
struct Resource {
  std::string group;
  std::string version;
  std::string plural;
  bool operator<(const Resource& o) const {
    return std::tie(group, version, plural) < std::tie(o.group, o.version, o.plural);
  }
  bool operator==(const Resource& o) const = default;
  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
};

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  int64_t limit = 500;  // pages of this size, following `continue`
};

struct ObjectList {
  std::vector<web::json::value> items;
  std::string resource_version;  // of the list: where a watch starts
};

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };

struct WatchEvent {
  WatchEventType type;
  web::json::value object;  // for kError: a Status object (code 410 = Gone)
};

struct WatchOptions {
  std::string resource_version;  // start after this version
  std::string label_selector;
  bool allow_bookmarks = true;
  int timeout_seconds = 300;  // server-side end of the watch; the informer reconnects
  std::string field_selector;
};

// A running watch. Events are delivered in order on the watch's own thread until the stream
// ends (server timeout, error, Cancel()). `on_end` is called exactly once, last. When
// StartWatch itself fails (e.g. OUT_OF_RANGE for a too-old resourceVersion) there is no Watch
// and neither callback runs. Destroying a Watch cancels it and waits for on_end (unless called
// from the watch's own thread, inside a callback).
class Watch {
 public:
  virtual ~Watch() = default;
  virtual void Cancel() = 0;  // idempotent; on_end still runs
};

enum class PatchType { kMerge, kJson, kApply };

class KubeClient {
 public:
  virtual ~KubeClient() = default;

  virtual absl::StatusOr<web::json::value> Get(const Resource& r, const std::string& ns,
                                               const std::string& name) = 0;
  virtual absl::StatusOr<ObjectList> List(const Resource& r, const std::string& ns,
                                          const ListOptions& options = {}) = 0;
  virtual absl::StatusOr<web::json::value> Create(const Resource& r, const std::string& ns,
                                                  const web::json::value& object) = 0;
  // PUT of the whole object (metadata.resourceVersion must match: ABORTED on conflict).
  virtual absl::StatusOr<web::json::value> Update(const Resource& r, const std::string& ns,
                                                  const web::json::value& object) = 0;
  // PUT to /status with the object's resourceVersion (ABORTED on conflict).
  virtual absl::StatusOr<web::json::value> UpdateStatus(const Resource& r, const std::string& ns,
                                                        const web::json::value& object) = 0;
  // kMerge: JSON merge patch; kJson: RFC 6902 ops (an array); kApply: server-side apply with
  // `field_manager` and force. `subresource` "" or "status".
  virtual absl::StatusOr<web::json::value> Patch(
      const Resource& r, const std::string& ns, const std::string& name, PatchType type,
      const web::json::value& patch, const std::string& field_manager = "pgbranch-operator",
      const std::string& subresource = "") = 0;
  // NOT_FOUND when already gone. `propagation` "" (server default), "Background", "Foreground".
  virtual absl::Status Delete(const Resource& r, const std::string& ns, const std::string& name,
                              const std::string& propagation = "") = 0;

  virtual absl::StatusOr<std::unique_ptr<Watch>> StartWatch(
      const Resource& r, const std::string& ns, const WatchOptions& options,
      std::function<void(const WatchEvent&)> on_event,
      std::function<void(const absl::Status&)> on_end) = 0;
};

// Well-known resources.
inline const Resource kBranches{"pgbranch.io", "v1alpha1", "branches"};
inline const Resource kEndpoints{"pgbranch.io", "v1alpha1", "endpoints"};
inline const Resource kPromotions{"pgbranch.io", "v1alpha1", "promotions"};
inline const Resource kConfigMaps{"", "v1", "configmaps"};
inline const Resource kPods{"", "v1", "pods"};
inline const Resource kServices{"", "v1", "services"};
inline const Resource kSecrets{"", "v1", "secrets"};
inline const Resource kEvents{"events.k8s.io", "v1", "events"};
// Core v1 Events: what `kubectl describe` shows; EventRecorder writes these.
inline const Resource kCoreEvents{"", "v1", "events"};
inline const Resource kLeases{"coordination.k8s.io", "v1", "leases"};

}  // namespace pgbranch::kube
