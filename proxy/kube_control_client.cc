#include "proxy/kube_control_client.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "operator/kube/kube_object.h"

namespace pgbranch::proxy {
namespace {

using web::json::value;

constexpr char kManagedBySelector[] = "app.kubernetes.io/managed-by=pgbranch-operator";
constexpr char kEndpointLabel[] = "pgbranch.io/endpoint";

// obj[a][b]... as an object/value; nullptr when a step is missing.
const value* Field(const value& obj, std::initializer_list<const char*> path) {
  const value* cur = &obj;
  for (const char* p : path) {
    if (!cur->is_object() || !cur->has_field(p)) return nullptr;
    cur = &cur->at(p);
  }
  return cur;
}

std::string StringAt(const value& obj, std::initializer_list<const char*> path) {
  const value* v = Field(obj, path);
  return v != nullptr && v->is_string() ? v->as_string() : "";
}

bool BeingDeleted(const value& obj) {
  const value* v = Field(obj, {"metadata", "deletionTimestamp"});
  return v != nullptr && !v->is_null();
}

// The condition of `type` in status.conditions, or nullptr.
const value* Condition(const value& obj, const std::string& type) {
  const value* conds = Field(obj, {"status", "conditions"});
  if (conds == nullptr || !conds->is_array()) return nullptr;
  for (const value& c : conds->as_array()) {
    if (c.is_object() && StringAt(c, {"type"}) == type) return &c;
  }
  return nullptr;
}

// podIP:port when the pod is Ready (condition Ready=True), has an IP and is not being deleted.
std::optional<BackendAddress> PodAddress(const value& pod, int port) {
  if (BeingDeleted(pod)) return std::nullopt;
  std::string ip = StringAt(pod, {"status", "podIP"});
  if (ip.empty()) return std::nullopt;
  const value* ready = Condition(pod, "Ready");
  if (ready == nullptr || StringAt(*ready, {"status"}) != "True") return std::nullopt;
  return BackendAddress{ip, port};
}

std::string EndpointOfPod(const value& pod) {
  auto labels = kube::LabelsOf(pod);
  auto it = labels.find(kEndpointLabel);
  return it == labels.end() ? "" : it->second;
}

// Unavailable when the endpoint cannot be woken by waiting (Conflict/Failed phase, deletion).
absl::Status EndpointBlocked(const value& ep, const std::string& display) {
  if (BeingDeleted(ep)) {
    return absl::UnavailableError(absl::StrCat("endpoint ", display, " is being deleted"));
  }
  std::string phase = StringAt(ep, {"status", "phase"});
  if (phase == "Conflict" || phase == "Failed") {
    std::string message;
    if (const value* ready = Condition(ep, "Ready")) message = StringAt(*ready, {"message"});
    if (message.empty()) message = "no further detail in its Ready condition";
    return absl::UnavailableError(
        absl::StrCat("endpoint ", display, " is in phase ", phase, ": ", message));
  }
  return absl::OkStatus();
}

}  // namespace

KubeControlClient::KubeControlClient(kube::KubeClient* client, Options options)
    : client_(client), options_(std::move(options)) {
  std::vector<std::string> namespaces = options_.namespaces;
  if (namespaces.empty() ||
      std::find(namespaces.begin(), namespaces.end(), "") != namespaces.end()) {
    namespaces = {""};
    all_namespaces_ = true;
  }
  std::sort(namespaces.begin(), namespaces.end());
  namespaces.erase(std::unique(namespaces.begin(), namespaces.end()), namespaces.end());
  for (const std::string& ns : namespaces) {
    auto ni = std::make_unique<NamespaceInformers>();
    ni->ns = ns;
    kube::Informer::Handlers ep_handlers;
    ep_handlers.on_add = [this](const value&) { Signal(); };
    ep_handlers.on_update = [this](const value&, const value&) { Signal(); };
    ep_handlers.on_delete = [this](const value&) { Signal(); };
    ep_handlers.on_resync = [](const value&) {};
    ni->endpoints = std::make_unique<kube::Informer>(client_, kube::kEndpoints, ns, ep_handlers,
                                                     options_.informer_options);
    kube::Informer::Handlers pod_handlers;
    pod_handlers.on_add = [this](const value& o) { OnPodEvent(nullptr, &o); };
    pod_handlers.on_update = [this](const value& old, const value& o) { OnPodEvent(&old, &o); };
    pod_handlers.on_delete = [this](const value& o) { OnPodEvent(&o, nullptr); };
    pod_handlers.on_resync = [](const value&) {};
    kube::Informer::Options pod_opts = options_.informer_options;
    pod_opts.label_selector = kManagedBySelector;
    ni->pods = std::make_unique<kube::Informer>(client_, kube::kPods, ns, pod_handlers, pod_opts);
    informers_.push_back(std::move(ni));
  }
}

KubeControlClient::~KubeControlClient() {
  Shutdown();
  for (auto& ni : informers_) {
    ni->endpoints->Stop();
    ni->pods->Stop();
  }
  {
    absl::MutexLock l(&mu_);
    stop_patcher_ = true;
    cv_.SignalAll();
  }
  if (patcher_.joinable()) patcher_.join();
}

void KubeControlClient::Start() {
  if (started_) return;
  started_ = true;
  for (auto& ni : informers_) {
    ni->endpoints->Start();
    ni->pods->Start();
  }
  patcher_ = std::thread([this] { PatchLoop(); });
}

bool KubeControlClient::WaitForSync(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  for (auto& ni : informers_) {
    if (!ni->endpoints->WaitForSync(std::max(deadline - absl::Now(), absl::ZeroDuration())) ||
        !ni->pods->WaitForSync(std::max(deadline - absl::Now(), absl::ZeroDuration()))) {
      return false;
    }
  }
  return true;
}

void KubeControlClient::Signal() {
  absl::MutexLock l(&mu_);
  ++generation_;
  cv_.SignalAll();
}

void KubeControlClient::OnPodEvent(const value* old_obj, const value* obj) {
  absl::MutexLock l(&mu_);
  if (old_obj != nullptr) {
    std::string ep = EndpointOfPod(*old_obj);
    if (!ep.empty()) {
      std::string key = kube::ObjectKey(kube::NamespaceOf(*old_obj), ep);
      auto it = ready_pods_.find(key);
      if (it != ready_pods_.end()) {
        it->second.erase(kube::NameOf(*old_obj));
        if (it->second.empty()) ready_pods_.erase(it);
      }
    }
  }
  if (obj != nullptr) {
    std::string ep = EndpointOfPod(*obj);
    if (!ep.empty()) {
      std::string key = kube::ObjectKey(kube::NamespaceOf(*obj), ep);
      if (auto addr = PodAddress(*obj, options_.postgres_port)) {
        ready_pods_[key][kube::NameOf(*obj)] = *addr;
      } else if (auto it = ready_pods_.find(key); it != ready_pods_.end()) {
        it->second.erase(kube::NameOf(*obj));
        if (it->second.empty()) ready_pods_.erase(it);
      }
    }
  }
  ++generation_;
  cv_.SignalAll();
}

std::optional<BackendAddress> KubeControlClient::ReadyAddress(const std::string& key) {
  absl::MutexLock l(&mu_);
  auto it = ready_pods_.find(key);
  if (it == ready_pods_.end() || it->second.empty()) return std::nullopt;
  return it->second.begin()->second;
}

absl::StatusOr<KubeControlClient::Target> KubeControlClient::Resolve(const std::string& key) {
  auto informers_for = [this](const std::string& ns) -> NamespaceInformers* {
    for (auto& ni : informers_) {
      if (ni->ns == ns || all_namespaces_) return ni.get();
    }
    return nullptr;
  };
  Target t;
  if (auto dot = key.rfind('.'); dot != std::string::npos && dot > 0 && dot + 1 < key.size()) {
    t.name = key.substr(0, dot);
    t.ns = key.substr(dot + 1);
    t.informers = informers_for(t.ns);
    // A dotted endpoint name in the default namespace, when "<name>.<ns>" does not exist.
    NamespaceInformers* def = informers_for(options_.default_namespace);
    if (def != nullptr && def->endpoints->HasSynced() &&
        (t.informers == nullptr || !t.informers->endpoints->Get(kube::ObjectKey(t.ns, t.name))) &&
        def->endpoints->Get(kube::ObjectKey(options_.default_namespace, key))) {
      return Target{options_.default_namespace, key, def};
    }
  } else {
    t.name = key;
    t.ns = options_.default_namespace;
    t.informers = informers_for(t.ns);
  }
  if (t.informers == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("namespace ", t.ns, " is not watched by this proxy (--namespaces)"));
  }
  return t;
}

