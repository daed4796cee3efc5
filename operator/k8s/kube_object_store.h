#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/cpprest.h"
#include "operator/control/object_store.h"
#include "operator/kube/kube_client.h"

// The reconcile core's ObjectStore on the Kubernetes API server.
//
// Reads come from the informers' caches (no API call per read), overlaid with the objects this
// store wrote itself (read-your-writes: a reconcile that just wrote status sees it on the next
// pass even when the watch event has not arrived yet; an overlay entry is dropped once the cache
// holds the same or a newer resourceVersion). Parsed objects are memoised by resourceVersion, so
// listing 1,000 branches on every pass costs no JSON parsing.
//
// Writes: status through the status subresource with the object's resourceVersion, re-read and
// retried on a conflict (the status is wholly the operator's); deletion requests are DELETEs;
// Remove* takes the operator's finalizer off (a JSON patch guarded by a `test` op), which lets the
// API server delete the object. Objects the model cannot parse are skipped with a warning (the
// CRD schema admits nothing the model refuses). Thread-safe.
namespace pgbranch::k8s {

inline constexpr char kFinalizer[] = "pgbranch.io/finalizer";

class KubeObjectStore : public control::ObjectStore {
 public:
  using CacheGet = std::function<std::optional<web::json::value>(
      const kube::Resource& r, const std::string& ns, const std::string& name)>;
  using CacheList =
      std::function<std::vector<web::json::value>(const kube::Resource& r, const std::string& ns)>;
  // Fills the store-owned parts of an Endpoint's status (where clients connect, the Secret).
  using EndpointStatusHook =
      std::function<void(const control::Endpoint&, control::EndpointStatus*)>;

  // Names of a branch's children (kind kBranches) or endpoints (kEndpoints) from the
  // controller's secondary index; unset = scan the cache.
  using IndexFn = std::function<std::vector<std::string>(
      const kube::Resource& r, const std::string& ns, const std::string& owner)>;

  KubeObjectStore(kube::KubeClient* client, CacheGet get, CacheList list,
                  EndpointStatusHook endpoint_hook = nullptr, IndexFn index = nullptr);

  std::optional<control::Branch> GetBranch(const std::string& ns, const std::string& name) override;
  std::vector<control::Branch> ListBranches(const std::string& ns) override;
  std::optional<control::Endpoint> GetEndpoint(const std::string& ns,
                                               const std::string& name) override;
  std::vector<control::Endpoint> ListEndpoints(const std::string& ns) override;
  std::vector<control::Branch> ListChildBranches(const std::string& ns,
                                                 const std::string& parent) override;
  std::vector<control::Endpoint> ListBranchEndpoints(const std::string& ns,
                                                     const std::string& branch) override;

  absl::Status UpdateBranchStatus(const std::string& ns, const std::string& name,
                                  const control::BranchStatus& status) override;
  absl::Status UpdateEndpointStatus(const std::string& ns, const std::string& name,
                                    const control::EndpointStatus& status) override;
  absl::Status RequestBranchDeletion(const std::string& ns, const std::string& name) override;
  absl::Status RequestEndpointDeletion(const std::string& ns, const std::string& name) override;
  absl::Status RemoveBranch(const std::string& ns, const std::string& name) override;
  absl::Status RemoveEndpoint(const std::string& ns, const std::string& name) override;

  // Adds the finalizer unless present or the object is being deleted (then it is too late to
  // need it: nothing external was created without it). Returns whether the object now has it.
  absl::StatusOr<bool> EnsureFinalizer(const kube::Resource& r, const std::string& ns,
                                       const std::string& name);

  // The newest JSON of an object: the overlay or the cache, whichever is newer.
  std::optional<web::json::value> Latest(const kube::Resource& r, const std::string& ns,
                                         const std::string& name);

 private:
  // Remembers an object this store wrote (the API server's answer).
  void Remember(const kube::Resource& r, const web::json::value& obj);
  std::optional<control::Branch> ParseBranchCached(const web::json::value& obj);
  std::optional<control::Endpoint> ParseEndpointCached(const web::json::value& obj);
  // PUT /status with `status_json`, retrying conflicts on a fresh read.
  absl::Status WriteStatus(const kube::Resource& r, const std::string& ns, const std::string& name,
                           const web::json::value& status_json);
  absl::Status RemoveFinalizer(const kube::Resource& r, const std::string& ns,
                               const std::string& name);

  kube::KubeClient* const client_;
  const CacheGet get_;
  const CacheList list_;
  const EndpointStatusHook endpoint_hook_;
  const IndexFn index_;

  std::mutex mu_;
  // "group/plural/ns/name" -> the object as this store last wrote it. GUARDED_BY(mu_)
  std::map<std::string, web::json::value> overlay_;
  // "ns/name" -> (resourceVersion, parsed). GUARDED_BY(mu_)
  std::map<std::string, std::pair<std::string, control::Branch>> branch_memo_;
  std::map<std::string, std::pair<std::string, control::Endpoint>> endpoint_memo_;
};

// Whether resourceVersion `a` is newer than `b` (etcd revisions: decimal integers; an
// unparseable version counts as not newer).
bool NewerVersion(const std::string& a, const std::string& b);

}  // namespace pgbranch::k8s
