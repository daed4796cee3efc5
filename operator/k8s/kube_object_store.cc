#include "operator/k8s/kube_object_store.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "operator/kube/kube_object.h"
#include "operator/model/json.h"

namespace pgbranch::k8s {
namespace {

using web::json::value;

std::string OverlayKey(const kube::Resource& r, const std::string& ns, const std::string& name) {
  return absl::StrCat(r.group, "/", r.plural, "/", ns, "/", name);
}

bool HasFinalizer(const value& obj, int* index) {
  if (!obj.has_field("metadata") || !obj.at("metadata").has_field("finalizers")) return false;
  const value& f = obj.at("metadata").at("finalizers");
  if (!f.is_array()) return false;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f.at(i).is_string() && f.at(i).as_string() == kFinalizer) {
      if (index) *index = static_cast<int>(i);
      return true;
    }
  }
  return false;
}

value Op(const std::string& op, const std::string& path, std::optional<value> v = std::nullopt) {
  value o = value::object();
  o["op"] = value::string(op);
  o["path"] = value::string(path);
  if (v) o["value"] = *v;
  return o;
}

constexpr int kAttempts = 5;

}  // namespace

bool NewerVersion(const std::string& a, const std::string& b) {
  char* end_a = nullptr;
  char* end_b = nullptr;
  unsigned long long va = std::strtoull(a.c_str(), &end_a, 10);
  unsigned long long vb = std::strtoull(b.c_str(), &end_b, 10);
  if (a.empty() || *end_a != '\0') return false;
  if (b.empty() || *end_b != '\0') return true;
  return va > vb;
}

KubeObjectStore::KubeObjectStore(kube::KubeClient* client, CacheGet get, CacheList list,
                                 EndpointStatusHook endpoint_hook, IndexFn index)
    : client_(client),
      get_(std::move(get)),
      list_(std::move(list)),
      endpoint_hook_(std::move(endpoint_hook)),
      index_(std::move(index)) {}

std::vector<control::Branch> KubeObjectStore::ListChildBranches(const std::string& ns,
                                                                const std::string& parent) {
  if (!index_) return ObjectStore::ListChildBranches(ns, parent);
  std::vector<control::Branch> out;
  for (const std::string& name : index_(kube::kBranches, ns, parent)) {
    if (auto b = GetBranch(ns, name); b && b->spec.parent == parent) out.push_back(std::move(*b));
  }
  return out;
}

std::vector<control::Endpoint> KubeObjectStore::ListBranchEndpoints(const std::string& ns,
                                                                    const std::string& branch) {
  if (!index_) return ObjectStore::ListBranchEndpoints(ns, branch);
  std::vector<control::Endpoint> out;
  for (const std::string& name : index_(kube::kEndpoints, ns, branch)) {
    if (auto e = GetEndpoint(ns, name); e && e->spec.branch == branch) {
      out.push_back(std::move(*e));
    }
  }
  return out;
}

void KubeObjectStore::Remember(const kube::Resource& r, const value& obj) {
  std::lock_guard<std::mutex> l(mu_);
  overlay_[OverlayKey(r, kube::NamespaceOf(obj), kube::NameOf(obj))] = obj;
}

std::optional<value> KubeObjectStore::Latest(const kube::Resource& r, const std::string& ns,
                                             const std::string& name) {
  std::optional<value> cached = get_(r, ns, name);
  std::lock_guard<std::mutex> l(mu_);
  auto it = overlay_.find(OverlayKey(r, ns, name));
  if (it == overlay_.end()) return cached;
  if (!cached) {
    // This store only writes objects the cache has shown it (users create them): gone from the
    // cache means deleted.
    overlay_.erase(it);
    return std::nullopt;
  }
  if (NewerVersion(kube::ResourceVersionOf(it->second), kube::ResourceVersionOf(*cached))) {
    return it->second;
  }
  overlay_.erase(it);
  return cached;
}

