#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace pgbranch::proxy {

// Open client connections per endpoint, for the activity reports and for tests.
//
// A connection counts from the moment its endpoint answered the wake until the relay ends.
// Every change bumps a version that WaitForChange() waiters observe. An endpoint whose count
// dropped to zero stays in the snapshot (so the controller hears the zero) until PruneZeros()
// after a report that carried the zero.
//
// Thread-safe. Touched once per connection open/close, never per message.
class ConnectionRegistry {
 public:
  void Open(const std::string& endpoint);
  // Requires a matching Open().
  void Close(const std::string& endpoint);

  // Current counts (zeros included until pruned) and the version they belong to.
  std::map<std::string, int> Snapshot(uint64_t* version = nullptr) const;
  int Count(const std::string& endpoint) const;
  int Total() const;

  // Blocks until the version differs from `seen`, `deadline` passes or Shutdown(); returns the
  // version then.
  uint64_t WaitForChange(uint64_t seen, std::chrono::steady_clock::time_point deadline);

  // Drops endpoints that were zero in `reported` and are still zero.
  void PruneZeros(const std::map<std::string, int>& reported);

  // Wakes every waiter; later waits return at once.
  void Shutdown();

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, int> counts_;  // GUARDED_BY(mu_)
  uint64_t version_ = 0;               // GUARDED_BY(mu_)
  int total_ = 0;                      // GUARDED_BY(mu_)
  bool shutdown_ = false;              // GUARDED_BY(mu_)
};

}  // namespace pgbranch::proxy
