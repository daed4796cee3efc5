#include "operator/local/controller.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "operator/control/conditions.h"

namespace pgbranch::cli {

using control::Kind;

namespace {
// The phase of an endpoint whose compute runs but cannot reach the pageserver.
constexpr char kPhaseDegraded[] = "Degraded";
}  // namespace

Controller::Controller(Options options, LocalStore* store, control::TimelineService* timelines,
                       LocalComputeOptions compute_options, Clock* clock)
    : options_(std::move(options)), store_(store), clock_(clock) {
  runtime_ = std::make_unique<LocalComputeRuntime>(
      std::move(compute_options), [this](const std::string& ns, const std::string& endpoint) {
        Enqueue(Kind::kEndpoint, ns, endpoint);
      });
  control::ReconcileContext ctx;
  ctx.store = store_;
  ctx.timelines = timelines;
  ctx.computes = runtime_.get();
  ctx.activity = &activity_;
  ctx.clock = clock_;
  ctx.enqueue = [this](Kind k, const std::string& ns, const std::string& name) {
    Enqueue(k, ns, name);
  };
  branches_ = std::make_unique<control::BranchReconciler>(ctx);
  endpoints_ = std::make_unique<control::EndpointReconciler>(ctx);
  store_->SetChangeListener(
      [this](Kind k, const std::string& ns, const std::string& name) { Enqueue(k, ns, name); });
  // Start points are refused before they are stored when they are outside the parent's history.
  store_->SetTimelineService(timelines);
}

Controller::~Controller() { Shutdown(); }

void Controller::Start() {
  runtime_->AdoptLeftovers(options_.ns, [this](const std::string& endpoint) {
    std::optional<control::Endpoint> e = store_->GetEndpoint(options_.ns, endpoint);
    return e.has_value() && !e->metadata.deletion_timestamp;
  });
  worker_ = std::thread(&Controller::Run, this);
}

void Controller::Shutdown() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_ && !worker_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  runtime_->StopAll();
}

void Controller::Enqueue(Kind kind, const std::string& ns, const std::string& name) {
  {
    std::lock_guard<std::mutex> l(mu_);
    due_[{kind, ns, name}] = absl::InfinitePast();
    ++changes_;
  }
  cv_.notify_all();
}

void Controller::WaitUntil(const std::function<bool()>& reached, absl::Duration max) {
  const absl::Time deadline = absl::Now() + max;
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    // Read before the check: a change made while `reached` runs is not missed.
    const uint64_t seen = changes_;
    l.unlock();
    const bool done = reached();
    l.lock();
    const absl::Time now = absl::Now();
    if (done || stop_ || now >= deadline) return;
    // The 20 ms bound covers a change nothing here is told of.
    cv_.wait_for(l, absl::ToChronoNanoseconds(std::min(deadline - now, absl::Milliseconds(20))),
                 [&] { return stop_ || changes_ != seen; });
  }
}

void Controller::Run() {
  absl::Time next_resync = absl::InfinitePast();
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    absl::Time now = absl::Now();
    if (now >= next_resync) {
      next_resync = now + options_.resync;
      l.unlock();
      activity_.ExpireReports(absl::FromUnixMicros(clock_->NowMicros()), absl::Seconds(5));
      auto bs = store_->ListBranches(options_.ns);
      auto es = store_->ListEndpoints(options_.ns);
      l.lock();
      auto resync = [&](const Key& key) {
        auto [it, inserted] = due_.try_emplace(key, now);
        if (!inserted) it->second = std::min(it->second, now);
      };
      for (const auto& b : bs) resync({Kind::kBranch, options_.ns, b.metadata.name});
      for (const auto& e : es) resync({Kind::kEndpoint, options_.ns, e.metadata.name});
    }
    // The earliest due key; branches before endpoints at equal times (map order).
    auto best = due_.end();
    for (auto it = due_.begin(); it != due_.end(); ++it) {
      if (best == due_.end() || it->second < best->second) best = it;
    }
    absl::Time wake_at = next_resync;
    if (best != due_.end() && best->second <= now) {
      Key key = best->first;
      due_.erase(best);
      l.unlock();
      ProcessOne(key);
      l.lock();
      continue;
    }
    if (best != due_.end()) wake_at = std::min(wake_at, best->second);
    cv_.wait_for(l, absl::ToChronoNanoseconds(std::max(wake_at - now, absl::Milliseconds(1))));
  }
}

