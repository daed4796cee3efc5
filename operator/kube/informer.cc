#include "operator/kube/informer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "operator/kube/kube_object.h"

namespace pgbranch::kube {

using web::json::value;

namespace {
// A watch that ends cleanly sooner than this counts as a failure for back-off purposes, so a
// server that closes watches at once cannot make us spin.
constexpr absl::Duration kShortestHealthyWatch = absl::Seconds(1);
}  // namespace

Informer::Informer(KubeClient* client, Resource resource, std::string ns, Handlers handlers,
                   Options options)
    : client_(client),
      resource_(std::move(resource)),
      ns_(std::move(ns)),
      handlers_(std::move(handlers)),
      options_(std::move(options)) {}

Informer::~Informer() { Stop(); }

void Informer::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Informer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool Informer::HasSynced() {
  absl::MutexLock lock(&mu_);
  return synced_;
}

bool Informer::WaitForSync(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(
                           +[](Informer* i) { return i->synced_ || i->stopped_; }, this),
                       timeout);
  return synced_;
}

std::optional<value> Informer::Get(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

std::vector<value> Informer::List() {
  absl::MutexLock lock(&mu_);
  std::vector<value> out;
  for (const auto& [k, v] : cache_) out.push_back(v);
  return out;
}

std::vector<std::string> Informer::Keys() {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [k, v] : cache_) out.push_back(k);
  return out;
}

std::string Informer::LastResourceVersion() {
  absl::MutexLock lock(&mu_);
  return rv_;
}

int Informer::ListCount() {
  absl::MutexLock lock(&mu_);
  return list_count_;
}

bool Informer::SleepFor(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopped_), d);
  return !stopped_;
}

absl::Duration Informer::NextBackoff() {
  absl::MutexLock lock(&mu_);
  absl::Time now = absl::Now();
  if (backoff_ == absl::ZeroDuration() || now - last_failure_ > options_.healthy_period) {
    backoff_ = options_.initial_backoff;
  } else {
    backoff_ = std::min(backoff_ * 2, options_.max_backoff);
  }
  last_failure_ = now;
  std::uniform_real_distribution<double> jitter(1.0, 1.5);
  return std::min(backoff_ * jitter(rng_), options_.max_backoff);
}

void Informer::Run() {
  bool need_list = true;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) return;
    }
    if (need_list) {
      absl::Status s = ListAndReplace();
      if (!s.ok()) {
        LogWarning("Failed to list", {{"resource", resource_.plural},
                                      {"namespace", ns_},
                                      {"error", std::string(s.message())}});
        if (!SleepFor(NextBackoff())) return;
        continue;
      }
      need_list = false;
    }
    absl::Time started = absl::Now();
    absl::Status error;
    WatchOutcome outcome = WatchOnce(&error);
    switch (outcome) {
      case WatchOutcome::kGone:
        LogInfo("Watch resourceVersion too old, relisting",
                {{"resource", resource_.plural}, {"namespace", ns_}});
        need_list = true;
        break;
      case WatchOutcome::kEnded:
        if (absl::Now() - started < kShortestHealthyWatch && !SleepFor(NextBackoff())) return;
        break;
      case WatchOutcome::kFailed:
        LogWarning("Watch failed, retrying", {{"resource", resource_.plural},
                                              {"namespace", ns_},
                                              {"error", std::string(error.message())}});
        if (!SleepFor(NextBackoff())) return;
        break;
    }
  }
}

absl::Status Informer::ListAndReplace() {
  ListOptions lo;
  lo.label_selector = options_.label_selector;
  lo.field_selector = options_.field_selector;
  lo.limit = options_.page_size;
  auto list = client_->List(resource_, ns_, lo);
  if (!list.ok()) return list.status();
  std::map<std::string, value> fresh;
  for (const value& item : list->items) fresh[ObjectKey(item)] = item;

  absl::MutexLock handlers(&handler_mu_);
  std::map<std::string, value> old;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return absl::OkStatus();
    old.swap(cache_);
    cache_ = fresh;  // swapped in one step: readers never see a half-built cache
    rv_ = list->resource_version;
    list_count_++;
    if (options_.resync_period > absl::ZeroDuration() && next_resync_ == absl::InfiniteFuture()) {
      next_resync_ = absl::Now() + options_.resync_period;
    }
  }
  for (const auto& [key, obj] : old) {
    if (!fresh.count(key) && handlers_.on_delete) handlers_.on_delete(obj);
  }
  for (const auto& [key, obj] : fresh) {
    auto it = old.find(key);
    if (it == old.end()) {
      if (handlers_.on_add) handlers_.on_add(obj);
    } else if (ResourceVersionOf(it->second) != ResourceVersionOf(obj) && handlers_.on_update) {
      handlers_.on_update(it->second, obj);
    }
  }
  absl::MutexLock lock(&mu_);
  synced_ = true;
  return absl::OkStatus();
}

