#include "operator/kube/work_queue.h"

#include <algorithm>
#include <cmath>

namespace pgbranch::kube {

void WorkQueue::AddLocked(const std::string& key) {
  if (shutdown_) return;
  if (processing_.count(key)) {
    dirty_.insert(key);
    return;
  }
  if (queued_.count(key)) return;
  uint64_t order = next_order_++;
  queued_[key] = order;
  queue_.insert({order, key});
  cv_.Signal();
}

void WorkQueue::Add(const std::string& key) {
  absl::MutexLock lock(&mu_);
  AddLocked(key);
}

void WorkQueue::AddAfter(const std::string& key, absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  if (shutdown_) return;
  if (delay <= absl::ZeroDuration()) {
    AddLocked(key);
    return;
  }
  absl::Time at = absl::Now() + delay;
  auto it = delayed_at_.find(key);
  if (it != delayed_at_.end()) {
    if (it->second <= at) return;  // the earlier time wins
    delayed_.erase({it->second, key});
  }
  delayed_at_[key] = at;
  delayed_.insert({at, key});
  cv_.SignalAll();  // a waiting Get() may need an earlier deadline
}

void WorkQueue::AddRateLimited(const std::string& key) {
  absl::Duration delay;
  {
    absl::MutexLock lock(&mu_);
    int n = failures_[key]++;
    double factor = std::ldexp(1.0, std::min(n, 40));
    delay = std::min(options_.base_delay * factor, options_.max_delay);
  }
  AddAfter(key, delay);
}

void WorkQueue::Forget(const std::string& key) {
  absl::MutexLock lock(&mu_);
  failures_.erase(key);
}

int WorkQueue::NumRequeues(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

void WorkQueue::PromoteDueLocked(absl::Time now) {
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    std::string key = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    delayed_at_.erase(key);
    AddLocked(key);
  }
}

std::optional<std::string> WorkQueue::Get() {
  absl::MutexLock lock(&mu_);
  while (true) {
    if (shutdown_) return std::nullopt;
    PromoteDueLocked(absl::Now());
    if (!queue_.empty()) break;
    if (delayed_.empty()) {
      cv_.Wait(&mu_);
    } else {
      cv_.WaitWithDeadline(&mu_, delayed_.begin()->first);
    }
  }
  std::string key = queue_.begin()->second;
  queue_.erase(queue_.begin());
  queued_.erase(key);
  processing_.insert(key);
  return key;
}

void WorkQueue::Done(const std::string& key) {
  absl::MutexLock lock(&mu_);
  processing_.erase(key);
  if (dirty_.erase(key)) AddLocked(key);
}

void WorkQueue::ShutDown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
  cv_.SignalAll();
}

bool WorkQueue::ShuttingDown() {
  absl::MutexLock lock(&mu_);
  return shutdown_;
}

size_t WorkQueue::Len() {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

size_t WorkQueue::DelayedLen() {
  absl::MutexLock lock(&mu_);
  return delayed_.size();
}

}  // namespace pgbranch::kube
