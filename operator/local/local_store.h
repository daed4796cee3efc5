#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "operator/control/object_store.h"
#include "operator/control/reconcile_context.h"
#include "operator/model/manifest.h"

// Local mode's object store: the stand-in for the Kubernetes API server. Objects live in memory
// and in STATE/objects.json (rewritten atomically — temp file, fsync, rename — after every
// change, so a controller restart finds them). It also plays the API server's admission role:
// the rules users rely on (a protected branch refuses delete and reset, a branch with children
// refuses delete and names them, immutable fields) are checked here for every user request,
// exactly as the ValidatingAdmissionPolicy does in Kubernetes. Thread-safe.
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

  // --- User requests (admission checks, then change) ---
  // Creates or updates; a spec change raises metadata.generation. Returns the stored objects.
  absl::StatusOr<std::vector<control::Resource>> Apply(const std::vector<control::Resource>& rs);
  absl::Status UserDeleteBranch(const std::string& ns, const std::string& name);
  absl::Status UserDeleteEndpoint(const std::string& ns, const std::string& name);
  // Raises spec.resetGeneration: the reconciler resets the branch from its parent.
  absl::StatusOr<control::Branch> RequestReset(const std::string& ns, const std::string& name);

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

  absl::StatusOr<control::Resource> ApplyBranchLocked(control::Branch b);
  absl::StatusOr<control::Resource> ApplyEndpointLocked(control::Endpoint e);
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
};

}  // namespace pgbranch::cli