std::optional<control::Branch> KubeObjectStore::ParseBranchCached(const value& obj) {
  const std::string key = kube::ObjectKey(obj);
  const std::string rv = kube::ResourceVersionOf(obj);
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = branch_memo_.find(key);
    if (it != branch_memo_.end() && it->second.first == rv && !rv.empty()) return it->second.second;
  }
  auto b = control::BranchFromJson(obj);
  if (!b.ok()) {
    LogWarning("Skipping a Branch the model cannot read",
               {{"branch", key}, {"error", std::string(b.status().message())}});
    return std::nullopt;
  }
  b->metadata.namespace_ = kube::NamespaceOf(obj);
  std::lock_guard<std::mutex> l(mu_);
  branch_memo_[key] = {rv, *b};
  return *b;
}

std::optional<control::Endpoint> KubeObjectStore::ParseEndpointCached(const value& obj) {
  const std::string key = kube::ObjectKey(obj);
  const std::string rv = kube::ResourceVersionOf(obj);
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = endpoint_memo_.find(key);
    if (it != endpoint_memo_.end() && it->second.first == rv && !rv.empty()) {
      return it->second.second;
    }
  }
  auto e = control::EndpointFromJson(obj);
  if (!e.ok()) {
    LogWarning("Skipping an Endpoint the model cannot read",
               {{"endpoint", key}, {"error", std::string(e.status().message())}});
    return std::nullopt;
  }
  e->metadata.namespace_ = kube::NamespaceOf(obj);
  std::lock_guard<std::mutex> l(mu_);
  endpoint_memo_[key] = {rv, *e};
  return *e;
}

std::optional<control::Branch> KubeObjectStore::GetBranch(const std::string& ns,
                                                          const std::string& name) {
  auto obj = Latest(kube::kBranches, ns, name);
  if (!obj) return std::nullopt;
  return ParseBranchCached(*obj);
}

std::vector<control::Branch> KubeObjectStore::ListBranches(const std::string& ns) {
  std::vector<control::Branch> out;
  for (const value& cached : list_(kube::kBranches, ns)) {
    auto obj = Latest(kube::kBranches, kube::NamespaceOf(cached), kube::NameOf(cached));
    if (!obj) continue;
    if (auto b = ParseBranchCached(*obj)) out.push_back(std::move(*b));
  }
  return out;
}

std::optional<control::Endpoint> KubeObjectStore::GetEndpoint(const std::string& ns,
                                                              const std::string& name) {
  auto obj = Latest(kube::kEndpoints, ns, name);
  if (!obj) return std::nullopt;
  return ParseEndpointCached(*obj);
}

std::vector<control::Endpoint> KubeObjectStore::ListEndpoints(const std::string& ns) {
  std::vector<control::Endpoint> out;
  for (const value& cached : list_(kube::kEndpoints, ns)) {
    auto obj = Latest(kube::kEndpoints, kube::NamespaceOf(cached), kube::NameOf(cached));
    if (!obj) continue;
    if (auto e = ParseEndpointCached(*obj)) out.push_back(std::move(*e));
  }
  return out;
}

absl::Status KubeObjectStore::WriteStatus(const kube::Resource& r, const std::string& ns,
                                          const std::string& name, const value& status_json) {
  std::optional<value> obj = Latest(r, ns, name);
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (!obj) return absl::NotFoundError(absl::StrCat(r.plural, " ", ns, "/", name, " is gone"));
    if (obj->has_field("status") && obj->at("status") == status_json) return absl::OkStatus();
    value updated = *obj;
    updated["status"] = status_json;
    auto written = client_->UpdateStatus(r, ns, updated);
    if (written.ok()) {
      Remember(r, *written);
      return absl::OkStatus();
    }
    if (absl::IsNotFound(written.status())) return written.status();
    if (!absl::IsAborted(written.status())) return written.status();
    // Conflict: someone changed the object (spec, metadata); the status is ours to rewrite.
    auto fresh = client_->Get(r, ns, name);
    if (!fresh.ok()) return fresh.status();
    Remember(r, *fresh);
    obj = *fresh;
  }
  return absl::AbortedError(absl::StrCat("status of ", ns, "/", name, ": conflicts persisted"));
}

absl::Status KubeObjectStore::UpdateBranchStatus(const std::string& ns, const std::string& name,
                                                 const control::BranchStatus& status) {
  control::Branch b;
  b.metadata.name = name;
  b.metadata.namespace_ = ns;
  b.status = status;
  value j = control::ToJson(b);
  return WriteStatus(kube::kBranches, ns, name,
                     j.has_field("status") ? j.at("status") : value::object());
}

