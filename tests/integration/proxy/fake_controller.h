#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proxy/control_client.h"

namespace pgbranch::proxy::testing {

// The proxy's side of the local controller's HTTP API (docs/local-mode-internals.md), served on
// 127.0.0.1 by a cpprest listener: POST /v1/endpoints/NAME/wake, GET /v1/routes (long poll),
// POST /v1/proxy/activity. Tests script it (known endpoints, wake failures and delays, the route
// table) and read what the proxy did (wake calls, acknowledged route versions, activity).
// Thread-safe.
class FakeController {
 public:
  FakeController();
  ~FakeController();

  absl::Status Start();
  std::string url() const { return url_; }

  void AddEndpoint(const std::string& name, proxy::BackendAddress address);
  // Wake of `name` answers `code` with {"message": message} (e.g. 503).
  void FailWake(const std::string& name, int code, const std::string& message);
  // Wake of `name` answers only after `delay`.
  void DelayWake(const std::string& name, std::chrono::milliseconds delay);
  int wake_calls(const std::string& name) const;

  // Replaces the route table; returns its new version.
  int64_t SetRoutes(std::vector<proxy::Route> routes);
  // Waits until the proxy polled with `version` (= listens on every port of it).
  bool WaitForAck(int64_t version, std::chrono::seconds max = std::chrono::seconds(30));
  // Waits until an activity report says `endpoint` has `n` connections (absent counts as 0).
  bool WaitForActivity(const std::string& endpoint, int n,
                       std::chrono::seconds max = std::chrono::seconds(30));
  int activity_reports() const;

 private:
  struct Impl;
  struct EndpointState {
    proxy::BackendAddress address;
    int fail_code = 0;
    std::string fail_message;
    std::chrono::milliseconds delay{0};
    int wake_calls = 0;
  };

  std::string url_;
  std::unique_ptr<Impl> impl_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, EndpointState> endpoints_;  // GUARDED_BY(mu_)
  int64_t routes_version_ = 1;                      // GUARDED_BY(mu_)
  std::vector<proxy::Route> routes_;                // GUARDED_BY(mu_)
  std::vector<int64_t> acked_;                      // GUARDED_BY(mu_)
  std::map<std::string, int> last_activity_;        // GUARDED_BY(mu_)
  int activity_reports_ = 0;                        // GUARDED_BY(mu_)
  bool stopping_ = false;                           // GUARDED_BY(mu_)
  int in_flight_ = 0;                               // handlers running; GUARDED_BY(mu_)
};

}  // namespace pgbranch::proxy::testing
