#pragma once

#include <mutex>
#include <set>
#include <string>
#include <tuple>

#include "operator/kube/kube_client.h"

// A KubeClient that forwards every call to another one and records the RBAC permission each
// call needs: (apiGroup, resource[/subresource], verb, namespace). Get/List/Create/Update/
// Delete map to get/list/create/update/delete, StartWatch to watch, UpdateStatus to update on
// <resource>/status, Patch to patch on <resource> or <resource>/<subresource>. Failed calls are
// recorded too (the permission was needed to make them). Thread-safe.
namespace pgbranch::chart {

struct Permission {
  std::string group;     // "" = core
  std::string resource;  // plural, or plural/subresource
  std::string verb;
  std::string ns;  // "" = cluster scope or all namespaces
  bool operator<(const Permission& o) const {
    return std::tie(group, resource, verb, ns) < std::tie(o.group, o.resource, o.verb, o.ns);
  }
};

class RecordingKubeClient : public kube::KubeClient {
 public:
  explicit RecordingKubeClient(kube::KubeClient* inner) : inner_(inner) {}

  absl::StatusOr<web::json::value> Get(const kube::Resource& r, const std::string& ns,
                                       const std::string& name) override;
  absl::StatusOr<kube::ObjectList> List(const kube::Resource& r, const std::string& ns,
                                        const kube::ListOptions& options = {}) override;
  absl::StatusOr<web::json::value> Create(const kube::Resource& r, const std::string& ns,
                                          const web::json::value& object) override;
  absl::StatusOr<web::json::value> Update(const kube::Resource& r, const std::string& ns,
                                          const web::json::value& object) override;
  absl::StatusOr<web::json::value> UpdateStatus(const kube::Resource& r, const std::string& ns,
                                                const web::json::value& object) override;
  absl::StatusOr<web::json::value> Patch(const kube::Resource& r, const std::string& ns,
                                         const std::string& name, kube::PatchType type,
                                         const web::json::value& patch,
                                         const std::string& field_manager = "pgbranch-operator",
                                         const std::string& subresource = "") override;
  absl::Status Delete(const kube::Resource& r, const std::string& ns, const std::string& name,
                      const std::string& propagation = "") override;
  absl::StatusOr<std::unique_ptr<kube::Watch>> StartWatch(
      const kube::Resource& r, const std::string& ns, const kube::WatchOptions& options,
      std::function<void(const kube::WatchEvent&)> on_event,
      std::function<void(const absl::Status&)> on_end) override;

  std::set<Permission> Recorded();

 private:
  void Record(const kube::Resource& r, const std::string& subresource, const std::string& verb,
              const std::string& ns);

  kube::KubeClient* const inner_;
  std::mutex mu_;
  std::set<Permission> recorded_;  // GUARDED_BY(mu_)
};

}  // namespace pgbranch::chart