absl::Status KubeControlClient::PatchAnnotation(const std::string& ns, const std::string& name) {
  value annotations = value::object();
  annotations[kWakeRequestedAnnotation] = value::string(kube::FormatKubeMicroTime(absl::Now()));
  value metadata = value::object();
  metadata["annotations"] = annotations;
  value patch = value::object();
  patch["metadata"] = metadata;
  auto r = client_->Patch(kube::kEndpoints, ns, name, kube::PatchType::kMerge, patch,
                          options_.field_manager);
  absl::MutexLock l(&mu_);
  ++patches_sent_;
  return r.status();
}

void KubeControlClient::PatchLoop() {
  absl::MutexLock l(&mu_);
  while (true) {
    while (!stop_patcher_ && patch_queue_.empty()) cv_.Wait(&mu_);
    if (stop_patcher_) return;
    std::string key = patch_queue_.front();
    patch_queue_.pop_front();
    queued_.erase(key);
    auto slash = key.find('/');
    mu_.Unlock();
    absl::Status s = PatchAnnotation(key.substr(0, slash), key.substr(slash + 1));
    mu_.Lock();
    if (!s.ok()) {
      LogWarning("Activity annotation patch failed", {{"endpoint", key}, {"error", s.ToString()}});
      // Try again on a connection about 5 s from now rather than a full interval later.
      last_patch_[key] = absl::Now() - options_.activity_patch_interval + absl::Seconds(5);
    }
  }
}

