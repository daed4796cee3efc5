#include "cli/kube_api.h"

#include <algorithm>
#include <optional>
#include <set>
#include <variant>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "cli/api_errors.h"
#include "cli/kube_errors.h"
#include "cli/yaml_json.h"
#include "common/status_macros.h"
#include "operator/kube/kube_object.h"
#include "operator/model/field_error.h"
#include "operator/model/json.h"
#include "operator/model/manifest.h"
#include "operator/model/resources.h"

namespace pgbranch::cli {
namespace {

using control::JsonBool;
using control::JsonInt;
using control::JsonString;
using web::json::value;

std::string KindWord(const kube::Resource& r) {
  if (r == kube::kBranches) return "branch";
  if (r == kube::kEndpoints) return "endpoint";
  if (r == kube::kSecrets) return "secret";
  return r.plural;
}

// What the commands rely on: metadata, spec and status are objects.
value Normalized(value obj, bool endpoint) {
  for (const char* k : {"metadata", "spec", "status"}) {
    if (!obj.has_field(k) || !obj.at(k).is_object()) obj[k] = value::object();
  }
  if (endpoint) obj["status"]["routed"] = value::boolean(true);
  if (obj["metadata"].has_field("managedFields")) obj["metadata"].erase("managedFields");
  return obj;
}

bool Deleting(const value& obj) {
  return obj.has_field("metadata") && obj.at("metadata").has_field("deletionTimestamp");
}

// A validation error of local mode's manifest checks, with the field and detail attached the
// way ApiClient attaches them to the local controller's replies.
absl::Status Fielded(const absl::Status& s) {
  return WithApiErrorFields(s, control::ErrorField(s), control::ErrorDetail(s));
}

value Items(const std::vector<value>& items) {
  value arr = value::array();
  for (size_t i = 0; i < items.size(); ++i) arr[i] = items[i];
  value v = value::object();
  v["items"] = arr;
  return v;
}

value Message(const std::string& text) {
  value v = value::object();
  v["message"] = value::string(text);
  return v;
}

// Merges the string map `from`[key] into `to`[key] (labels, annotations).
void MergeMap(const value& from, value* to, const char* key) {
  if (!from.has_field(key) || !from.at(key).is_object()) return;
  if (!to->has_field(key) || !(*to)[key].is_object()) (*to)[key] = value::object();
  for (const auto& [k, v] : from.at(key).as_object()) (*to)[key][k] = v;
}

}  // namespace

KubeApi::KubeApi(std::shared_ptr<kube::KubeClient> client, std::string ns, std::string where)
    : client_(std::move(client)), ns_(std::move(ns)), where_(std::move(where)) {}

absl::Status KubeApi::Error(const absl::Status& s, const std::string& verb, const kube::Resource& r,
                            const std::string& name) const {
  KubeCall call{verb, r.group.empty() ? r.plural : absl::StrCat(r.plural, ".", r.group),
                KindWord(r), name};
  return KubeError(s, call, ns_, where_);
}

absl::StatusOr<value> KubeApi::Call(const std::string& method, const std::string& path,
                                    const std::string& body) const {
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  if (parts.empty() || parts[0] != "v1") return absl::NotFoundError("unknown path " + path);
  parts.erase(parts.begin());
  const std::string collection = parts.empty() ? "" : parts[0];
  const std::string name = parts.size() > 1 ? web::uri::decode(parts[1]) : "";
  const std::string action = parts.size() > 2 ? parts[2] : "";
  const bool get = method == web::http::methods::GET;
  const bool post = method == web::http::methods::POST;
  const bool del = method == web::http::methods::DEL;
  if ((collection == "apply" || collection == "create") && name.empty() && post) {
    return Apply(body, collection == "create");
  }
  if (collection == "branches" || collection == "endpoints") {
    const bool branches = collection == "branches";
    const kube::Resource& r = branches ? kube::kBranches : kube::kEndpoints;
    if (name.empty() && get) return List(r, KindWord(r));
    if (!name.empty() && action.empty() && get) return GetObject(r, KindWord(r), name);
    if (!name.empty() && action.empty() && del) {
      return branches ? DeleteBranch(name) : DeleteEndpoint(name);
    }
    if (branches && action == "reset" && post) return Reset(name);
    if (branches && action == "restore" && post) {
      value b;
      try {
        b = value::parse(body);
      } catch (const std::exception& e) {
        return absl::InvalidArgumentError(absl::StrCat("restore: the request body: ", e.what()));
      }
      return Restore(name, b);
    }
    if (!branches && action == "suspend" && post) {
      return Annotate(name, control::kAnnotationSuspendRequestedAt);
    }
    if (!branches && action == "start" && post) {
      return Annotate(name, control::kAnnotationStartRequestedAt);
    }
  }
  if (collection == "debug") {
    return absl::UnimplementedError(
        "the test clock exists in local mode only (`pgbranch local up --test-clock`)");
  }
  return absl::NotFoundError(absl::StrCat("no ", method, " ", path, " against Kubernetes"));
}

absl::StatusOr<value> KubeApi::List(const kube::Resource& r, const std::string& kind) const {
  absl::StatusOr<kube::ObjectList> list = client_->List(r, ns_);
  if (!list.ok()) return Error(list.status(), "list", r, "");
  std::vector<value> items;
  for (const value& item : list->items) items.push_back(Normalized(item, kind == "endpoint"));
  std::sort(items.begin(), items.end(), [](const value& a, const value& b) {
    return JsonString(a.at("metadata"), "name") < JsonString(b.at("metadata"), "name");
  });
  return Items(items);
}

absl::StatusOr<value> KubeApi::GetObject(const kube::Resource& r, const std::string& kind,
                                         const std::string& name) const {
  absl::StatusOr<value> obj = client_->Get(r, ns_, name);
  if (!obj.ok()) return Error(obj.status(), "get", r, name);
  return Normalized(*obj, kind == "endpoint");
}

absl::StatusOr<value> KubeApi::Apply(const std::string& body, bool create_only) const {
  PGB_ASSIGN_OR_RETURN(std::vector<value> docs, YamlDocumentsToJson(body));
  // What the API server sets is dropped, so that `kubectl get -o yaml` output applies.
  std::string cleaned;
  for (value& doc : docs) {
    if (!doc.is_object()) continue;
    if (doc.has_field("status")) doc.erase("status");
    if (doc.has_field("metadata") && doc.at("metadata").is_object()) {
      for (const char* k : {"uid", "resourceVersion", "generation", "creationTimestamp",
                            "managedFields", "deletionTimestamp", "deletionGracePeriodSeconds",
                            "finalizers", "ownerReferences", "selfLink"}) {
        if (doc["metadata"].has_field(k)) doc["metadata"].erase(k);
      }
    }
    absl::StrAppend(&cleaned, cleaned.empty() ? "" : "\n---\n", doc.serialize());
  }
  // Local mode's validation first: the same messages, and nothing is sent when one fails.
  absl::StatusOr<std::vector<control::Resource>> typed = control::ParseManifests(cleaned);
  if (!typed.ok()) return Fielded(typed.status());
  if (docs.size() != typed->size()) {
    return absl::InvalidArgumentError("the manifests could not be read as one object each");
  }
  struct Item {
    const kube::Resource* resource;
    std::string kind;  // Branch, Endpoint
    std::string name;
    value doc;
    std::optional<value> existing;
  };
  std::vector<Item> items;
  std::set<std::string> new_branches;
  for (size_t i = 0; i < docs.size(); ++i) {
    const bool is_branch = std::holds_alternative<control::Branch>((*typed)[i]);
    Item it{is_branch ? &kube::kBranches : &kube::kEndpoints, is_branch ? "Branch" : "Endpoint",
            JsonString(docs[i].at("metadata"), "name"), docs[i], std::nullopt};
    const std::string doc_ns = JsonString(docs[i].at("metadata"), "namespace");
    if (!doc_ns.empty() && doc_ns != ns_) {
      return Fielded(control::FieldError(
          absl::StatusCode::kInvalidArgument, control::ObjectName(it.kind, it.name),
          "metadata.namespace",
          absl::StrCat("\"", doc_ns, "\" is not the namespace of this command (\"", ns_,
                       "\"); drop metadata.namespace or run with -n ", doc_ns)));
    }
    absl::StatusOr<value> cur = client_->Get(*it.resource, ns_, it.name);
    if (cur.ok()) {
      it.existing = *cur;
    } else if (!absl::IsNotFound(cur.status()) || IsMissingResourceType(cur.status())) {
      return Error(cur.status(), "get", *it.resource, it.name);
    }
    if (create_only && it.existing) {
      const std::string kind = KindWord(*it.resource);
      if (Deleting(*it.existing)) {
        return absl::AlreadyExistsError(absl::StrCat(
            kind, " \"", it.name, "\" is being deleted; create it again once it is gone"));
      }
      return absl::AlreadyExistsError(absl::StrCat(
          kind, " \"", it.name, "\" already exists; `pgbranch apply` changes an existing ", kind));
    }
    if (is_branch && !it.existing) new_branches.insert(it.name);
    items.push_back(std::move(it));
  }
  // Cross-object checks of new objects, as local mode makes them (the operator would only wait).
  auto branch_usable = [&](const std::string& object, const std::string& field,
                           const std::string& branch) -> absl::Status {
    if (new_branches.count(branch)) return absl::OkStatus();
    absl::StatusOr<value> b = client_->Get(kube::kBranches, ns_, branch);
    if (absl::IsNotFound(b.status())) {
      return Fielded(
          control::FieldError(absl::StatusCode::kInvalidArgument, object, field,
                              absl::StrCat("branch \"", branch, "\" does not exist in namespace ",
                                           ns_, "; create it first or pick an existing ",
                                           field == "spec.parent" ? "parent" : "branch")));
    }
    if (!b.ok()) return Error(b.status(), "get", kube::kBranches, branch);
    if (Deleting(*b)) {
      return Fielded(control::FieldError(absl::StatusCode::kInvalidArgument, object, field,
                                         absl::StrCat("branch \"", branch, "\" is being deleted")));
    }
    return absl::OkStatus();
  };
  std::optional<std::vector<value>> endpoints;  // listed once, when needed
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& it = items[i];
    if (it.existing) continue;
    const std::string object = control::ObjectName(it.kind, it.name);
    if (const auto* b = std::get_if<control::Branch>(&(*typed)[i])) {
      if (!b->spec.parent.empty()) {
        PGB_RETURN_IF_ERROR(branch_usable(object, "spec.parent", b->spec.parent));
      }
      continue;
    }
    const auto& e = std::get<control::Endpoint>((*typed)[i]);
    PGB_RETURN_IF_ERROR(branch_usable(object, "spec.branch", e.spec.branch));
    if (e.spec.type != control::EndpointType::kReadWrite) continue;
    if (!endpoints) {
      absl::StatusOr<kube::ObjectList> list = client_->List(kube::kEndpoints, ns_);
      if (!list.ok()) return Error(list.status(), "list", kube::kEndpoints, "");
      endpoints = list->items;
    }
    for (const value& x : *endpoints) {
      value spec = x.has_field("spec") ? x.at("spec") : value::object();
      std::string type = JsonString(spec, "type");
      if (JsonString(spec, "branch") != e.spec.branch || Deleting(x) ||
          !(type.empty() || type == "ReadWrite")) {
        continue;
      }
      const std::string holder = JsonString(x.at("metadata"), "name");
      return Fielded(control::FieldError(
          absl::StatusCode::kFailedPrecondition, object, "spec.type",
          absl::StrCat("branch \"", e.spec.branch, "\" already has a read-write endpoint, \"",
                       holder, "\"; make this one read-only (type: ReadOnly) or delete \"", holder,
                       "\" first"),
          "Conflict"));
    }
  }
  // The writes. A failure takes back what this request created: all or nothing.
  std::vector<std::pair<const kube::Resource*, std::string>> created;
  auto undo = [&](const absl::Status& why) {
    for (const auto& [r, n] : created) (void)client_->Delete(*r, ns_, n);
    return why;
  };
  std::vector<value> out_items;
  value results = value::array();
  for (Item& it : items) {
    value doc = it.doc;
    if (doc.has_field("status")) doc.erase("status");
    std::string action;
    absl::StatusOr<value> written;
    if (!it.existing) {
      value meta = value::object();
      meta["name"] = value::string(it.name);
      meta["namespace"] = value::string(ns_);
      MergeMap(doc.at("metadata"), &meta, "labels");
      MergeMap(doc.at("metadata"), &meta, "annotations");
      doc["metadata"] = meta;
      written = client_->Create(*it.resource, ns_, doc);
      if (!written.ok()) return undo(Error(written.status(), "create", *it.resource, it.name));
      created.emplace_back(it.resource, it.name);
      action = "created";
    } else {
      // Update: the spec as written; labels and annotations added to the object's own (other
      // tools keep theirs). A conflicting write in between: read again and retry.
      for (int attempt = 0;; ++attempt) {
        value obj = *it.existing;
        obj["spec"] = doc.has_field("spec") ? doc.at("spec") : value::object();
        MergeMap(doc.at("metadata"), &obj["metadata"], "labels");
        MergeMap(doc.at("metadata"), &obj["metadata"], "annotations");
        written = client_->Update(*it.resource, ns_, obj);
        if (!absl::IsAborted(written.status()) || attempt == 3) break;
        absl::StatusOr<value> cur = client_->Get(*it.resource, ns_, it.name);
        if (!cur.ok()) return undo(Error(cur.status(), "get", *it.resource, it.name));
        it.existing = *cur;
      }
      if (!written.ok()) return undo(Error(written.status(), "update", *it.resource, it.name));
      action = kube::ResourceVersionOf(*written) == kube::ResourceVersionOf(*it.existing)
                   ? "unchanged"
                   : "configured";
    }
    value r = value::object();
    r["kind"] = value::string(it.kind);
    r["name"] = value::string(it.name);
    r["action"] = value::string(action);
    results[results.size()] = r;
    out_items.push_back(Normalized(*written, it.kind == "Endpoint"));
  }
  value v = Items(out_items);
  v["results"] = results;
  return v;
}

