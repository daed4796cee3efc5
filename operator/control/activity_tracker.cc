#include "operator/control/activity_tracker.h"

namespace pgbranch::control {

void ActivityTracker::RecordWake(const std::string& key, absl::Time now) {
  std::lock_guard<std::mutex> l(mu_);
  by_key_[key].last_wake = now;
}

void ActivityTracker::SetConnections(const std::map<std::string, int>& counts, absl::Time now) {
  std::lock_guard<std::mutex> l(mu_);
  last_report_ = now;
  for (auto& [key, a] : by_key_) a.connections = 0;
  for (const auto& [key, n] : counts) {
    Activity& a = by_key_[key];
    a.connections = n;
    if (n > 0) a.last_connected = now;
  }
}

void ActivityTracker::ExpireReports(absl::Time now, absl::Duration stale_after) {
  std::lock_guard<std::mutex> l(mu_);
  if (now - last_report_ <= stale_after) return;
  for (auto& [key, a] : by_key_) a.connections = 0;
}

ActivityTracker::Activity ActivityTracker::Get(const std::string& key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_key_.find(key);
  return it == by_key_.end() ? Activity{} : it->second;
}

}  // namespace pgbranch::control