absl::StatusOr<BackendAddress> KubeControlClient::Wake(const std::string& endpoint) {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + options_.wake_timeout;
  {
    absl::MutexLock l(&mu_);
    if (shutdown_) return absl::CancelledError("the proxy is shutting down");
  }
  absl::StatusOr<Target> target = Resolve(endpoint);
  if (!target.ok()) return target.status();
  const std::string key = kube::ObjectKey(target->ns, target->name);
  const std::string display = key;

  // Fast path: a Ready pod, the endpoint exists and is not being deleted.
  if (auto addr = ReadyAddress(key)) {
    std::optional<value> ep = target->informers->endpoints->Get(key);
    if (ep && !BeingDeleted(*ep)) {
      absl::MutexLock l(&mu_);
      absl::Time now = absl::Now();
      auto it = last_patch_.find(key);
      if ((it == last_patch_.end() || now - it->second >= options_.activity_patch_interval) &&
          !queued_.count(key)) {
        last_patch_[key] = now;
        queued_.insert(key);
        patch_queue_.push_back(key);
        cv_.SignalAll();
      }
      return *addr;
    }
  }

  // Slow path. The caches must have listed once before "missing" means NotFound.
  // (Informer locks are never taken under mu_.)
  while (!(target->informers->endpoints->HasSynced() && target->informers->pods->HasSynced())) {
    absl::MutexLock l(&mu_);
    if (shutdown_) return absl::CancelledError("the proxy is shutting down");
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the proxy has not been able to list endpoints and pods from the Kubernetes API in ",
          absl::FormatDuration(options_.wake_timeout)));
    }
    cv_.WaitWithTimeout(&mu_, absl::Milliseconds(50));
  }

  absl::Time next_patch = absl::InfinitePast();
  absl::Status last_error;
  bool patched = false;
  while (true) {
    {
      absl::MutexLock l(&mu_);
      if (shutdown_) return absl::CancelledError("the proxy is shutting down");
    }
    std::optional<value> ep = target->informers->endpoints->Get(key);
    if (!ep) {
      return absl::NotFoundError(absl::StrCat("endpoint ", display, " does not exist"));
    }
    if (absl::Status blocked = EndpointBlocked(*ep, display); !blocked.ok()) return blocked;
    if (auto addr = ReadyAddress(key)) {
      if (!patched) {
        // Became Ready without our patch (raced the fast path): still count as activity.
        absl::MutexLock l(&mu_);
        if (!queued_.count(key)) {
          last_patch_[key] = absl::Now();
          queued_.insert(key);
          patch_queue_.push_back(key);
          cv_.SignalAll();
        }
      }
      Log(LogLevel::kDebug, "Woke endpoint",
          {{"endpoint", display}, {"took", absl::FormatDuration(absl::Now() - start)}});
      return *addr;
    }

    absl::Time now = absl::Now();
    if (now >= deadline) {
      std::string phase = StringAt(*ep, {"status", "phase"});
      std::string msg = absl::StrCat("endpoint ", display, " did not become ready within ",
                                     absl::FormatDuration(options_.wake_timeout), " (phase ",
                                     phase.empty() ? "unknown" : phase);
      if (const value* ready = Condition(*ep, "Ready")) {
        std::string m = StringAt(*ready, {"message"});
        if (!m.empty()) absl::StrAppend(&msg, ": ", m);
      }
      absl::StrAppend(&msg, ")");
      if (!last_error.ok())
        absl::StrAppend(&msg, "; last annotation patch: ", last_error.message());
      return absl::DeadlineExceededError(msg);
    }

    if (now >= next_patch) {
      // Concurrent wakes of the same endpoint share one patch (within a second).
      bool do_patch = true;
      {
        absl::MutexLock l(&mu_);
        auto it = last_patch_.find(key);
        if (!patched && it != last_patch_.end() && now - it->second < absl::Seconds(1)) {
          do_patch = false;
        } else {
          last_patch_[key] = now;
        }
      }
      patched = true;
      next_patch = now + options_.repatch_interval;
      if (do_patch) {
        absl::Status s = PatchAnnotation(target->ns, target->name);
        if (absl::IsNotFound(s)) {
          return absl::NotFoundError(absl::StrCat("endpoint ", display, " does not exist"));
        }
        if (absl::IsPermissionDenied(s) || absl::IsUnauthenticated(s)) {
          return absl::UnavailableError(
              absl::StrCat("the proxy may not patch endpoint ", display, " (RBAC): ", s.message()));
        }
        if (!s.ok()) {
          last_error = s;
          LogWarning("Wake annotation patch failed",
                     {{"endpoint", display}, {"error", s.ToString()}});
          next_patch = now + std::min(options_.repatch_interval, absl::Seconds(1));
        } else {
          last_error = absl::OkStatus();
          LogInfo("Waking endpoint", {{"endpoint", display}});
        }
      }
    }

    absl::MutexLock l(&mu_);
    uint64_t seen = generation_;
    absl::Time until = std::min(deadline, next_patch);
    while (!shutdown_ && generation_ == seen && absl::Now() < until) {
      cv_.WaitWithDeadline(&mu_, until);
    }
  }
}

