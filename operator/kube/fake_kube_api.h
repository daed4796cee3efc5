#pragma once

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "operator/kube/kube_client.h"

// An in-memory Kubernetes API with the semantics controllers depend on, for unit tests:
// - resourceVersion from one global counter; uid, creationTimestamp, generation (1 on create,
//   +1 when anything outside metadata and status changes); a write that changes nothing keeps
//   the resourceVersion and sends no event;
// - every resource has a status subresource: Create and Update ignore `status`, UpdateStatus
//   and Patch(subresource "status") change only `status`;
// - Update/UpdateStatus with a stale metadata.resourceVersion -> ABORTED (empty = no check);
//   Create of an existing name -> ALREADY_EXISTS; metadata.generateName is honoured;
// - Delete of an object with finalizers only sets deletionTimestamp; removing the last
//   finalizer afterwards deletes it;
// - Patch: merge (RFC 7386), JSON (RFC 6902, a failed `test` -> INVALID_ARGUMENT like the
//   server's 422) and apply (approximated as a merge patch that creates when absent);
// - List: label selectors (=, ==, !=, exists, !exists, in, notin), field selectors on
//   metadata.name/metadata.namespace, paging with limit/continue;
// - Watch: replays history after the given resourceVersion ("" or "0": ADDED for every current
//   object first); a resourceVersion older than the compaction point gets an ERROR event with
//   code 410 and the watch ends; bookmarks on demand; the watch ends after timeout_seconds.
// Fault injection: fail the next N calls of a verb; drop every open watch; compact history.
// Thread-safe; watch callbacks run on each watch's own thread, never under the API's lock.
namespace pgbranch::kube {

class FakeKubeApi : public KubeClient {
 public:
  enum class Verb { kGet, kList, kCreate, kUpdate, kUpdateStatus, kPatch, kDelete, kWatch };

  explicit FakeKubeApi(Clock* clock = RealClock());
  ~FakeKubeApi() override;  // ends every open watch (on_end CANCELLED)

  absl::StatusOr<web::json::value> Get(const Resource& r, const std::string& ns,
                                       const std::string& name) override;
  absl::StatusOr<ObjectList> List(const Resource& r, const std::string& ns,
                                  const ListOptions& options = {}) override;
  absl::StatusOr<web::json::value> Create(const Resource& r, const std::string& ns,
                                          const web::json::value& object) override;
  absl::StatusOr<web::json::value> Update(const Resource& r, const std::string& ns,
                                          const web::json::value& object) override;
  absl::StatusOr<web::json::value> UpdateStatus(const Resource& r, const std::string& ns,
                                                const web::json::value& object) override;
  absl::StatusOr<web::json::value> Patch(const Resource& r, const std::string& ns,
                                         const std::string& name, PatchType type,
                                         const web::json::value& patch,
                                         const std::string& field_manager = "pgbranch-operator",
                                         const std::string& subresource = "") override;
  absl::Status Delete(const Resource& r, const std::string& ns, const std::string& name,
                      const std::string& propagation = "") override;
  absl::StatusOr<std::unique_ptr<Watch>> StartWatch(
      const Resource& r, const std::string& ns, const WatchOptions& options,
      std::function<void(const WatchEvent&)> on_event,
      std::function<void(const absl::Status&)> on_end) override;

  // Test setup: stores the object as given (status included), filling in metadata
  // (uid, resourceVersion, creationTimestamp, generation) and sending ADDED/MODIFIED.
  absl::StatusOr<web::json::value> Put(const Resource& r, const web::json::value& object);

  // Fault injection: the next `times` calls of `verb` return `status` without any effect.
  // For kWatch, StartWatch itself fails (e.g. absl::OutOfRangeError = HTTP 410).
  void FailNext(Verb verb, int times, absl::Status status);
  // Ends every open watch at once with UNAVAILABLE (a dropped connection).
  void DropWatches();
  // Forgets the event history: a watch from a resourceVersion older than now gets 410.
  void Compact();
  // Sends a BOOKMARK with the current resourceVersion to every watch that allows them.
  void SendBookmarks();

  int64_t CurrentResourceVersion();
  size_t OpenWatches();
  // Calls made per verb (including failed ones).
  int Calls(Verb verb);

  struct WatchState;  // internal, public for the .cc's helpers

 private:
  struct HistoryEvent {
    int64_t rv;
    Resource resource;
    WatchEventType type;
    web::json::value object;
  };
  enum class WriteMode { kSpec, kStatus, kRaw };

  absl::Status CheckFault(Verb verb);
  // Writes `incoming` over the stored object per `mode`; handles finalizer-completed deletion.
  absl::StatusOr<web::json::value> WriteLocked(const Resource& r, const std::string& ns,
                                               web::json::value incoming, WriteMode mode,
                                               bool check_rv);
  void EmitLocked(const Resource& r, WatchEventType type, const web::json::value& obj);
  web::json::value NewMetaLocked(const web::json::value& object, const std::string& ns);

  Clock* const clock_;
  std::mutex mu_;
  std::map<Resource, std::map<std::string, web::json::value>> objects_;  // key ns/name
  std::deque<HistoryEvent> history_;
  int64_t rv_ = 1000;
  int64_t compacted_rv_ = 0;
  uint64_t uid_counter_ = 0;
  std::map<Verb, std::deque<absl::Status>> faults_;
  std::map<Verb, int> calls_;
  std::vector<std::shared_ptr<WatchState>> watches_;
};

}  // namespace pgbranch::kube
