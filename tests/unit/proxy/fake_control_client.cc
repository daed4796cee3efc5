#include "tests/unit/proxy/fake_control_client.h"

namespace pgbranch::proxy::testing {

absl::StatusOr<BackendAddress> FakeControlClient::Wake(const std::string& endpoint) {
  std::lock_guard<std::mutex> lock(mu_);
  ++wake_calls_;
  return wake_result_;
}

absl::StatusOr<RouteTable> FakeControlClient::WatchRoutes(int64_t applied_version,
                                                          int wait_seconds) {
  std::unique_lock<std::mutex> lock(mu_);
  polled_.push_back(applied_version);
  cv_.notify_all();
  if (shutdown_) return absl::CancelledError("shut down");
  if (fail_polls_ > 0) {
    --fail_polls_;
    return absl::UnavailableError("controller down");
  }
  cv_.wait_for(lock, std::chrono::seconds(wait_seconds),
               [&] { return routes_.version != applied_version || shutdown_; });
  if (shutdown_) return absl::CancelledError("shut down");
  return routes_;
}

absl::Status FakeControlClient::ReportActivity(const std::map<std::string, int>& connections) {
  std::lock_guard<std::mutex> lock(mu_);
  reports_.push_back(connections);
  cv_.notify_all();
  return activity_status_;
}

void FakeControlClient::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_ = true;
  cv_.notify_all();
}

void FakeControlClient::SetWakeResult(absl::StatusOr<BackendAddress> result) {
  std::lock_guard<std::mutex> lock(mu_);
  wake_result_ = std::move(result);
}

void FakeControlClient::SetRoutes(RouteTable table) {
  std::lock_guard<std::mutex> lock(mu_);
  routes_ = std::move(table);
  cv_.notify_all();
}

void FakeControlClient::FailNextPolls(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_polls_ = n;
}

void FakeControlClient::SetActivityStatus(absl::Status s) {
  std::lock_guard<std::mutex> lock(mu_);
  activity_status_ = std::move(s);
}

std::vector<int64_t> FakeControlClient::polled_versions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return polled_;
}

std::vector<std::map<std::string, int>> FakeControlClient::reports() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reports_;
}

int FakeControlClient::wake_calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return wake_calls_;
}

bool FakeControlClient::WaitUntil(const std::function<bool()>& pred,
                                  std::chrono::milliseconds max) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, max, pred);
}

}  // namespace pgbranch::proxy::testing