absl::Status KubeObjectStore::UpdateEndpointStatus(const std::string& ns, const std::string& name,
                                                   const control::EndpointStatus& status) {
  control::Endpoint e;
  if (auto current = GetEndpoint(ns, name)) e = *current;
  e.metadata.name = name;
  e.metadata.namespace_ = ns;
  e.status = status;
  if (endpoint_hook_) endpoint_hook_(e, &e.status);
  value j = control::ToJson(e);
  return WriteStatus(kube::kEndpoints, ns, name,
                     j.has_field("status") ? j.at("status") : value::object());
}

absl::Status KubeObjectStore::RequestBranchDeletion(const std::string& ns,
                                                    const std::string& name) {
  absl::Status s = client_->Delete(kube::kBranches, ns, name);
  return absl::IsNotFound(s) ? absl::OkStatus() : s;
}

absl::Status KubeObjectStore::RequestEndpointDeletion(const std::string& ns,
                                                      const std::string& name) {
  absl::Status s = client_->Delete(kube::kEndpoints, ns, name);
  return absl::IsNotFound(s) ? absl::OkStatus() : s;
}

absl::Status KubeObjectStore::RemoveFinalizer(const kube::Resource& r, const std::string& ns,
                                              const std::string& name) {
  std::optional<value> obj = Latest(r, ns, name);
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (!obj) return absl::OkStatus();
    int index = -1;
    if (!HasFinalizer(*obj, &index)) return absl::OkStatus();
    // The `test` op makes the removal fail if the list moved (never remove someone else's).
    const std::string path = absl::StrCat("/metadata/finalizers/", index);
    value patch = value::array();
    patch[0] = Op("test", path, value::string(kFinalizer));
    patch[1] = Op("remove", path);
    auto patched = client_->Patch(r, ns, name, kube::PatchType::kJson, patch);
    if (patched.ok()) {
      Remember(r, *patched);
      return absl::OkStatus();
    }
    if (absl::IsNotFound(patched.status())) return absl::OkStatus();
    auto fresh = client_->Get(r, ns, name);
    if (absl::IsNotFound(fresh.status())) return absl::OkStatus();
    if (!fresh.ok()) return fresh.status();
    obj = *fresh;
  }
  return absl::AbortedError(absl::StrCat("cannot remove the finalizer of ", ns, "/", name));
}

absl::Status KubeObjectStore::RemoveBranch(const std::string& ns, const std::string& name) {
  return RemoveFinalizer(kube::kBranches, ns, name);
}

absl::Status KubeObjectStore::RemoveEndpoint(const std::string& ns, const std::string& name) {
  return RemoveFinalizer(kube::kEndpoints, ns, name);
}

absl::StatusOr<bool> KubeObjectStore::EnsureFinalizer(const kube::Resource& r,
                                                      const std::string& ns,
                                                      const std::string& name) {
  std::optional<value> obj = Latest(r, ns, name);
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (!obj) return absl::NotFoundError(absl::StrCat(ns, "/", name, " is gone"));
    if (HasFinalizer(*obj, nullptr)) return true;
    if (!kube::MetaString(*obj, "deletionTimestamp").empty()) return false;
    value patch = value::array();
    patch[0] =
        Op("test", "/metadata/resourceVersion", value::string(kube::ResourceVersionOf(*obj)));
    const bool has_list = obj->at("metadata").has_field("finalizers") &&
                          obj->at("metadata").at("finalizers").is_array();
    if (has_list) {
      patch[1] = Op("add", "/metadata/finalizers/-", value::string(kFinalizer));
    } else {
      value list = value::array();
      list[0] = value::string(kFinalizer);
      patch[1] = Op("add", "/metadata/finalizers", list);
    }
    auto patched = client_->Patch(r, ns, name, kube::PatchType::kJson, patch);
    if (patched.ok()) {
      Remember(r, *patched);
      return true;
    }
    auto fresh = client_->Get(r, ns, name);
    if (!fresh.ok()) return fresh.status();
    obj = *fresh;
  }
  return absl::AbortedError(absl::StrCat("cannot add the finalizer to ", ns, "/", name));
}

}  // namespace pgbranch::k8s
