#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "proxy/control_client.h"

namespace pgbranch::proxy::testing {

// An in-memory controller. WatchRoutes() behaves like the real long poll (returns when the
// table's version differs from the caller's, else waits up to `wait_seconds`) and records the
// versions callers acknowledged; ReportActivity() records every report. Thread-safe.
class FakeControlClient : public ControlClient {
 public:
  absl::StatusOr<BackendAddress> Wake(const std::string& endpoint) override;
  absl::StatusOr<RouteTable> WatchRoutes(int64_t applied_version, int wait_seconds) override;
  absl::Status ReportActivity(const std::map<std::string, int>& connections) override;
  void Shutdown() override;

  void SetWakeResult(absl::StatusOr<BackendAddress> result);
  void SetRoutes(RouteTable table);
  // The next `n` WatchRoutes() calls fail with Unavailable.
  void FailNextPolls(int n);
  void SetActivityStatus(absl::Status s);

  std::vector<int64_t> polled_versions() const;
  std::vector<std::map<std::string, int>> reports() const;
  int wake_calls() const;

  // Waits (up to `max`) until `pred` holds; `pred` runs under the fake's lock, so it must only
  // look at the fake through the unlocked accessors below.
  bool WaitUntil(const std::function<bool()>& pred,
                 std::chrono::milliseconds max = std::chrono::seconds(30));
  // Unlocked views for WaitUntil predicates.
  const std::vector<int64_t>& polled_versions_locked() const { return polled_; }
  const std::vector<std::map<std::string, int>>& reports_locked() const { return reports_; }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  absl::StatusOr<BackendAddress> wake_result_ = BackendAddress{"127.0.0.1", 1};
  int wake_calls_ = 0;
  RouteTable routes_;
  int fail_polls_ = 0;
  absl::Status activity_status_;
  bool shutdown_ = false;
  std::vector<int64_t> polled_;
  std::vector<std::map<std::string, int>> reports_;
};

}  // namespace pgbranch::proxy::testing
