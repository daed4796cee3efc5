#include "operator/k8s/operator_controller.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "operator/kube/kube_object.h"
#include "operator/model/json.h"

namespace pgbranch::k8s {
namespace {

using web::json::value;

std::string Annotation(const value& obj, const std::string& key) {
  if (!obj.has_field("metadata") || !obj.at("metadata").has_field("annotations")) return "";
  const value& a = obj.at("metadata").at("annotations");
  if (!a.has_field(key) || !a.at(key).is_string()) return "";
  return a.at(key).as_string();
}

const char* KindName(control::Kind k) {
  return k == control::Kind::kBranch ? "branch" : "endpoint";
}

// Ready-condition reasons that mean a person should look (Warning events).
bool WarningReason(const std::string& reason) {
  for (const char* r : {"Conflict", "HasChildren", "ComputeFailed", "TimelineCreateFailed",
                        "Expired", "ResetRefused"}) {
    if (reason == r) return true;
  }
  return false;
}

}  // namespace

OperatorController::OperatorController(const OperatorConfig& config, kube::KubeClient* client,
                                       control::TimelineService* timelines,
                                       OperatorMetrics* metrics, EventFn events, Clock* clock)
    : config_(config),
      client_(client),
      metrics_(metrics),
      events_(std::move(events)),
      clock_(clock) {
  store_ = std::make_unique<KubeObjectStore>(
      client_,
      [this](const kube::Resource& r, const std::string& ns, const std::string& name) {
        return CacheGet(r, ns, name);
      },
      [this](const kube::Resource& r, const std::string& ns) { return CacheList(r, ns); },
      [this](const control::Endpoint& e, control::EndpointStatus* st) {
        // Where clients connect is the proxy's address (with the endpoint as routing key).
        st->host = runtime_->ClientHost(e.metadata.namespace_, e.metadata.name);
        st->port = config_.compute.proxy_port;
        if (st->phase != control::kPhaseConflict && st->phase != control::kPhasePending) {
          st->secret_name = PodComputeRuntime::SecretName(e.metadata.name);
        }
      },
      [this](const kube::Resource& r, const std::string& ns, const std::string& owner) {
        return Indexed(r == kube::kBranches ? children_ : endpoints_of_, ns, owner);
      });
  runtime_ = std::make_unique<PodComputeRuntime>(
      config_.compute, client_, [this](const std::string& ns, const std::string& name) {
        return CacheGet(kube::kPods, ns, name);
      });
  control::ReconcileContext ctx;
  ctx.store = store_.get();
  ctx.timelines = timelines;
  ctx.computes = runtime_.get();
  ctx.activity = &activity_;
  ctx.clock = clock_;
  ctx.enqueue = [this](control::Kind k, const std::string& ns, const std::string& name) {
    Enqueue(k, ns, name);
  };
  // One pageserver tenant per namespace; timelines keyed by the Branch's UID.
  ctx.tenant_for_namespace = [](const std::string& ns) { return ns; };
  ctx.timeline_for_branch = [](const control::Branch& b) {
    return b.metadata.uid.empty() ? b.metadata.name : b.metadata.uid;
  };
  // Pod events wake a starting endpoint's pass; the timer is only a safety net.
  ctx.starting_poll = absl::Seconds(2);
  branches_ = std::make_unique<control::BranchReconciler>(ctx);
  endpoints_ = std::make_unique<control::EndpointReconciler>(ctx);
  sql_ = std::make_unique<PodSqlConnector>(
      client_,
      [this](const std::string& ns, const std::string& name) {
        return CacheGet(kube::kPods, ns, name);
      },
      config_.compute.role, config_.compute.database, config_.compute.pg_port);
  promotions_ = std::make_unique<control::PromotionReconciler>(
      client_, sql_.get(), clock_,
      [this](const value& obj, bool warning, const std::string& reason,
             const std::string& message) {
        if (events_) events_("Promotion", obj, warning ? "Warning" : "Normal", reason, message);
      });

  kube::Informer::Options opts;
  opts.resync_period = absl::Seconds(config_.resync_seconds);
  kube::Informer::Options pod_opts = opts;
  pod_opts.label_selector = "app.kubernetes.io/managed-by=pgbranch-operator";
  for (const std::string& ns : config_.namespaces) {
    kube::Informer::Handlers bh;
    bh.on_add = [this](const value& o) { OnBranch(o, false); };
    bh.on_update = [this](const value&, const value& o) { OnBranch(o, false); };
    bh.on_delete = [this](const value& o) { OnBranch(o, true); };
    branch_informers_.push_back(
        std::make_unique<kube::Informer>(client_, kube::kBranches, ns, bh, opts));
    kube::Informer::Handlers eh;
    eh.on_add = [this](const value& o) { OnEndpoint(nullptr, o, false); };
    eh.on_update = [this](const value& old, const value& o) { OnEndpoint(&old, o, false); };
    eh.on_delete = [this](const value& o) { OnEndpoint(nullptr, o, true); };
    endpoint_informers_.push_back(
        std::make_unique<kube::Informer>(client_, kube::kEndpoints, ns, eh, opts));
    kube::Informer::Handlers ph;
    ph.on_add = [this](const value& o) { OnPod(o); };
    ph.on_update = [this](const value&, const value& o) { OnPod(o); };
    ph.on_delete = [this](const value& o) { OnPod(o); };
    pod_informers_.push_back(
        std::make_unique<kube::Informer>(client_, kube::kPods, ns, ph, pod_opts));
    kube::Informer::Handlers prh;
    auto on_promotion = [this](const value& o) {
      if (leading_) promotion_queue_.Add(kube::ObjectKey(o));
    };
    prh.on_add = on_promotion;
    prh.on_update = [on_promotion](const value&, const value& o) { on_promotion(o); };
    promotion_informers_.push_back(
        std::make_unique<kube::Informer>(client_, kube::kPromotions, ns, prh, opts));
  }
}

OperatorController::~OperatorController() { Shutdown(); }

void OperatorController::Start() {
  for (auto* list :
       {&branch_informers_, &endpoint_informers_, &pod_informers_, &promotion_informers_}) {
    for (auto& inf : *list) inf->Start();
  }
  metrics_thread_ = std::thread(&OperatorController::PhaseMetricsLoop, this);
}

bool OperatorController::Synced() {
  // Promotions are left out: an operator installed without the Promotion CRD (an older chart)
  // still syncs and reconciles Branches and Endpoints.
  for (auto* list : {&branch_informers_, &endpoint_informers_, &pod_informers_}) {
    for (auto& inf : *list) {
      if (!inf->HasSynced()) return false;
    }
  }
  return true;
}

bool OperatorController::WaitForSync(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  // Promotions are left out: an operator installed without the Promotion CRD (an older chart)
  // still syncs and reconciles Branches and Endpoints.
  for (auto* list : {&branch_informers_, &endpoint_informers_, &pod_informers_}) {
    for (auto& inf : *list) {
      if (!inf->WaitForSync(std::max(absl::ZeroDuration(), deadline - absl::Now()))) return false;
    }
  }
  return true;
}

void OperatorController::SetLeading(bool leading) {
  if (leading) {
    if (leading_.exchange(true)) return;
    metrics_->SetLeader(true);
    LogInfo("Started leading: reconciling", {{"identity", config_.identity}});
    // Everything once: a new leader converges whatever happened while no one led.
    for (auto& inf : branch_informers_) {
      for (const value& o : inf->List())
        Enqueue(control::Kind::kBranch, kube::NamespaceOf(o), kube::NameOf(o));
    }
    for (auto& inf : endpoint_informers_) {
      for (const value& o : inf->List())
        Enqueue(control::Kind::kEndpoint, kube::NamespaceOf(o), kube::NameOf(o));
    }
    for (auto& inf : promotion_informers_) {
      for (const value& o : inf->List()) promotion_queue_.Add(kube::ObjectKey(o));
    }
    workers_.emplace_back(&OperatorController::Work, this, control::Kind::kBranch);
    workers_.emplace_back(&OperatorController::Work, this, control::Kind::kEndpoint);
    workers_.emplace_back(&OperatorController::WorkPromotions, this);
  } else {
    if (!leading_.exchange(false)) return;
    metrics_->SetLeader(false);
    branch_queue_.ShutDown();
    endpoint_queue_.ShutDown();
    promotion_queue_.ShutDown();
    for (auto& t : workers_) {
      if (t.joinable()) t.join();
    }
    workers_.clear();
  }
}

void OperatorController::Shutdown() {
  if (stop_.exchange(true)) return;
  SetLeading(false);  // stops the queues and joins the workers (there are none if never leading)
  branch_queue_.ShutDown();
  endpoint_queue_.ShutDown();
  promotion_queue_.ShutDown();
  for (auto* list :
       {&branch_informers_, &endpoint_informers_, &pod_informers_, &promotion_informers_}) {
    for (auto& inf : *list) inf->Stop();
  }
  if (metrics_thread_.joinable()) metrics_thread_.join();
}

kube::Informer* OperatorController::InformerFor(std::vector<std::unique_ptr<kube::Informer>>& list,
                                                const std::string& ns) {
  for (size_t i = 0; i < config_.namespaces.size() && i < list.size(); ++i) {
    if (config_.namespaces[i].empty() || config_.namespaces[i] == ns) return list[i].get();
  }
  return nullptr;
}

std::optional<value> OperatorController::CacheGet(const kube::Resource& r, const std::string& ns,
                                                  const std::string& name) {
  auto& list = r == kube::kBranches    ? branch_informers_
               : r == kube::kEndpoints ? endpoint_informers_
                                       : pod_informers_;
  kube::Informer* inf = InformerFor(list, ns);
  if (inf == nullptr) return std::nullopt;
  return inf->Get(kube::ObjectKey(ns, name));
}

std::vector<value> OperatorController::CacheList(const kube::Resource& r, const std::string& ns) {
  auto& list = r == kube::kBranches    ? branch_informers_
               : r == kube::kEndpoints ? endpoint_informers_
                                       : pod_informers_;
  kube::Informer* inf = InformerFor(list, ns);
  std::vector<value> out;
  if (inf == nullptr) return out;
  for (value& o : inf->List()) {
    if (kube::NamespaceOf(o) == ns) out.push_back(std::move(o));
  }
  return out;
}

void OperatorController::Enqueue(control::Kind kind, const std::string& ns,
                                 const std::string& name) {
  if (!leading_) return;
  (kind == control::Kind::kBranch ? branch_queue_ : endpoint_queue_).Add(ns + "/" + name);
}

void OperatorController::Index(std::map<std::string, std::set<std::string>>* index,
                               std::map<std::string, std::string>* owner_of, const std::string& ns,
                               const std::string& name, const std::string& owner, bool deleted) {
  const std::string key = control::ObjectKey(ns, name);
  std::lock_guard<std::mutex> l(mu_);
  auto it = owner_of->find(key);
  if (it != owner_of->end()) {
    (*index)[control::ObjectKey(ns, it->second)].erase(name);
    owner_of->erase(it);
  }
  if (!deleted && !owner.empty()) {
    (*index)[control::ObjectKey(ns, owner)].insert(name);
    (*owner_of)[key] = owner;
  }
}

std::vector<std::string> OperatorController::Indexed(
    const std::map<std::string, std::set<std::string>>& index, const std::string& ns,
    const std::string& owner) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = index.find(control::ObjectKey(ns, owner));
  if (it == index.end()) return {};
  return {it->second.begin(), it->second.end()};
}

