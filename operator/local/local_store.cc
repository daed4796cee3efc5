#include "operator/local/local_store.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "operator/control/start_point.h"
#include "operator/model/duration.h"
#include "operator/model/field_error.h"
#include "operator/model/json.h"
#include "operator/model/manifest.h"

namespace pgbranch::cli {
namespace {

using control::Branch;
using control::Endpoint;
using control::Kind;
using control::Resource;

std::string NewUid() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
  uint64_t a = gen(), b = gen();
  return absl::StrFormat("%08x-%04x-4%03x-%04x-%012x", a >> 32, (a >> 16) & 0xffff, a & 0xfff,
                         (b >> 48 & 0x3fff) | 0x8000, b & 0xffffffffffffULL);
}

std::string SpecJson(const web::json::value& object) { return object.at("spec").serialize(); }

absl::Status WriteFileAtomically(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", strerror(errno)));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", strerror(errno)));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return absl::InternalError(absl::StrCat("cannot sync ", tmp, ": ", strerror(errno)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

bool PortFree(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

// `create` of a name that is taken (or still being deleted).
absl::Status AlreadyExists(const std::string& kind, const std::string& name, bool deleting) {
  const std::string message = absl::StrCat(
      kind, " \"", name, "\"",
      deleting ? " is being deleted; create it again once it is gone"
               : absl::StrCat(" already exists; `pgbranch apply` changes an existing ", kind));
  return control::MakeError(absl::StatusCode::kAlreadyExists, message, "metadata.name", message,
                            "AlreadyExists");
}

}  // namespace

LocalStore::LocalStore(std::string path, Clock* clock) : path_(std::move(path)), clock_(clock) {}

void LocalStore::SetChangeListener(ChangeFn fn) {
  std::lock_guard<std::mutex> l(mu_);
  on_change_ = std::move(fn);
}

void LocalStore::Notify(Kind kind, const std::string& ns, const std::string& name) {
  ChangeFn fn;
  {
    std::lock_guard<std::mutex> l(mu_);
    fn = on_change_;
  }
  if (fn) fn(kind, ns, name);
}

absl::Status LocalStore::Load() {
  if (path_.empty()) return absl::OkStatus();
  std::ifstream in(path_);
  if (!in) return absl::OkStatus();  // first start
  std::stringstream buf;
  buf << in.rdbuf();
  web::json::value doc;
  try {
    doc = web::json::value::parse(buf.str());
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat(path_, " is not valid JSON (", e.what(),
                                            "); move it away to start with no objects"));
  }
  std::lock_guard<std::mutex> l(mu_);
  routes_version_ = std::max<int64_t>(1, control::JsonInt(doc, "routesVersion"));
  next_uid_ = control::JsonInt(doc, "nextUid") + 1;
  auto items = [&](const char* key) {
    return doc.has_field(key) && doc.at(key).is_array() ? doc.at(key).as_array()
                                                        : web::json::value::array().as_array();
  };
  for (const auto& v : items("branches")) {
    auto b = control::BranchFromJson(v);
    if (!b.ok()) return absl::DataLossError(absl::StrCat(path_, ": ", b.status().message()));
    branches_[{b->metadata.namespace_, b->metadata.name}] = *b;
  }
  for (const auto& v : items("endpoints")) {
    auto e = control::EndpointFromJson(v);
    if (!e.ok()) return absl::DataLossError(absl::StrCat(path_, ": ", e.status().message()));
    endpoints_[{e->metadata.namespace_, e->metadata.name}] = *e;
  }
  return absl::OkStatus();
}

absl::Status LocalStore::SaveLocked() {
  if (path_.empty()) return absl::OkStatus();
  web::json::value doc = web::json::value::object();
  doc["routesVersion"] = web::json::value::number(routes_version_);
  doc["nextUid"] = web::json::value::number(next_uid_);
  web::json::value bs = web::json::value::array(), es = web::json::value::array();
  size_t i = 0;
  for (const auto& [k, b] : branches_) bs[i++] = control::ToJson(b);
  i = 0;
  for (const auto& [k, e] : endpoints_) es[i++] = control::ToJson(e);
  doc["branches"] = bs;
  doc["endpoints"] = es;
  return WriteFileAtomically(path_, doc.serialize());
}

std::vector<std::string> LocalStore::ChildrenLocked(const std::string& ns,
                                                    const std::string& name) const {
  std::vector<std::string> out;
  for (const auto& [k, b] : branches_) {
    if (k.first == ns && b.spec.parent == name) out.push_back(k.second);
  }
  return out;
}

int LocalStore::AllocatePortLocked() const {
  std::set<int> taken;
  for (const auto& [k, e] : endpoints_) taken.insert(e.status.port);
  // Ports the kernel hands out for port 0 are ephemeral; try those until one is free for us.
  for (int attempt = 0; attempt < 100; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    ::close(fd);
    if (port > 0 && !taken.count(port) && PortFree(port)) return port;
  }
  return 0;
}

void LocalStore::SetTimelineService(control::TimelineService* timelines) {
  std::lock_guard<std::mutex> l(mu_);
  timelines_ = timelines;
}

const char* LocalStore::ActionName(Action a) {
  switch (a) {
    case Action::kCreated:
      return "created";
    case Action::kConfigured:
      return "configured";
    case Action::kUnchanged:
      return "unchanged";
  }
  return "unchanged";
}

absl::StatusOr<std::vector<LocalStore::Applied>> LocalStore::Apply(const std::vector<Resource>& rs,
                                                                   ApplyOptions options) {
  // 1. Every rule that needs only the objects, changing nothing: a request that is refused
  //    anyway never waits for the pageserver.
  {
    std::lock_guard<std::mutex> l(mu_);
    auto saved_b = branches_;
    auto saved_e = endpoints_;
    auto saved_v = routes_version_;
    auto dry = ApplyAllLocked(rs, options);
    branches_ = std::move(saved_b);
    endpoints_ = std::move(saved_e);
    routes_version_ = saved_v;
    if (!dry.ok()) return dry.status();
  }
  // 2. Start points against the pageserver's history: a network call, so outside the lock.
  if (options.cross_object_checks) PGB_RETURN_IF_ERROR(CheckHistory(rs));
  // 3. For real. The rules are checked again: another request may have come in between.
  std::vector<Applied> out;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto saved_b = branches_;
    auto saved_e = endpoints_;
    auto saved_v = routes_version_;
    auto applied = ApplyAllLocked(rs, options);
    absl::Status s = applied.ok() ? SaveLocked() : applied.status();
    if (!s.ok()) {
      branches_ = std::move(saved_b);
      endpoints_ = std::move(saved_e);
      routes_version_ = saved_v;
      return s;
    }
    out = std::move(*applied);
  }
  for (const Applied& a : out) {
    if (const auto* b = std::get_if<Branch>(&a.object)) {
      Notify(Kind::kBranch, b->metadata.namespace_, b->metadata.name);
    } else {
      const auto& e = std::get<Endpoint>(a.object);
      Notify(Kind::kEndpoint, e.metadata.namespace_, e.metadata.name);
    }
  }
  return out;
}