absl::StatusOr<value> KubeApi::DeleteBranch(const std::string& name) const {
  PGB_ASSIGN_OR_RETURN(value b, GetObject(kube::kBranches, "branch", name));
  // Refusals local mode makes, before anything changes (the admission policy refuses a
  // protected branch too; the operator would keep a branch with children in Deleting).
  if (JsonBool(b.at("spec"), "protected")) {
    return absl::FailedPreconditionError(absl::StrCat(
        "branch \"", name, "\" is protected; unprotect it first (`pgbranch branch update ", name,
        " --no-protected`)"));
  }
  absl::StatusOr<kube::ObjectList> list = client_->List(kube::kBranches, ns_);
  if (!list.ok()) return Error(list.status(), "list", kube::kBranches, "");
  std::vector<std::string> children;
  for (const value& c : list->items) {
    if (c.has_field("spec") && JsonString(c.at("spec"), "parent") == name) {
      children.push_back(kube::NameOf(c));
    }
  }
  if (!children.empty()) {
    std::sort(children.begin(), children.end());
    return absl::FailedPreconditionError(
        absl::StrCat("branch \"", name, "\" has child branches: ", absl::StrJoin(children, ", "),
                     "; delete them first"));
  }
  absl::Status s = client_->Delete(kube::kBranches, ns_, name);
  if (!s.ok()) return Error(s, "delete", kube::kBranches, name);
  return Message("deletion requested");
}

