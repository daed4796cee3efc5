#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proxy/control_client.h"

namespace pgbranch::proxy {

// ControlClient over the controller's HTTP/JSON API (cpprestsdk). Thread-safe; cpprest
// exceptions are caught here and turned into statuses.
class HttpControlClient : public ControlClient {
 public:
  // `base_url`: http://HOST:PORT of the controller. Wake() gives up after `wake_timeout`.
  static absl::StatusOr<std::unique_ptr<HttpControlClient>> Create(const std::string& base_url,
                                                                   absl::Duration wake_timeout);
  ~HttpControlClient() override;

  absl::StatusOr<BackendAddress> Wake(const std::string& endpoint) override;
  absl::StatusOr<RouteTable> WatchRoutes(int64_t applied_version, int wait_seconds) override;
  absl::Status ReportActivity(const std::map<std::string, int>& connections) override;
  void Shutdown() override;

 private:
  struct Impl;
  explicit HttpControlClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgbranch::proxy