absl::StatusOr<std::vector<LocalStore::Applied>> LocalStore::ApplyAllLocked(
    const std::vector<Resource>& rs, const ApplyOptions& options) {
  Request req;
  req.options = options;
  std::set<std::pair<int, Key>> seen;
  for (const Resource& r : rs) {
    const bool is_branch = std::holds_alternative<Branch>(r);
    const control::ObjectMeta& m =
        is_branch ? std::get<Branch>(r).metadata : std::get<Endpoint>(r).metadata;
    if (!seen.insert({is_branch ? 0 : 1, {m.namespace_, m.name}}).second) {
      return control::FieldError(absl::StatusCode::kInvalidArgument,
                                 control::ObjectName(is_branch ? "Branch" : "Endpoint", m.name),
                                 "metadata.name",
                                 "appears twice in one request; give each object once");
    }
    if (is_branch) req.branches.insert(m.name);
  }
  std::vector<Applied> out;
  for (const Resource& r : rs) {
    absl::StatusOr<Applied> a = std::holds_alternative<Branch>(r)
                                    ? ApplyBranchLocked(std::get<Branch>(r), req)
                                    : ApplyEndpointLocked(std::get<Endpoint>(r), req);
    if (!a.ok()) return a.status();
    out.push_back(std::move(*a));
  }
  return out;
}