void OperatorController::OnBranch(const value& obj, bool deleted) {
  const std::string ns = kube::NamespaceOf(obj);
  const std::string name = kube::NameOf(obj);
  const std::string parent =
      obj.has_field("spec") ? control::JsonString(obj.at("spec"), "parent") : "";
  Index(&children_, &parent_of_, ns, name, parent, deleted);
  Enqueue(control::Kind::kBranch, ns, name);
  // A parent being deleted waits for its children to go.
  if (!parent.empty() && deleted) Enqueue(control::Kind::kBranch, ns, parent);
  // Children wait for their parent; endpoints for their branch.
  for (const std::string& child : Indexed(children_, ns, name)) {
    Enqueue(control::Kind::kBranch, ns, child);
  }
  for (const std::string& e : Indexed(endpoints_of_, ns, name)) {
    Enqueue(control::Kind::kEndpoint, ns, e);
  }
}

void OperatorController::OnEndpoint(const value* old_obj, const value& obj, bool deleted) {
  const std::string ns = kube::NamespaceOf(obj);
  const std::string name = kube::NameOf(obj);
  const std::string branch =
      obj.has_field("spec") ? control::JsonString(obj.at("spec"), "branch") : "";
  Index(&endpoints_of_, &branch_of_, ns, name, branch, deleted);
  const std::string wake = Annotation(obj, kWakeAnnotation);
  if (!deleted && !wake.empty() &&
      (old_obj == nullptr || Annotation(*old_obj, kWakeAnnotation) != wake)) {
    absl::Time now = absl::FromUnixMicros(clock_->NowMicros());
    auto asked = control::ParseRfc3339(wake);
    // A wake asked long ago (seen again at a relist) is not activity now.
    if (asked.ok() && now - *asked < absl::Minutes(1)) {
      activity_.RecordWake(control::ObjectKey(ns, name), now);
      std::lock_guard<std::mutex> l(mu_);
      wake_started_.try_emplace(control::ObjectKey(ns, name), *asked);
    }
  }
  Enqueue(control::Kind::kEndpoint, ns, name);
  // The branch (deletion waits for its endpoints) and siblings on the same branch (the
  // one-writer rule may admit another one now).
  if (branch.empty()) return;
  if (deleted) Enqueue(control::Kind::kBranch, ns, branch);  // its deletion may wait for it
  for (const std::string& e : Indexed(endpoints_of_, ns, branch)) {
    if (e != name) Enqueue(control::Kind::kEndpoint, ns, e);
  }
}