void Controller::ProcessOne(const Key& key) {
  const auto& [kind, ns, name] = key;
  absl::StatusOr<control::ReconcileResult> r =
      kind == Kind::kBranch ? branches_->Reconcile(ns, name) : endpoints_->Reconcile(ns, name);
  if (kind == Kind::kEndpoint && r.ok()) ReconcileExtras(ns, name);
  std::lock_guard<std::mutex> l(mu_);
  absl::Time now = absl::Now();
  if (!r.ok()) {
    absl::Duration& b = backoff_[key];
    b = b == absl::ZeroDuration() ? absl::Milliseconds(100) : std::min(b * 2, absl::Seconds(30));
    LogWarning("Reconcile failed; retrying",
               {{"kind", kind == Kind::kBranch ? "Branch" : "Endpoint"},
                {"name", name},
                {"error", std::string(r.status().message())},
                {"retry_in", absl::FormatDuration(b)}});
    auto [it, inserted] = due_.try_emplace(key, now + b);
    if (!inserted) it->second = std::min(it->second, now + b);
  } else {
    backoff_.erase(key);
    if (r->requeue_after != absl::InfiniteDuration()) {
      auto [it, inserted] = due_.try_emplace(key, now + r->requeue_after);
      if (!inserted) it->second = std::min(it->second, now + r->requeue_after);
    }
  }
  ++changes_;
  cv_.notify_all();  // wake waiters re-check
}

void Controller::SetPageserverReachable(bool reachable, const std::string& message) {
  bool changed;
  {
    std::lock_guard<std::mutex> l(mu_);
    changed = pageserver_reachable_ != reachable;
    pageserver_reachable_ = reachable;
    pageserver_message_ = message;
  }
  if (!changed) return;
  if (reachable) {
    LogInfo("The pageserver is reachable again");
  } else {
    LogWarning("The pageserver is unreachable", {{"error", message}});
  }
  for (const auto& e : store_->ListEndpoints(options_.ns)) {
    Enqueue(Kind::kEndpoint, options_.ns, e.metadata.name);
  }
}

void Controller::ReconcileExtras(const std::string& ns, const std::string& name) {
  std::optional<control::Endpoint> e = store_->GetEndpoint(ns, name);
  if (!e || e->metadata.deletion_timestamp) return;
  control::EndpointStatus st = e->status;
  const absl::Time now = absl::FromUnixMicros(clock_->NowMicros());
  const int64_t gen = e->metadata.generation;
  bool write = false;
  // postgresParameters: a running compute applies a change (reload or announced restart).
  if (runtime_->UpdateParameters(ns, name, e->spec.postgres_parameters)) {
    control::SetCondition(&st.conditions, "ParametersApplied", false, "Applying",
                          "applying the changed postgresParameters", gen, now);
    write = true;
  } else if (std::string m = runtime_->ParametersMessage(ns, name); !m.empty()) {
    const control::Condition* c = control::FindCondition(st.conditions, "ParametersApplied");
    bool restarting = m.rfind("restarting", 0) == 0;
    bool applied = m.rfind("reloaded", 0) == 0 || m.rfind("restarted", 0) == 0;
    std::string reason = restarting                     ? "Restarting"
                         : m.rfind("restarted", 0) == 0 ? "Restarted"
                         : applied                      ? "Reloaded"
                                                        : "Failed";
    if (c == nullptr || c->message != m || c->reason != reason) {
      control::SetCondition(&st.conditions, "ParametersApplied", applied, reason, m, gen, now);
      if (restarting || reason == "Restarted") {
        LogInfo("Endpoint restarts PostgreSQL to apply parameters",
                {{"endpoint", name}, {"message", m}});
      }
      write = true;
    }
  }
  // The pageserver under a running compute.
  bool reachable;
  std::string why;
  {
    std::lock_guard<std::mutex> l(mu_);
    reachable = pageserver_reachable_;
    why = pageserver_message_;
  }
  const control::Condition* ps = control::FindCondition(st.conditions, "PageserverReachable");
  const bool active = st.phase == control::kPhaseRunning || st.phase == control::kPhaseStarting ||
                      st.phase == kPhaseDegraded;
  if (!reachable && active) {
    if (ps == nullptr || ps->status != "False" || st.phase != kPhaseDegraded) {
      control::SetCondition(&st.conditions, "PageserverReachable", false, "Unreachable", why, gen,
                            now);
      st.phase = kPhaseDegraded;
      st.message = why;
      write = true;
    }
  } else if (ps != nullptr && (reachable || !active)) {
    control::RemoveCondition(&st.conditions, "PageserverReachable");
    if (st.phase == kPhaseDegraded) st.phase = control::kPhaseRunning;
    if (st.message == why) st.message.clear();
    write = true;
  }
  if (write) (void)store_->UpdateEndpointStatus(ns, name, st);
}