absl::Status LocalStore::CheckHistory(const std::vector<Resource>& rs) {
  control::TimelineService* timelines;
  {
    std::lock_guard<std::mutex> l(mu_);
    timelines = timelines_;
  }
  if (timelines == nullptr) return absl::OkStatus();
  const absl::Time now = absl::FromUnixMicros(clock_->NowMicros());
  for (const Resource& r : rs) {
    control::StartPoint p;
    std::string ns, source;
    if (const auto* b = std::get_if<Branch>(&r)) {
      if (GetBranch(b->metadata.namespace_, b->metadata.name)) continue;  // immutable once made
      p.object = control::ObjectName("Branch", b->metadata.name);
      p.lsn = b->spec.lsn;
      p.at = b->spec.timestamp;
      ns = b->metadata.namespace_;
      source = b->spec.parent;
    } else {
      const auto& e = std::get<Endpoint>(r);
      if (GetEndpoint(e.metadata.namespace_, e.metadata.name)) continue;
      p.object = control::ObjectName("Endpoint", e.metadata.name);
      p.lsn = e.spec.lsn;
      p.at = e.spec.timestamp;
      ns = e.metadata.namespace_;
      source = e.spec.branch;
    }
    if ((!p.lsn || *p.lsn == 0) && !p.at) continue;
    // A source made by this request, or not at the pageserver yet, has no history to check
    // here: its reconciler checks the start point once it has.
    std::optional<Branch> src = GetBranch(ns, source);
    if (!src || src->status.timeline_id.empty()) continue;
    p.source = source;
    p.tenant_id = src->status.tenant_id;
    p.timeline_id = src->status.timeline_id;
    absl::Status s = control::CheckStartPoint(timelines, p, now);
    if (s.ok() || !control::ErrorField(s).empty()) {
      if (!s.ok()) return s;
      continue;
    }
    return control::ObjectError(
        absl::IsUnavailable(s) ? absl::StatusCode::kUnavailable : absl::StatusCode::kInternal,
        absl::StrCat("cannot check the start point of ", p.object, " on ", source, ": ",
                     s.message(), "; nothing was changed, try again"));
  }
  return absl::OkStatus();
}

