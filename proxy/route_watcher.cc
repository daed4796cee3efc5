#include "proxy/route_watcher.h"

#include <algorithm>

#include "common/log.h"

namespace pgbranch::proxy {

using SteadyClock = std::chrono::steady_clock;

RouteWatcher::RouteWatcher(ControlClient* control, ApplyFn apply, Options options)
    : control_(control), apply_(std::move(apply)), options_(options) {}

RouteWatcher::~RouteWatcher() { Stop(); }

void RouteWatcher::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void RouteWatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t RouteWatcher::applied_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return applied_version_;
}

bool RouteWatcher::Sleep(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, d, [this] { return stop_; });
  return !stop_;
}

void RouteWatcher::Loop() {
  int64_t applied = 0;
  bool applied_once = false;
  bool failing = false;
  std::string last_apply_error;  // logged once until it changes
  std::chrono::milliseconds backoff = options_.initial_backoff;
  auto back_off = [&] {
    bool go_on = Sleep(backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
    return go_on;
  };
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    SteadyClock::time_point started = SteadyClock::now();
    absl::StatusOr<RouteTable> table = control_->WatchRoutes(applied, options_.wait_seconds);
    if (!table.ok()) {
      if (absl::IsCancelled(table.status())) return;
      if (!failing) {
        LogWarning("Cannot fetch the route table; retrying",
                   {{"error", table.status().ToString()}});
        failing = true;
      }
      if (!back_off()) return;
      continue;
    }
    if (failing) LogInfo("Fetched the route table again");
    failing = false;
    if (applied_once && table->version == applied) {
      // Unchanged after the long poll. A poll that came back at once with nothing new would
      // otherwise spin: pace it.
      if (SteadyClock::now() - started < options_.initial_backoff &&
          !Sleep(options_.initial_backoff)) {
        return;
      }
      backoff = options_.initial_backoff;
      continue;
    }
    absl::Status s = apply_(*table);
    if (!s.ok()) {
      if (s.ToString() != last_apply_error) {
        LogWarning("Cannot apply the route table; retrying",
                   {{"version", std::to_string(table->version)}, {"error", s.ToString()}});
        last_apply_error = s.ToString();
      }
      if (!back_off()) return;
      continue;
    }
    applied = table->version;
    applied_once = true;
    last_apply_error.clear();
    backoff = options_.initial_backoff;
    {
      std::lock_guard<std::mutex> lock(mu_);
      applied_version_ = applied;
    }
    LogInfo("Applied the route table", {{"version", std::to_string(applied)},
                                        {"routes", std::to_string(table->routes.size())}});
  }
}

}  // namespace pgbranch::proxy
