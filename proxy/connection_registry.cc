#include "proxy/connection_registry.h"

namespace pgbranch::proxy {

void ConnectionRegistry::Open(const std::string& endpoint) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++counts_[endpoint];
    ++total_;
    ++version_;
  }
  cv_.notify_all();
}

void ConnectionRegistry::Close(const std::string& endpoint) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = counts_.find(endpoint);
    if (it == counts_.end() || it->second == 0) return;  // unmatched: ignore, never go negative
    --it->second;
    --total_;
    ++version_;
  }
  cv_.notify_all();
}

std::map<std::string, int> ConnectionRegistry::Snapshot(uint64_t* version) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (version != nullptr) *version = version_;
  return counts_;
}

int ConnectionRegistry::Count(const std::string& endpoint) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counts_.find(endpoint);
  return it == counts_.end() ? 0 : it->second;
}

int ConnectionRegistry::Total() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}

uint64_t ConnectionRegistry::WaitForChange(uint64_t seen,
                                           std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, deadline, [&] { return version_ != seen || shutdown_; });
  return version_;
}

void ConnectionRegistry::PruneZeros(const std::map<std::string, int>& reported) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [endpoint, n] : reported) {
    if (n != 0) continue;
    auto it = counts_.find(endpoint);
    if (it != counts_.end() && it->second == 0) counts_.erase(it);
  }
}

void ConnectionRegistry::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
  }
  cv_.notify_all();
}

}  // namespace pgbranch::proxy