absl::StatusOr<LocalStore::Applied> LocalStore::ApplyBranchLocked(Branch b, const Request& req) {
  const Key key{b.metadata.namespace_, b.metadata.name};
  auto it = branches_.find(key);
  const std::string what = control::ObjectName("Branch", b.metadata.name);
  const absl::Time now = absl::FromUnixMicros(clock_->NowMicros());
  auto invalid = [&](const char* field, const std::string& detail) {
    return control::FieldError(absl::StatusCode::kInvalidArgument, what, field, detail);
  };
  if (it != branches_.end() && req.options.create_only) {
    return AlreadyExists("branch", b.metadata.name,
                         it->second.metadata.deletion_timestamp.has_value());
  }
  // An expiry in the past would delete the branch at once.
  auto check_expiry = [&](absl::Time created) -> absl::Status {
    if (b.spec.expire_time && *b.spec.expire_time <= now) {
      return invalid("spec.expireTime",
                     absl::StrCat(control::Rfc3339Seconds(*b.spec.expire_time),
                                  " is not in the future (it is now ", control::Rfc3339Seconds(now),
                                  "); pick a later time, or give a ttl"));
    }
    if (b.spec.ttl && created + *b.spec.ttl <= now) {
      return invalid("spec.ttl",
                     absl::StrCat("a ttl of ", control::DurationToString(*b.spec.ttl),
                                  " from the branch's creation (", control::Rfc3339Seconds(created),
                                  ") has already passed; give a longer ttl"));
    }
    return absl::OkStatus();
  };
  if (it == branches_.end()) {
    if (req.options.cross_object_checks && !b.spec.parent.empty() &&
        !req.branches.count(b.spec.parent)) {
      auto parent = branches_.find({b.metadata.namespace_, b.spec.parent});
      if (parent == branches_.end()) {
        return invalid("spec.parent", absl::StrCat("branch \"", b.spec.parent,
                                                   "\" does not exist; create it first or "
                                                   "pick an existing parent"));
      }
      if (parent->second.metadata.deletion_timestamp) {
        return invalid("spec.parent",
                       absl::StrCat("branch \"", b.spec.parent, "\" is being deleted"));
      }
    }
    if (req.options.cross_object_checks) PGB_RETURN_IF_ERROR(check_expiry(now));
    b.metadata.uid = NewUid();
    b.metadata.generation = 1;
    b.metadata.creation_timestamp = now;
    b.status = {};
    b.status.phase = control::kPhasePending;
    branches_[key] = b;
    return Applied{b, Action::kCreated};
  }
  Branch& cur = it->second;
  if (cur.metadata.deletion_timestamp) {
    return control::FieldError(absl::StatusCode::kFailedPrecondition, "", "",
                               absl::StrCat("branch \"", b.metadata.name,
                                            "\" is being deleted; apply it again once it is gone"),
                               "Conflict");
  }
  if (b.spec.parent != cur.spec.parent) {
    return invalid("spec.parent", absl::StrCat("is immutable (",
                                               cur.spec.parent.empty() ? "none" : cur.spec.parent,
                                               "); create a new branch instead"));
  }
  if (b.spec.lsn != cur.spec.lsn || b.spec.timestamp != cur.spec.timestamp) {
    return invalid(b.spec.timestamp != cur.spec.timestamp ? "spec.timestamp" : "spec.lsn",
                   "the start point (spec.lsn, spec.timestamp) is immutable; create a new branch");
  }
  if (b.spec.reset_generation < cur.spec.reset_generation) {
    return invalid("spec.resetGeneration",
                   absl::StrCat("cannot go down (it is ", cur.spec.reset_generation, ")"));
  }
  if (b.spec.reset_generation > cur.spec.reset_generation && cur.spec.protected_ &&
      b.spec.protected_) {
    return control::FieldError(absl::StatusCode::kFailedPrecondition, what, "spec.resetGeneration",
                               "the branch is protected and cannot be reset; set protected: "
                               "false first",
                               "Conflict");
  }
  const bool spec_changed = SpecJson(control::ToJson(b)) != SpecJson(control::ToJson(cur));
  if (spec_changed && req.options.cross_object_checks &&
      (b.spec.expire_time != cur.spec.expire_time || b.spec.ttl != cur.spec.ttl)) {
    PGB_RETURN_IF_ERROR(check_expiry(cur.metadata.creation_timestamp));
  }
  const bool meta_changed = cur.metadata.labels != b.metadata.labels ||
                            cur.metadata.annotations != b.metadata.annotations;
  if (spec_changed) {
    cur.spec = b.spec;
    ++cur.metadata.generation;
  }
  cur.metadata.labels = b.metadata.labels;
  cur.metadata.annotations = b.metadata.annotations;
  return Applied{cur, spec_changed || meta_changed ? Action::kConfigured : Action::kUnchanged};
}