void OperatorController::OnPod(const value& obj) {
  auto labels = kube::LabelsOf(obj);
  auto it = labels.find("pgbranch.io/endpoint");
  if (it == labels.end()) return;
  const std::string ns = kube::NamespaceOf(obj);
  const std::string key = control::ObjectKey(ns, it->second);
  // Wake latency: from the proxy's request to a ready pod.
  if (PodComputeRuntime::PodServing(obj)) {
    std::lock_guard<std::mutex> l(mu_);
    auto w = wake_started_.find(key);
    if (w != wake_started_.end()) {
      metrics_->ObserveWake(absl::ToDoubleSeconds(absl::Now() - w->second));
      wake_started_.erase(w);
    }
  }
  Enqueue(control::Kind::kEndpoint, ns, it->second);
}

std::string OperatorController::ReadyReason(control::Kind kind, const std::string& ns,
                                            const std::string& name) {
  std::vector<control::Condition> conds;
  if (kind == control::Kind::kBranch) {
    if (auto b = store_->GetBranch(ns, name)) conds = b->status.conditions;
  } else if (auto e = store_->GetEndpoint(ns, name)) {
    conds = e->status.conditions;
  }
  for (const auto& c : conds) {
    if (c.type == "Ready") return absl::StrCat(c.status, "/", c.reason, "/", c.message);
  }
  return "";
}

