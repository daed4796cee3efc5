#include "tests/k8s/chart/recording_kube_client.h"

namespace pgbranch::chart {

using web::json::value;

void RecordingKubeClient::Record(const kube::Resource& r, const std::string& subresource,
                                 const std::string& verb, const std::string& ns) {
  std::lock_guard<std::mutex> l(mu_);
  recorded_.insert(
      {r.group, subresource.empty() ? r.plural : r.plural + "/" + subresource, verb, ns});
}

std::set<Permission> RecordingKubeClient::Recorded() {
  std::lock_guard<std::mutex> l(mu_);
  return recorded_;
}

absl::StatusOr<value> RecordingKubeClient::Get(const kube::Resource& r, const std::string& ns,
                                               const std::string& name) {
  Record(r, "", "get", ns);
  return inner_->Get(r, ns, name);
}

absl::StatusOr<kube::ObjectList> RecordingKubeClient::List(const kube::Resource& r,
                                                           const std::string& ns,
                                                           const kube::ListOptions& options) {
  Record(r, "", "list", ns);
  return inner_->List(r, ns, options);
}

absl::StatusOr<value> RecordingKubeClient::Create(const kube::Resource& r, const std::string& ns,
                                                  const value& object) {
  Record(r, "", "create", ns);
  return inner_->Create(r, ns, object);
}

absl::StatusOr<value> RecordingKubeClient::Update(const kube::Resource& r, const std::string& ns,
                                                  const value& object) {
  Record(r, "", "update", ns);
  return inner_->Update(r, ns, object);
}

absl::StatusOr<value> RecordingKubeClient::UpdateStatus(const kube::Resource& r,
                                                        const std::string& ns,
                                                        const value& object) {
  Record(r, "status", "update", ns);
  return inner_->UpdateStatus(r, ns, object);
}

absl::StatusOr<value> RecordingKubeClient::Patch(const kube::Resource& r, const std::string& ns,
                                                 const std::string& name, kube::PatchType type,
                                                 const value& patch,
                                                 const std::string& field_manager,
                                                 const std::string& subresource) {
  Record(r, subresource, "patch", ns);
  return inner_->Patch(r, ns, name, type, patch, field_manager, subresource);
}

absl::Status RecordingKubeClient::Delete(const kube::Resource& r, const std::string& ns,
                                         const std::string& name, const std::string& propagation) {
  Record(r, "", "delete", ns);
  return inner_->Delete(r, ns, name, propagation);
}

absl::StatusOr<std::unique_ptr<kube::Watch>> RecordingKubeClient::StartWatch(
    const kube::Resource& r, const std::string& ns, const kube::WatchOptions& options,
    std::function<void(const kube::WatchEvent&)> on_event,
    std::function<void(const absl::Status&)> on_end) {
  Record(r, "", "watch", ns);
  return inner_->StartWatch(r, ns, options, std::move(on_event), std::move(on_end));
}

}  // namespace pgbranch::chart