absl::StatusOr<LocalStore::Applied> LocalStore::ApplyEndpointLocked(Endpoint e,
                                                                    const Request& req) {
  const Key key{e.metadata.namespace_, e.metadata.name};
  auto it = endpoints_.find(key);
  const std::string what = control::ObjectName("Endpoint", e.metadata.name);
  if (it != endpoints_.end() && req.options.create_only) {
    return AlreadyExists("endpoint", e.metadata.name,
                         it->second.metadata.deletion_timestamp.has_value());
  }
  if (it == endpoints_.end()) {
    if (req.options.cross_object_checks) {
      // The branch: stored (and not going away) or created by the same request.
      auto branch = branches_.find({e.metadata.namespace_, e.spec.branch});
      if (branch == branches_.end() && !req.branches.count(e.spec.branch)) {
        return control::FieldError(
            absl::StatusCode::kInvalidArgument, what, "spec.branch",
            absl::StrCat("branch \"", e.spec.branch,
                         "\" does not exist; create it first or pick an existing branch"));
      }
      if (branch != branches_.end() && branch->second.metadata.deletion_timestamp) {
        return control::FieldError(absl::StatusCode::kInvalidArgument, what, "spec.branch",
                                   absl::StrCat("branch \"", e.spec.branch, "\" is being deleted"));
      }
      // One writer per branch: two would fence each other in turn.
      if (e.spec.type == control::EndpointType::kReadWrite) {
        for (const auto& [k, x] : endpoints_) {
          if (k.first != e.metadata.namespace_ || x.spec.branch != e.spec.branch ||
              x.spec.type != control::EndpointType::kReadWrite || x.metadata.deletion_timestamp) {
            continue;
          }
          return control::FieldError(
              absl::StatusCode::kFailedPrecondition, what, "spec.type",
              absl::StrCat("branch \"", e.spec.branch, "\" already has a read-write endpoint, \"",
                           k.second, "\"; make this one read-only (type: ReadOnly) or delete \"",
                           k.second, "\" first"),
              "Conflict");
        }
      }
    }
    e.metadata.uid = NewUid();
    e.metadata.generation = 1;
    e.metadata.creation_timestamp = absl::FromUnixMicros(clock_->NowMicros());
    e.status = {};
    e.status.phase = control::kPhasePending;
    e.status.host = "127.0.0.1";
    e.status.port = AllocatePortLocked();
    if (e.status.port == 0) {
      return control::ObjectError(absl::StatusCode::kResourceExhausted,
                                  "no free loopback port left for a new endpoint");
    }
    ++routes_version_;
    endpoints_[key] = e;
    return Applied{e, Action::kCreated};
  }
  Endpoint& cur = it->second;
  if (cur.metadata.deletion_timestamp) {
    return control::FieldError(absl::StatusCode::kFailedPrecondition, "", "",
                               absl::StrCat("endpoint \"", e.metadata.name,
                                            "\" is being deleted; apply it again once it is gone"),
                               "Conflict");
  }
  if (e.spec.branch != cur.spec.branch || e.spec.type != cur.spec.type) {
    return control::FieldError(
        absl::StatusCode::kInvalidArgument, what,
        e.spec.branch != cur.spec.branch ? "spec.branch" : "spec.type",
        "spec.branch and spec.type are immutable; delete the endpoint and create it again");
  }
  // Suspend/start requests are the API's, not the manifest's: an apply keeps them unless it
  // names them itself.
  for (const char* a :
       {control::kAnnotationSuspendRequestedAt, control::kAnnotationStartRequestedAt}) {
    auto have = cur.metadata.annotations.find(a);
    if (have != cur.metadata.annotations.end()) e.metadata.annotations.try_emplace(a, have->second);
  }
  const bool spec_changed = SpecJson(control::ToJson(e)) != SpecJson(control::ToJson(cur));
  const bool meta_changed = cur.metadata.labels != e.metadata.labels ||
                            cur.metadata.annotations != e.metadata.annotations;
  if (spec_changed) {
    cur.spec = e.spec;
    ++cur.metadata.generation;
  }
  cur.metadata.labels = e.metadata.labels;
  cur.metadata.annotations = e.metadata.annotations;
  return Applied{cur, spec_changed || meta_changed ? Action::kConfigured : Action::kUnchanged};
}