void OperatorController::EmitConditionEvent(control::Kind kind, const std::string& ns,
                                            const std::string& name, const std::string& before) {
  if (!events_) return;
  std::string after = ReadyReason(kind, ns, name);
  if (after.empty() || after == before) return;
  std::vector<std::string> parts = absl::StrSplit(after, absl::MaxSplits('/', 2));
  if (parts.size() < 3) return;
  auto obj =
      store_->Latest(kind == control::Kind::kBranch ? kube::kBranches : kube::kEndpoints, ns, name);
  if (!obj) return;
  const bool warn = parts[0] != "True" && WarningReason(parts[1]);
  events_(kind == control::Kind::kBranch ? "Branch" : "Endpoint", *obj, warn ? "Warning" : "Normal",
          parts[1], parts[2]);
}

void OperatorController::ProcessKey(control::Kind kind, const std::string& key) {
  const size_t slash = key.find('/');
  const std::string ns = key.substr(0, slash);
  const std::string name = key.substr(slash + 1);
  const kube::Resource& r = kind == control::Kind::kBranch ? kube::kBranches : kube::kEndpoints;
  kube::WorkQueue& q = kind == control::Kind::kBranch ? branch_queue_ : endpoint_queue_;
  const absl::Time start = absl::Now();

  absl::StatusOr<control::ReconcileResult> result = control::ReconcileResult::Done();
  std::string before = ReadyReason(kind, ns, name);
  // The finalizer comes before anything external (a timeline, a pod) exists for the object.
  if (store_->Latest(r, ns, name)) {
    auto has = store_->EnsureFinalizer(r, ns, name);
    if (!has.ok() && !absl::IsNotFound(has.status())) result = has.status();
  }
  if (result.ok()) {
    result = kind == control::Kind::kBranch ? branches_->Reconcile(ns, name)
                                            : endpoints_->Reconcile(ns, name);
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  metrics_->Reconciled(KindName(kind), result.ok(), seconds);
  if (!result.ok()) {
    LogWarning("Reconcile failed", {{"kind", KindName(kind)},
                                    {"namespace", ns},
                                    {"name", name},
                                    {"error", result.status().ToString()}});
    q.AddRateLimited(key);
    return;
  }
  q.Forget(key);
  EmitConditionEvent(kind, ns, name, before);
  if (result->requeue_after != absl::InfiniteDuration()) q.AddAfter(key, result->requeue_after);
}

void OperatorController::Work(control::Kind kind) {
  kube::WorkQueue& q = kind == control::Kind::kBranch ? branch_queue_ : endpoint_queue_;
  while (auto key = q.Get()) {
    if (leading_) ProcessKey(kind, *key);
    q.Done(*key);
    metrics_->SetQueueDepth(static_cast<double>(branch_queue_.Len() + endpoint_queue_.Len()));
  }
}

void OperatorController::WorkPromotions() {
  while (auto key = promotion_queue_.Get()) {
    if (leading_) {
      const size_t slash = key->find('/');
      const absl::Time start = absl::Now();
      absl::StatusOr<control::ReconcileResult> result =
          promotions_->Reconcile(key->substr(0, slash), key->substr(slash + 1));
      metrics_->Reconciled("promotion", result.ok(), absl::ToDoubleSeconds(absl::Now() - start));
      if (!result.ok()) {
        LogWarning("Reconcile failed",
                   {{"kind", "promotion"}, {"key", *key}, {"error", result.status().ToString()}});
        promotion_queue_.AddRateLimited(*key);
      } else {
        promotion_queue_.Forget(*key);
        if (result->requeue_after != absl::InfiniteDuration()) {
          promotion_queue_.AddAfter(*key, result->requeue_after);
        }
      }
    }
    promotion_queue_.Done(*key);
  }
}

void OperatorController::PhaseMetricsLoop() {
  while (!stop_) {
    std::map<std::string, int> branches, endpoints;
    for (auto& inf : branch_informers_) {
      for (const value& o : inf->List()) {
        ++branches[o.has_field("status") ? control::JsonString(o.at("status"), "phase") : ""];
      }
    }
    for (auto& inf : endpoint_informers_) {
      for (const value& o : inf->List()) {
        ++endpoints[o.has_field("status") ? control::JsonString(o.at("status"), "phase") : ""];
      }
    }
    for (const auto& [phase, n] : branches) metrics_->SetPhaseCount("branch", phase, n);
    for (const auto& [phase, n] : endpoints) metrics_->SetPhaseCount("endpoint", phase, n);
    for (int i = 0; i < 50 && !stop_; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace pgbranch::k8s
