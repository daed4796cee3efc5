#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "operator/control/object_store.h"
#include "operator/control/reconcile_context.h"
#include "operator/control/timeline_service.h"
#include "operator/model/manifest.h"

// Local mode's object store: the stand-in for the Kubernetes API server. Objects live in memory
// and in STATE/objects.json (rewritten atomically — temp file, fsync, rename — after every
// change, so a controller restart finds them). It also plays the API server's admission role:
// the rules users rely on (a protected branch refuses delete and reset, a branch with children
// refuses delete and names them, immutable fields) are checked here for every user request,
// exactly as the ValidatingAdmissionPolicy does in Kubernetes. Local mode checks more than
// Kubernetes can before accepting (a parent that exists, one writer per branch, start points
// inside the parent's history), so a bad request fails at once and leaves nothing behind; the
// reconcilers still hold each rule on their own (Conflict, StartPointOutOfRange conditions), as
// they must in Kubernetes. Thread-safe.
namespace pgbranch::cli {

class LocalStore : public control::ObjectStore {
 public:
  using ChangeFn = std::function<void(control::Kind, const std::string&, const std::string&)>;

  // `path` empty: memory only (tests).
  LocalStore(std::string path, Clock* clock);

  // Reads the state file if there is one.
  absl::Status Load();
  // Called after each user change (apply, delete, reset), outside the lock.
  void SetChangeListener(ChangeFn fn);
  // Called with a branch's uid once RemoveBranch() dropped it, outside the lock (local mode
  // deletes the branch's credentials). Set before serving.
  void SetBranchRemovedListener(std::function<void(const std::string& uid)> fn) {
    on_branch_removed_ = std::move(fn);
  }

  // Start points (spec.lsn, spec.timestamp) are checked against the pageserver's history when
  // set; without it they are left to the BranchReconciler. Call before serving requests.
  void SetTimelineService(control::TimelineService* timelines);

  // --- User requests (admission checks, then change) ---
  enum class Action { kCreated, kConfigured, kUnchanged };
  static const char* ActionName(Action a);  // "created", "configured", "unchanged"
  struct Applied {
    control::Resource object;  // as stored
    Action action = Action::kUnchanged;
  };
  struct ApplyOptions {
    // `create`: refuse (ALREADY_EXISTS) when any named object exists or is being deleted.
    bool create_only = false;
    // Rules between objects: the parent / the endpoint's branch exists (or comes in the same
    // request) and is not being deleted, one ReadWrite endpoint per branch, start points inside
    // the parent's history. Off only in tests of the reconcilers, which must hold without them
    // (in Kubernetes nothing checks them before the reconciler sees the object).
    bool cross_object_checks = true;
  };
  // Creates or updates (a spec change raises metadata.generation). All or nothing: every object
  // is checked before any is stored, and a refused request changes nothing. Errors are
  // control::FieldError statuses (field path, detail, reason). Returns the stored objects and
  // what happened to each, in request order.
  absl::StatusOr<std::vector<Applied>> Apply(const std::vector<control::Resource>& rs,
                                             ApplyOptions options);
  absl::StatusOr<std::vector<Applied>> Apply(const std::vector<control::Resource>& rs) {
    return Apply(rs, ApplyOptions{});
  }
  absl::Status UserDeleteBranch(const std::string& ns, const std::string& name);
  absl::Status UserDeleteEndpoint(const std::string& ns, const std::string& name);
  // Sets the endpoint's suspend or start request annotation to now (control/resources.h:
  // kAnnotationSuspendRequestedAt, kAnnotationStartRequestedAt); the reconciler acts on it.
  absl::StatusOr<control::Endpoint> RequestSuspend(const std::string& ns, const std::string& name);
  absl::StatusOr<control::Endpoint> RequestStart(const std::string& ns, const std::string& name);
  // Raises spec.resetGeneration: the reconciler resets the branch from its parent.
  absl::StatusOr<control::Branch> RequestReset(const std::string& ns, const std::string& name);
  // `branch restore PARENT --to RESTORE_POINT` (operator/control/branch_restore.h): creates the
  // branch `keep_as` that will keep PARENT's current state and raises PARENT's
  // spec.resetGeneration with the restore's annotations, in one save. Returns PARENT.
  struct RestoreRequest {
    std::string parent;
    std::string restore_point;
    std::string keep_as;
    bool allow_protected = false;
  };
  absl::StatusOr<control::Branch> RequestRestore(const std::string& ns, const RestoreRequest& r);

  // --- Routes for the proxy: each endpoint's own port ---
  struct Route {
    std::string endpoint;
    int port = 0;
  };
  // The table changes (and its version rises) when endpoints come and go.
  int64_t RoutesVersion() const;
  std::vector<Route> Routes(int64_t* version) const;

  // --- control::ObjectStore ---
  std::optional<control::Branch> GetBranch(const std::string& ns, const std::string& name) override;
  std::vector<control::Branch> ListBranches(const std::string& ns) override;
  std::optional<control::Endpoint> GetEndpoint(const std::string& ns,
                                               const std::string& name) override;
  std::vector<control::Endpoint> ListEndpoints(const std::string& ns) override;
  absl::Status UpdateBranchStatus(const std::string& ns, const std::string& name,
                                  const control::BranchStatus& status) override;
  absl::Status UpdateEndpointStatus(const std::string& ns, const std::string& name,
                                    const control::EndpointStatus& status) override;
  absl::Status RequestBranchDeletion(const std::string& ns, const std::string& name) override;
  absl::Status RequestEndpointDeletion(const std::string& ns, const std::string& name) override;
  absl::Status RemoveBranch(const std::string& ns, const std::string& name) override;
  absl::Status RemoveEndpoint(const std::string& ns, const std::string& name) override;

 private:
  using Key = std::pair<std::string, std::string>;  // namespace, name

  // What one request brings, for rules between its objects.
  struct Request {
    ApplyOptions options;
    std::set<std::string> branches;  // names of the branches it creates or applies
  };
  // Applies every object to the in-memory maps; the caller restores them on error.
  absl::StatusOr<std::vector<Applied>> ApplyAllLocked(const std::vector<control::Resource>& rs,
                                                      const ApplyOptions& options);
  absl::StatusOr<Applied> ApplyBranchLocked(control::Branch b, const Request& req);
  absl::StatusOr<Applied> ApplyEndpointLocked(control::Endpoint e, const Request& req);
  // The checks that ask the pageserver (start points of new objects), outside the lock.
  absl::Status CheckHistory(const std::vector<control::Resource>& rs);
  absl::StatusOr<control::Endpoint> SetRequestAnnotation(const std::string& ns,
                                                         const std::string& name,
                                                         const char* annotation);
  std::vector<std::string> ChildrenLocked(const std::string& ns, const std::string& name) const;
  int AllocatePortLocked() const;
  // Writes the state file. Must hold mu_.
  absl::Status SaveLocked();
  void Notify(control::Kind kind, const std::string& ns, const std::string& name);

  const std::string path_;
  Clock* const clock_;
  mutable std::mutex mu_;
  std::map<Key, control::Branch> branches_;     // GUARDED_BY(mu_)
  std::map<Key, control::Endpoint> endpoints_;  // GUARDED_BY(mu_)
  int64_t routes_version_ = 1;                  // GUARDED_BY(mu_)
  int64_t next_uid_ = 1;                        // GUARDED_BY(mu_)
  ChangeFn on_change_;
  std::function<void(const std::string&)> on_branch_removed_;
  control::TimelineService* timelines_ = nullptr;  // set before serving; not owned
};

}  // namespace pgbranch::cli
