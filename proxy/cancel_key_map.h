#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "proxy/control_client.h"

namespace pgbranch::proxy {

// Where a CancelRequest quoting (pid, key) must go: the PostgreSQL server that sent that
// BackendKeyData on a proxied connection.
struct CancelTarget {
  std::string endpoint;
  BackendAddress backend;
};

// (backend pid, cancel key) -> CancelTarget for every proxied session that is still open.
// Sessions add their key once PostgreSQL sent it and remove it when they end, so a stale key
// cannot cancel someone else's query. Thread-safe.
class CancelKeyMap {
 public:
  void Add(uint32_t pid, uint32_t key, CancelTarget target);
  void Remove(uint32_t pid, uint32_t key);
  std::optional<CancelTarget> Find(uint32_t pid, uint32_t key) const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<uint32_t, uint32_t>, CancelTarget> targets_;  // GUARDED_BY(mu_)
};

}  // namespace pgbranch::proxy
