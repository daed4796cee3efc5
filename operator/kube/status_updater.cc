#include "operator/kube/status_updater.h"

#include "absl/strings/str_cat.h"
#include "operator/kube/kube_object.h"

namespace pgbranch::kube {

using web::json::value;

namespace {

value StatusOf(const value& obj) {
  return obj.is_object() && obj.has_field("status") ? obj.at("status") : value::null();
}

value Finalizers(const value& obj) {
  if (!obj.has_field("metadata")) return value::array();
  const value& m = obj.at("metadata");
  return m.has_field("finalizers") && m.at("finalizers").is_array() ? m.at("finalizers")
                                                                    : value::array();
}

value Op(const std::string& op, const std::string& path, const value& v) {
  value o = value::object();
  o["op"] = value::string(op);
  o["path"] = value::string(path);
  if (!v.is_null()) o["value"] = v;
  return o;
}

// A patch rejected because its guard no longer holds: the object moved; re-read and retry.
bool Retryable(const absl::Status& s) { return absl::IsAborted(s) || absl::IsInvalidArgument(s); }

}  // namespace

absl::StatusOr<value> UpdateStatusWithRetry(KubeClient* client, const Resource& resource,
                                            const std::string& ns, const std::string& name,
                                            const std::function<absl::Status(value&)>& mutate,
                                            int max_attempts) {
  absl::Status last;
  for (int attempt = 0; attempt < max_attempts; ++attempt) {
    auto current = client->Get(resource, ns, name);
    if (!current.ok()) return current.status();
    value next = *current;
    absl::Status s = mutate(next);
    if (!s.ok()) return s;
    if (StatusOf(next) == StatusOf(*current)) return *current;  // nothing to write
    auto updated = client->UpdateStatus(resource, ns, next);
    if (updated.ok()) return updated;
    last = updated.status();
    if (!absl::IsAborted(last)) return last;
  }
  return absl::AbortedError(absl::StrCat("status of ", name, " kept changing: ", last.message()));
}

bool HasFinalizer(const value& object, const std::string& finalizer) {
  value list = Finalizers(object);
  for (const value& f : list.as_array()) {
    if (f.is_string() && f.as_string() == finalizer) return true;
  }
  return false;
}

absl::StatusOr<value> AddFinalizer(KubeClient* client, const Resource& resource,
                                   const std::string& ns, const std::string& name,
                                   const std::string& finalizer, int max_attempts) {
  absl::Status last;
  for (int attempt = 0; attempt < max_attempts; ++attempt) {
    auto current = client->Get(resource, ns, name);
    if (!current.ok()) return current.status();
    if (HasFinalizer(*current, finalizer)) return *current;
    bool has_list = current->at("metadata").has_field("finalizers");
    value ops = value::array();
    ops[0] = Op("test", "/metadata/resourceVersion", value::string(ResourceVersionOf(*current)));
    if (has_list) {
      ops[1] = Op("add", "/metadata/finalizers/-", value::string(finalizer));
    } else {
      value list = value::array();
      list[0] = value::string(finalizer);
      ops[1] = Op("add", "/metadata/finalizers", list);
    }
    auto patched = client->Patch(resource, ns, name, PatchType::kJson, ops);
    if (patched.ok()) return patched;
    last = patched.status();
    if (!Retryable(last)) return last;
  }
  return absl::AbortedError(
      absl::StrCat("cannot add finalizer ", finalizer, " to ", name, ": ", last.message()));
}

absl::StatusOr<value> RemoveFinalizer(KubeClient* client, const Resource& resource,
                                      const std::string& ns, const std::string& name,
                                      const std::string& finalizer, int max_attempts) {
  absl::Status last;
  for (int attempt = 0; attempt < max_attempts; ++attempt) {
    auto current = client->Get(resource, ns, name);
    if (absl::IsNotFound(current.status())) return value::null();
    if (!current.ok()) return current.status();
    value list = Finalizers(*current);
    int index = -1;
    for (size_t i = 0; i < list.size(); ++i) {
      if (list.at(i).is_string() && list.at(i).as_string() == finalizer) {
        index = static_cast<int>(i);
        break;
      }
    }
    if (index < 0) return *current;
    std::string path = absl::StrCat("/metadata/finalizers/", index);
    value ops = value::array();
    ops[0] = Op("test", path, value::string(finalizer));
    ops[1] = Op("remove", path, value::null());
    auto patched = client->Patch(resource, ns, name, PatchType::kJson, ops);
    if (patched.ok()) return patched;
    if (absl::IsNotFound(patched.status())) return value::null();
    last = patched.status();
    if (!Retryable(last)) return last;
  }
  return absl::AbortedError(
      absl::StrCat("cannot remove finalizer ", finalizer, " from ", name, ": ", last.message()));
}

value OwnerReference(const value& owner, bool controller) {
  value ref = value::object();
  ref["apiVersion"] = value::string(StringField(owner, "apiVersion"));
  ref["kind"] = value::string(StringField(owner, "kind"));
  ref["name"] = value::string(NameOf(owner));
  ref["uid"] = value::string(UidOf(owner));
  ref["controller"] = value::boolean(controller);
  ref["blockOwnerDeletion"] = value::boolean(controller);
  return ref;
}

}  // namespace pgbranch::kube