absl::StatusOr<value> KubeApi::DeleteEndpoint(const std::string& name) const {
  absl::Status s = client_->Delete(kube::kEndpoints, ns_, name);
  if (!s.ok()) return Error(s, "delete", kube::kEndpoints, name);
  return Message("deletion requested");
}

absl::StatusOr<value> KubeApi::Reset(const std::string& name) const {
  for (int attempt = 0;; ++attempt) {
    PGB_ASSIGN_OR_RETURN(value b, GetObject(kube::kBranches, "branch", name));
    const value& spec = b.at("spec");
    if (JsonString(spec, "parent").empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("branch \"", name, "\" is a root branch: only a child can be reset"));
    }
    if (JsonBool(spec, "protected")) {
      return absl::FailedPreconditionError(
          absl::StrCat("branch \"", name,
                       "\" is protected and cannot be reset; unprotect it first (`pgbranch "
                       "branch update ",
                       name, " --no-protected`)"));
    }
    if (Deleting(b)) {
      return absl::FailedPreconditionError(absl::StrCat("branch \"", name, "\" is being deleted"));
    }
    b["spec"]["resetGeneration"] = value::number(JsonInt(spec, "resetGeneration") + 1);
    if (b.has_field("status")) b.erase("status");
    absl::StatusOr<value> written = client_->Update(kube::kBranches, ns_, b);
    if (absl::IsAborted(written.status()) && attempt < 3) continue;
    if (!written.ok()) return Error(written.status(), "update", kube::kBranches, name);
    return Normalized(*written, false);
  }
}

