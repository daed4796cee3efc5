#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proxy/control_client.h"

namespace pgbranch::proxy {

// ControlClient over the controller's HTTP/JSON API (cpprestsdk). Thread-safe; cpprest
// exceptions are caught here and turned into statuses.
//
// While the controller is unreachable, Wake() still answers for an endpoint whose compute runs:
// with the address of its last wake, once that compute's agent confirms it is this endpoint's
// and running. Any other wake fails with a message telling to run `pgbranch local up`.
class HttpControlClient : public ControlClient {
 public:
  // `base_url`: http://HOST:PORT of the controller. Wake() gives up after `wake_timeout`.
  static absl::StatusOr<std::unique_ptr<HttpControlClient>> Create(const std::string& base_url,
                                                                   absl::Duration wake_timeout);
  ~HttpControlClient() override;

  absl::StatusOr<BackendAddress> Wake(const std::string& endpoint) override;
  absl::StatusOr<RouteTable> WatchRoutes(int64_t applied_version, int wait_seconds) override;
  // From the newest route table seen (so it keeps working while the controller is down); an
  // endpoint missing from it makes one immediate GET /v1/routes?version=0&wait=0 (which
  // acknowledges nothing), for an endpoint created a moment ago.
  absl::StatusOr<std::optional<EndpointCredentials>> Credentials(
      const std::string& endpoint) override;
  absl::Status ReportActivity(const std::map<std::string, int>& connections) override;
  void Shutdown() override;

 private:
  struct Impl;
  explicit HttpControlClient(std::unique_ptr<Impl> impl);
  absl::StatusOr<BackendAddress> WakeWithoutController(const std::string& endpoint);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgbranch::proxy