absl::Status LocalStore::UserDeleteBranch(const std::string& ns, const std::string& name) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = branches_.find({ns, name});
    if (it == branches_.end()) {
      return absl::NotFoundError(absl::StrCat("branch \"", name, "\" does not exist"));
    }
    if (it->second.spec.protected_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "branch \"", name, "\" is protected; unprotect it first (protected: false)"));
    }
    std::vector<std::string> children = ChildrenLocked(ns, name);
    if (!children.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("branch \"", name, "\" has child branches: ", absl::StrJoin(children, ", "),
                       "; delete them first"));
    }
    // It keeps the state a branch was restored from: that branch's data is built on it.
    for (const auto& [k, o] : branches_) {
      if (k.first == ns && k.second != name && !it->second.status.timeline_id.empty() &&
          o.status.parent_timeline_id == it->second.status.timeline_id && o.spec.parent != name) {
        return absl::FailedPreconditionError(
            absl::StrCat("branch \"", name, "\" keeps the state of \"", k.second,
                         "\" before it was restored, and the restored data of \"", k.second,
                         "\" is built on it: it can be deleted only after \"", k.second, "\""));
      }
    }
    if (!it->second.metadata.deletion_timestamp) {
      it->second.metadata.deletion_timestamp = absl::FromUnixMicros(clock_->NowMicros());
      PGB_RETURN_IF_ERROR(SaveLocked());
    }
  }
  Notify(Kind::kBranch, ns, name);
  return absl::OkStatus();
}

absl::Status LocalStore::UserDeleteEndpoint(const std::string& ns, const std::string& name) {
  PGB_RETURN_IF_ERROR(RequestEndpointDeletion(ns, name));
  Notify(Kind::kEndpoint, ns, name);
  return absl::OkStatus();
}

absl::StatusOr<Endpoint> LocalStore::SetRequestAnnotation(const std::string& ns,
                                                          const std::string& name,
                                                          const char* annotation) {
  Endpoint out;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = endpoints_.find({ns, name});
    if (it == endpoints_.end()) {
      return absl::NotFoundError(absl::StrCat("endpoint \"", name, "\" does not exist"));
    }
    if (it->second.metadata.deletion_timestamp) {
      return control::ObjectError(absl::StatusCode::kFailedPrecondition,
                                  absl::StrCat("endpoint \"", name, "\" is being deleted"));
    }
    it->second.metadata.annotations[annotation] =
        control::Rfc3339(absl::FromUnixMicros(clock_->NowMicros()));
    PGB_RETURN_IF_ERROR(SaveLocked());
    out = it->second;
  }
  Notify(Kind::kEndpoint, ns, name);
  return out;
}

absl::StatusOr<Endpoint> LocalStore::RequestSuspend(const std::string& ns,
                                                    const std::string& name) {
  return SetRequestAnnotation(ns, name, control::kAnnotationSuspendRequestedAt);
}

absl::StatusOr<Endpoint> LocalStore::RequestStart(const std::string& ns, const std::string& name) {
  return SetRequestAnnotation(ns, name, control::kAnnotationStartRequestedAt);
}

absl::StatusOr<Branch> LocalStore::RequestReset(const std::string& ns, const std::string& name) {
  Branch out;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = branches_.find({ns, name});
    if (it == branches_.end()) {
      return absl::NotFoundError(absl::StrCat("branch \"", name, "\" does not exist"));
    }
    Branch& b = it->second;
    if (b.spec.parent.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("branch \"", name, "\" is a root branch: only a child can be reset"));
    }
    if (b.spec.protected_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "branch \"", name, "\" is protected and cannot be reset; unprotect it first"));
    }
    // After a restore of the parent this branch's data hangs off the parent's previous state:
    // a reset would bring that state, not the parent's.
    if (auto p = branches_.find({ns, b.spec.parent});
        p != branches_.end() && !b.status.parent_timeline_id.empty() &&
        b.status.parent_timeline_id != p->second.status.timeline_id) {
      return absl::FailedPreconditionError(absl::StrCat(
          "branch \"", name, "\" was made from a state of \"", b.spec.parent,
          "\" that was replaced by `branch restore` since; delete it and create it again"));
    }
    if (b.metadata.deletion_timestamp) {
      return absl::FailedPreconditionError(absl::StrCat("branch \"", name, "\" is being deleted"));
    }
    ++b.spec.reset_generation;
    ++b.metadata.generation;
    PGB_RETURN_IF_ERROR(SaveLocked());
    out = b;
  }
  Notify(Kind::kBranch, ns, name);
  return out;
}

