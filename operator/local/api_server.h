#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "common/cpprest.h"
#include "operator/local/branch_credentials.h"
#include "operator/local/controller.h"

// The local controller's HTTP API (docs/local-mode-internals.md): the stand-in for the
// Kubernetes API server that the CLI and the proxy talk to. Listens on 127.0.0.1 only.
namespace pgbranch::cli {

class ApiServer {
 public:
  // `advance_clock`, when set, enables POST /v1/debug/advance-clock?by=D (test clock only).
  ApiServer(Controller* controller, std::function<void(absl::Duration)> advance_clock);
  ~ApiServer();

  // With credentials, GET /v1/routes gives each endpoint's role and the SCRAM verifier of its
  // branch, which the proxy checks clients against before it wakes anything. Call before
  // Listen(); not owned.
  void SetCredentials(const BranchCredentials* credentials) { credentials_ = credentials; }

  // Listens on 127.0.0.1:port (0: a free port); returns the port.
  absl::StatusOr<int> Listen(int port);
  // Stops listening and waits (bounded) for the handlers in flight.
  void Close();

 private:
  void Handle(web::http::http_request request);

  Controller* const controller_;
  const BranchCredentials* credentials_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;  // handlers running; Close() waits for none. GUARDED_BY(mu_)
  std::function<void(absl::Duration)> advance_clock_;
  std::unique_ptr<web::http::experimental::listener::http_listener> listener_;
};

// absl status code → HTTP status.
web::http::status_code HttpStatusFor(const absl::Status& s);

}  // namespace pgbranch::cli
