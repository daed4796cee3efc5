#include "proxy/cancel_key_map.h"

namespace pgbranch::proxy {

void CancelKeyMap::Add(uint32_t pid, uint32_t key, CancelTarget target) {
  std::lock_guard<std::mutex> lock(mu_);
  targets_[{pid, key}] = std::move(target);
}

void CancelKeyMap::Remove(uint32_t pid, uint32_t key) {
  std::lock_guard<std::mutex> lock(mu_);
  targets_.erase({pid, key});
}

std::optional<CancelTarget> CancelKeyMap::Find(uint32_t pid, uint32_t key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = targets_.find({pid, key});
  if (it == targets_.end()) return std::nullopt;
  return it->second;
}

size_t CancelKeyMap::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return targets_.size();
}

}  // namespace pgbranch::proxy