absl::StatusOr<Branch> LocalStore::RequestRestore(const std::string& ns, const RestoreRequest& r) {
  Branch out;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = branches_.find({ns, r.parent});
    if (it == branches_.end()) {
      return absl::NotFoundError(absl::StrCat("branch \"", r.parent, "\" does not exist"));
    }
    Branch& b = it->second;
    if (b.metadata.deletion_timestamp) {
      return absl::FailedPreconditionError(
          absl::StrCat("branch \"", r.parent, "\" is being deleted"));
    }
    if (b.spec.protected_ && !r.allow_protected) {
      return absl::FailedPreconditionError(
          absl::StrCat("branch \"", r.parent,
                       "\" is protected: restoring it discards its changes since the restore "
                       "point and needs --allow-protected"));
    }
    if (b.status.timeline_id.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("branch \"", r.parent, "\" is not ready"));
    }
    if (b.spec.reset_generation > b.status.observed_reset_generation) {
      return absl::FailedPreconditionError(
          absl::StrCat("a reset or restore of branch \"", r.parent, "\" is in progress"));
    }
    auto rp = branches_.find({ns, r.restore_point});
    if (rp == branches_.end()) {
      return absl::NotFoundError(
          absl::StrCat("restore point \"", r.restore_point, "\" does not exist"));
    }
    if (rp->second.spec.parent != r.parent) {
      return absl::FailedPreconditionError(absl::StrCat(
          "branch \"", r.restore_point, "\" is not a restore point of \"", r.parent,
          "\": a restore point is a child branch of the branch it restores (its parent is ",
          rp->second.spec.parent.empty() ? "none" : "\"" + rp->second.spec.parent + "\"", ")"));
    }
    if (rp->second.metadata.deletion_timestamp || rp->second.status.timeline_id.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("restore point \"", r.restore_point, "\" is being deleted or not ready"));
    }
    PGB_RETURN_IF_ERROR(control::ValidateName("branch", r.keep_as));
    if (branches_.count({ns, r.keep_as})) {
      return absl::AlreadyExistsError(
          absl::StrCat("branch \"", r.keep_as,
                       "\" already exists; name the branch that keeps the current "
                       "state with --keep-current-as"));
    }
    const absl::Time now = absl::FromUnixMicros(clock_->NowMicros());
    Branch keep;
    keep.metadata.name = r.keep_as;
    keep.metadata.namespace_ = ns;
    keep.metadata.uid = NewUid();
    keep.metadata.generation = 1;
    keep.metadata.creation_timestamp = now;
    keep.metadata.annotations[control::kAnnotationRestoreOf] = r.parent;
    keep.spec.parent = b.spec.parent;  // the previous state's place in the tree
    keep.spec.no_expiry = true;
    keep.status.phase = control::kPhasePending;
    branches_[{ns, r.keep_as}] = keep;
    ++b.spec.reset_generation;
    ++b.metadata.generation;
    b.metadata.annotations[control::kAnnotationRestoreTo] = r.restore_point;
    b.metadata.annotations[control::kAnnotationRestoreKeepAs] = r.keep_as;
    b.metadata.annotations[control::kAnnotationRestoreGeneration] =
        std::to_string(b.spec.reset_generation);
    absl::Status saved = SaveLocked();
    if (!saved.ok()) {  // nothing half-made: the in-memory state goes back too
      branches_.erase({ns, r.keep_as});
      --b.spec.reset_generation;
      --b.metadata.generation;
      for (const char* a : {control::kAnnotationRestoreTo, control::kAnnotationRestoreKeepAs,
                            control::kAnnotationRestoreGeneration}) {
        b.metadata.annotations.erase(a);
      }
      return saved;
    }
    out = b;
  }
  Notify(Kind::kBranch, ns, r.keep_as);
  Notify(Kind::kBranch, ns, r.parent);
  return out;
}