void Informer::HandleEvent(const WatchEvent& ev) {
  if (ev.type == WatchEventType::kError) {
    int64_t code = IntField(ev.object, "code");
    absl::MutexLock lock(&mu_);
    if (code == 410) {
      gone_ = true;
    } else {
      LogWarning("Watch error event", {{"resource", resource_.plural},
                                       {"code", std::to_string(code)},
                                       {"message", StringField(ev.object, "message")}});
    }
    return;
  }
  std::string rv = ResourceVersionOf(ev.object);
  if (ev.type == WatchEventType::kBookmark) {
    absl::MutexLock lock(&mu_);
    if (!rv.empty()) rv_ = rv;
    return;
  }
  std::string key = ObjectKey(ev.object);
  absl::MutexLock handlers(&handler_mu_);
  std::optional<value> old;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    if (!rv.empty()) rv_ = rv;
    auto it = cache_.find(key);
    if (it != cache_.end()) old = it->second;
    if (ev.type == WatchEventType::kDeleted) {
      cache_.erase(key);
    } else {
      cache_[key] = ev.object;
    }
  }
  if (ev.type == WatchEventType::kDeleted) {
    if (handlers_.on_delete) handlers_.on_delete(ev.object);
  } else if (old.has_value()) {
    if (handlers_.on_update) handlers_.on_update(*old, ev.object);
  } else if (handlers_.on_add) {
    handlers_.on_add(ev.object);
  }
}

void Informer::Resync() {
  absl::MutexLock handlers(&handler_mu_);
  std::vector<value> objs;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    for (const auto& [k, v] : cache_) objs.push_back(v);
    next_resync_ = absl::Now() + options_.resync_period;
  }
  for (const value& obj : objs) {
    if (handlers_.on_resync) {
      handlers_.on_resync(obj);
    } else if (handlers_.on_update) {
      handlers_.on_update(obj, obj);
    }
  }
}

Informer::WatchOutcome Informer::WatchOnce(absl::Status* error) {
  WatchOptions wo;
  {
    absl::MutexLock lock(&mu_);
    watch_done_ = false;
    gone_ = false;
    watch_end_ = absl::OkStatus();
    wo.resource_version = rv_;
  }
  wo.label_selector = options_.label_selector;
  wo.field_selector = options_.field_selector;
  wo.allow_bookmarks = true;
  wo.timeout_seconds = options_.watch_timeout_seconds;
  auto watch = client_->StartWatch(
      resource_, ns_, wo, [this](const WatchEvent& ev) { HandleEvent(ev); },
      [this](const absl::Status& s) {
        absl::MutexLock lock(&mu_);
        watch_done_ = true;
        watch_end_ = s;
      });
  if (!watch.ok()) {
    if (absl::IsOutOfRange(watch.status())) return WatchOutcome::kGone;
    *error = watch.status();
    return WatchOutcome::kFailed;
  }
  while (true) {
    absl::Time deadline;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithDeadline(
          absl::Condition(
              +[](Informer* i) { return i->watch_done_ || i->stopped_ || i->gone_; }, this),
          next_resync_);
      if (watch_done_ || stopped_ || gone_) break;
      deadline = next_resync_;
    }
    if (absl::Now() >= deadline) Resync();
  }
  (*watch)->Cancel();
  watch->reset();  // waits for on_end
  absl::MutexLock lock(&mu_);
  if (stopped_) return WatchOutcome::kEnded;
  if (gone_ || absl::IsOutOfRange(watch_end_)) return WatchOutcome::kGone;
  if (watch_end_.ok()) return WatchOutcome::kEnded;
  *error = watch_end_;
  return WatchOutcome::kFailed;
}

}  // namespace pgbranch::kube
