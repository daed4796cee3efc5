#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "operator/kube/kube_client.h"

// The one way the operator writes status and finalizers (stateless functions, thread-safe as
// the client is).
namespace pgbranch::kube {

// GET the object, let `mutate` change it (only `status` is written), skip the write when the
// status did not change, else PUT /status with the resourceVersion read; on ABORTED (someone
// wrote in between) re-read and re-apply, up to `max_attempts` times. Returns the object as
// stored. `mutate` may be called several times and must be idempotent; its error aborts.
absl::StatusOr<web::json::value> UpdateStatusWithRetry(
    KubeClient* client, const Resource& resource, const std::string& ns, const std::string& name,
    const std::function<absl::Status(web::json::value& object)>& mutate, int max_attempts = 5);

bool HasFinalizer(const web::json::value& object, const std::string& finalizer);

// Adds `finalizer` when missing, with a JSON patch guarded by a `test` of the resourceVersion
// read (so a concurrent writer makes it fail and we re-read); returns the object as stored.
absl::StatusOr<web::json::value> AddFinalizer(KubeClient* client, const Resource& resource,
                                              const std::string& ns, const std::string& name,
                                              const std::string& finalizer, int max_attempts = 5);
// Removes exactly our `finalizer` (a `test` of that list element guards the `remove`, so we
// never remove someone else's after the list moved); NOT_FOUND from the object is success
// (returns null).
absl::StatusOr<web::json::value> RemoveFinalizer(KubeClient* client, const Resource& resource,
                                                 const std::string& ns, const std::string& name,
                                                 const std::string& finalizer,
                                                 int max_attempts = 5);

// An ownerReferences entry pointing at `owner` (apiVersion, kind, name, uid);
// blockOwnerDeletion follows `controller`.
web::json::value OwnerReference(const web::json::value& owner, bool controller = true);

}  // namespace pgbranch::kube
