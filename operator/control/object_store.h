#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "operator/model/resources.h"

// Where Branch and Endpoint objects live: the local state file in local mode, the Kubernetes API
// server for the operator. The reconcilers only read objects, write status, and drive deletion.
namespace pgbranch::control {

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  virtual std::optional<Branch> GetBranch(const std::string& ns, const std::string& name) = 0;
  virtual std::vector<Branch> ListBranches(const std::string& ns) = 0;
  virtual std::optional<Endpoint> GetEndpoint(const std::string& ns, const std::string& name) = 0;
  virtual std::vector<Endpoint> ListEndpoints(const std::string& ns) = 0;
  // A branch's child branches and its endpoints. The defaults scan the namespace; a store with
  // an index (the operator's, at thousands of objects) answers without a scan.
  virtual std::vector<Branch> ListChildBranches(const std::string& ns, const std::string& parent) {
    std::vector<Branch> out;
    for (Branch& b : ListBranches(ns)) {
      if (b.spec.parent == parent) out.push_back(std::move(b));
    }
    return out;
  }
  virtual std::vector<Endpoint> ListBranchEndpoints(const std::string& ns,
                                                    const std::string& branch) {
    std::vector<Endpoint> out;
    for (Endpoint& e : ListEndpoints(ns)) {
      if (e.spec.branch == branch) out.push_back(std::move(e));
    }
    return out;
  }

  // Writes the status only (the status subresource). NOT_FOUND when the object is gone.
  // Implementations skip writes that change nothing.
  virtual absl::Status UpdateBranchStatus(const std::string& ns, const std::string& name,
                                          const BranchStatus& status) = 0;
  virtual absl::Status UpdateEndpointStatus(const std::string& ns, const std::string& name,
                                            const EndpointStatus& status) = 0;

  // Asks for deletion (sets metadata.deletionTimestamp); the reconciler then cleans up and calls
  // Remove*. Used for expiry and for deleting a branch's endpoints with it.
  virtual absl::Status RequestBranchDeletion(const std::string& ns, const std::string& name) = 0;
  virtual absl::Status RequestEndpointDeletion(const std::string& ns, const std::string& name) = 0;

  // Cleanup is done: the object goes away (in Kubernetes: the finalizer is removed).
  virtual absl::Status RemoveBranch(const std::string& ns, const std::string& name) = 0;
  virtual absl::Status RemoveEndpoint(const std::string& ns, const std::string& name) = 0;
};

}  // namespace pgbranch::control