absl::StatusOr<RouteTable> KubeControlClient::WatchRoutes(int64_t applied_version,
                                                          int wait_seconds) {
  // No per-endpoint ports in Kubernetes: clients name the endpoint in the startup packet or
  // SNI. The table is constant: version 1, empty.
  RouteTable table;
  table.version = 1;
  absl::MutexLock l(&mu_);
  if (shutdown_) return absl::CancelledError("the proxy is shutting down");
  if (applied_version != table.version) return table;
  absl::Time until = absl::Now() + absl::Seconds(std::max(wait_seconds, 0));
  while (!shutdown_ && absl::Now() < until) cv_.WaitWithDeadline(&mu_, until);
  if (shutdown_) return absl::CancelledError("the proxy is shutting down");
  return table;
}

absl::Status KubeControlClient::ReportActivity(const std::map<std::string, int>&) {
  // Nothing to do: the operator learns activity from the wake annotation and from the compute
  // agent's own session count; see the class comment.
  return absl::OkStatus();
}

void KubeControlClient::Shutdown() {
  absl::MutexLock l(&mu_);
  shutdown_ = true;
  cv_.SignalAll();
}

int64_t KubeControlClient::patches_sent() {
  absl::MutexLock l(&mu_);
  return patches_sent_;
}

}  // namespace pgbranch::proxy