int64_t LocalStore::RoutesVersion() const {
  std::lock_guard<std::mutex> l(mu_);
  return routes_version_;
}

std::vector<LocalStore::Route> LocalStore::Routes(int64_t* version) const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Route> out;
  for (const auto& [k, e] : endpoints_) out.push_back({k.second, e.status.port});
  *version = routes_version_;
  return out;
}

std::optional<Branch> LocalStore::GetBranch(const std::string& ns, const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = branches_.find({ns, name});
  if (it == branches_.end()) return std::nullopt;
  return it->second;
}

std::vector<Branch> LocalStore::ListBranches(const std::string& ns) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Branch> out;
  for (const auto& [k, b] : branches_) {
    if (k.first == ns) out.push_back(b);
  }
  return out;
}

std::optional<Endpoint> LocalStore::GetEndpoint(const std::string& ns, const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = endpoints_.find({ns, name});
  if (it == endpoints_.end()) return std::nullopt;
  return it->second;
}

std::vector<Endpoint> LocalStore::ListEndpoints(const std::string& ns) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Endpoint> out;
  for (const auto& [k, e] : endpoints_) {
    if (k.first == ns) out.push_back(e);
  }
  return out;
}

absl::Status LocalStore::UpdateBranchStatus(const std::string& ns, const std::string& name,
                                            const control::BranchStatus& status) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = branches_.find({ns, name});
  if (it == branches_.end()) return absl::NotFoundError(name);
  Branch updated = it->second;
  updated.status = status;
  if (control::ToJson(updated).at("status") == control::ToJson(it->second).at("status")) {
    return absl::OkStatus();
  }
  it->second.status = status;
  return SaveLocked();
}

absl::Status LocalStore::UpdateEndpointStatus(const std::string& ns, const std::string& name,
                                              const control::EndpointStatus& status) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = endpoints_.find({ns, name});
  if (it == endpoints_.end()) return absl::NotFoundError(name);
  Endpoint updated = it->second;
  updated.status = status;
  // host and port belong to the store (assigned at creation), not to the reconciler.
  updated.status.host = it->second.status.host;
  updated.status.port = it->second.status.port;
  if (control::ToJson(updated).at("status") == control::ToJson(it->second).at("status")) {
    return absl::OkStatus();
  }
  it->second.status = updated.status;
  return SaveLocked();
}

absl::Status LocalStore::RequestBranchDeletion(const std::string& ns, const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = branches_.find({ns, name});
  if (it == branches_.end()) return absl::NotFoundError(name);
  if (it->second.metadata.deletion_timestamp) return absl::OkStatus();
  it->second.metadata.deletion_timestamp = absl::FromUnixMicros(clock_->NowMicros());
  return SaveLocked();
}

absl::Status LocalStore::RequestEndpointDeletion(const std::string& ns, const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = endpoints_.find({ns, name});
  if (it == endpoints_.end()) {
    return absl::NotFoundError(absl::StrCat("endpoint \"", name, "\" does not exist"));
  }
  if (it->second.metadata.deletion_timestamp) return absl::OkStatus();
  it->second.metadata.deletion_timestamp = absl::FromUnixMicros(clock_->NowMicros());
  return SaveLocked();
}

absl::Status LocalStore::RemoveBranch(const std::string& ns, const std::string& name) {
  std::string uid;
  absl::Status saved;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = branches_.find({ns, name});
    if (it != branches_.end()) uid = it->second.metadata.uid;
    branches_.erase({ns, name});
    saved = SaveLocked();
  }
  if (saved.ok() && !uid.empty() && on_branch_removed_) on_branch_removed_(uid);
  return saved;
}

absl::Status LocalStore::RemoveEndpoint(const std::string& ns, const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  if (endpoints_.erase({ns, name}) > 0) ++routes_version_;
  return SaveLocked();
}

}  // namespace pgbranch::cli