absl::StatusOr<Controller::Address> Controller::Wake(const std::string& name) {
  const std::string& ns = options_.ns;
  const std::string key = control::ObjectKey(ns, name);
  if (!store_->GetEndpoint(ns, name)) {
    return absl::NotFoundError(absl::StrCat("endpoint \"", name, "\" does not exist"));
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!pageserver_reachable_) {
      return absl::UnavailableError(
          absl::StrCat("endpoint \"", name, "\" cannot serve: ", pageserver_message_));
    }
  }
  const absl::Time start = absl::FromUnixMicros(clock_->NowMicros());
  activity_.RecordWake(key, start);
  Enqueue(Kind::kEndpoint, ns, name);
  const absl::Time deadline = absl::Now() + options_.wake_timeout;
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    l.unlock();
    control::ComputeObservation obs = runtime_->Observe(ns, name);
    if (obs.state == control::ComputeState::kRunning) {
      activity_.RecordWake(key, absl::FromUnixMicros(clock_->NowMicros()));
      return Address{obs.host, obs.port, runtime_->StatusPort(ns, name)};
    }
    auto failure = endpoints_->LastFailure(ns, name);
    if (failure && failure->time >= start) {
      return absl::UnavailableError(
          absl::StrCat("endpoint \"", name, "\" failed to start: ", failure->message));
    }
    std::optional<control::Endpoint> e = store_->GetEndpoint(ns, name);
    if (!e) return absl::NotFoundError(absl::StrCat("endpoint \"", name, "\" was deleted"));
    l.lock();
    if (stop_) return absl::UnavailableError("the local controller is shutting down");
    if (absl::Now() >= deadline) {
      std::string why = e->status.conditions.empty() ? "" : e->status.conditions[0].message;
      return absl::UnavailableError(
          absl::StrCat("endpoint \"", name, "\" did not start within ",
                       absl::FormatDuration(options_.wake_timeout), why.empty() ? "" : " (", why,
                       why.empty() ? "" : ")", "; see `pgbranch endpoint get ", name, "`"));
    }
    cv_.wait_for(l, std::chrono::milliseconds(10));
  }
}

std::vector<LocalStore::Route> Controller::WaitRoutes(int64_t known, absl::Duration wait,
                                                      int64_t* version) {
  {
    std::lock_guard<std::mutex> l(mu_);
    proxy_applied_version_ = std::max(proxy_applied_version_, known);
    ++changes_;
  }
  cv_.notify_all();
  WaitUntil([&] { return store_->RoutesVersion() != known; }, wait);
  return store_->Routes(version);
}

int64_t Controller::ProxyAppliedVersion() const {
  std::lock_guard<std::mutex> l(mu_);
  return proxy_applied_version_;
}

void Controller::ReportProxyActivity(const std::map<std::string, int>& connections) {
  std::map<std::string, int> keyed;
  for (const auto& [ep, n] : connections) keyed[control::ObjectKey(options_.ns, ep)] = n;
  activity_.SetConnections(keyed, absl::FromUnixMicros(clock_->NowMicros()));
}

}  // namespace pgbranch::cli