absl::StatusOr<value> KubeApi::Restore(const std::string& name, const value& body) const {
  const std::string to = JsonString(body, "to");
  const std::string keep = JsonString(body, "keepCurrentAs");
  if (to.empty() || keep.empty()) {
    return absl::InvalidArgumentError(
        "a restore needs \"to\" (the restore point) and "
        "\"keepCurrentAs\"");
  }
  PGB_ASSIGN_OR_RETURN(value b, GetObject(kube::kBranches, "branch", name));
  if (Deleting(b)) {
    return absl::FailedPreconditionError(absl::StrCat("branch \"", name, "\" is being deleted"));
  }
  if (JsonBool(b.at("spec"), "protected") && !JsonBool(body, "allowProtected")) {
    return absl::FailedPreconditionError(
        absl::StrCat("branch \"", name,
                     "\" is protected: restoring it discards its changes since the restore "
                     "point and needs --allow-protected"));
  }
  const value st = b.has_field("status") ? b.at("status") : value::object();
  if (JsonString(st, "timelineID").empty()) {
    return absl::FailedPreconditionError(absl::StrCat("branch \"", name, "\" is not ready"));
  }
  if (JsonInt(b.at("spec"), "resetGeneration") > JsonInt(st, "observedResetGeneration")) {
    return absl::FailedPreconditionError(
        absl::StrCat("a reset or restore of branch \"", name, "\" is in progress"));
  }
  absl::StatusOr<value> rp = client_->Get(kube::kBranches, ns_, to);
  if (absl::IsNotFound(rp.status())) {
    return absl::NotFoundError(absl::StrCat("restore point \"", to, "\" does not exist"));
  }
  if (!rp.ok()) return Error(rp.status(), "get", kube::kBranches, to);
  const std::string rp_parent = JsonString(rp->at("spec"), "parent");
  if (rp_parent != name) {
    return absl::FailedPreconditionError(absl::StrCat(
        "branch \"", to, "\" is not a restore point of \"", name,
        "\": a restore point is a child branch of the branch it restores (its parent is ",
        rp_parent.empty() ? "none" : "\"" + rp_parent + "\"", ")"));
  }
  if (Deleting(*rp) || !rp->has_field("status") ||
      JsonString(rp->at("status"), "timelineID").empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("restore point \"", to, "\" is being deleted or not ready"));
  }
  // The branch that keeps NAME's current state: where NAME is in the tree, made by the restore.
  value kspec = value::object();
  if (const std::string parent = JsonString(b.at("spec"), "parent"); !parent.empty()) {
    kspec["parent"] = value::string(parent);
  }
  kspec["noExpiry"] = value::boolean(true);
  value kept = value::object();
  kept["apiVersion"] = value::string(control::kApiVersion);
  kept["kind"] = value::string("Branch");
  kept["metadata"] = value::object();
  kept["metadata"]["name"] = value::string(keep);
  kept["metadata"]["namespace"] = value::string(ns_);
  kept["metadata"]["annotations"] = value::object();
  kept["metadata"]["annotations"][control::kAnnotationRestoreOf] = value::string(name);
  kept["spec"] = kspec;
  absl::StatusOr<value> created = client_->Create(kube::kBranches, ns_, kept);
  if (absl::IsAlreadyExists(created.status())) {
    return absl::AlreadyExistsError(absl::StrCat(
        "branch \"", keep,
        "\" already exists; name the branch that keeps the current state with --keep-current-as"));
  }
  if (!created.ok()) return Error(created.status(), "create", kube::kBranches, keep);
  for (int attempt = 0;; ++attempt) {
    const int64_t gen = JsonInt(b.at("spec"), "resetGeneration") + 1;
    b["spec"]["resetGeneration"] = value::number(gen);
    if (!b.at("metadata").has_field("annotations")) b["metadata"]["annotations"] = value::object();
    b["metadata"]["annotations"][control::kAnnotationRestoreTo] = value::string(to);
    b["metadata"]["annotations"][control::kAnnotationRestoreKeepAs] = value::string(keep);
    b["metadata"]["annotations"][control::kAnnotationRestoreGeneration] =
        value::string(std::to_string(gen));
    if (b.has_field("status")) b.erase("status");
    absl::StatusOr<value> written = client_->Update(kube::kBranches, ns_, b);
    if (absl::IsAborted(written.status()) && attempt < 3) {
      absl::StatusOr<value> again = client_->Get(kube::kBranches, ns_, name);
      if (again.ok()) {
        b = *again;
        continue;
      }
    }
    if (!written.ok()) {
      // Nothing half-made: the keeping branch goes again (its timeline was never made).
      (void)client_->Delete(kube::kBranches, ns_, keep);
      return Error(written.status(), "update", kube::kBranches, name);
    }
    return Normalized(*written, false);
  }
}

absl::StatusOr<value> KubeApi::Annotate(const std::string& name,
                                        const std::string& annotation) const {
  value patch = value::object();
  patch["metadata"] = value::object();
  patch["metadata"]["annotations"] = value::object();
  patch["metadata"]["annotations"][annotation] = value::string(control::Rfc3339(absl::Now()));
  absl::StatusOr<value> e =
      client_->Patch(kube::kEndpoints, ns_, name, kube::PatchType::kMerge, patch, "pgbranch-cli");
  if (!e.ok()) return Error(e.status(), "patch", kube::kEndpoints, name);
  if (Deleting(*e)) {
    return absl::FailedPreconditionError(absl::StrCat("endpoint \"", name, "\" is being deleted"));
  }
  return Normalized(*e, true);
}

absl::StatusOr<std::map<std::string, std::string>> KubeApi::SecretData(
    const std::string& name) const {
  absl::StatusOr<value> s = client_->Get(kube::kSecrets, ns_, name);
  if (!s.ok()) return Error(s.status(), "get", kube::kSecrets, name);
  std::map<std::string, std::string> out;
  if (s->has_field("data") && s->at("data").is_object()) {
    for (const auto& [k, v] : s->at("data").as_object()) {
      if (!v.is_string()) continue;
      try {
        std::vector<unsigned char> bytes = utility::conversions::from_base64(v.as_string());
        out[k] = std::string(bytes.begin(), bytes.end());
      } catch (const std::exception&) {
        return absl::DataLossError(
            absl::StrCat("secret \"", name, "\": data.", k, " is not base64"));
      }
    }
  }
  // stringData is write-only on a real server; a fake one may keep it.
  if (s->has_field("stringData") && s->at("stringData").is_object()) {
    for (const auto& [k, v] : s->at("stringData").as_object()) {
      if (v.is_string() && !out.count(k)) out[k] = v.as_string();
    }
  }
  return out;
}

}  // namespace pgbranch::cli
