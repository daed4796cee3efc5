#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// What the proxy needs from the controller (docs/local-mode-internals.md, "Controller API").
namespace pgbranch::proxy {

// Where an awake endpoint's PostgreSQL accepts connections.
struct BackendAddress {
  std::string host;
  int port = 0;
};

// One per-endpoint listener the proxy must open, with what clients authenticate against.
struct Route {
  std::string endpoint;
  int port = 0;
  std::string role;      // the login role of the endpoint's branch ("" when not given)
  std::string verifier;  // its SCRAM-SHA-256 verifier, as in pg_authid ("" when not given)
  bool operator==(const Route&) const = default;
};

// What the proxy checks a client's password against before it wakes the endpoint: the login
// role of the endpoint's branch and its SCRAM-SHA-256 verifier (the compute's role holds the
// same verifier, so the proxy can log in to it with the client's proof).
struct EndpointCredentials {
  std::string role;
  std::string verifier;
};

struct RouteTable {
  int64_t version = 0;
  std::vector<Route> routes;
};

// The controller as the proxy sees it. Implementations must be thread-safe: every client
// connection calls Wake() from its own thread while the route watcher and the activity reporter
// call the others.
class ControlClient {
 public:
  virtual ~ControlClient() = default;

  // Makes sure `endpoint`'s PostgreSQL accepts connections (starting its compute if suspended)
  // and returns its address; also records activity. Errors, with a message for a person:
  // NotFound (no such endpoint), Unavailable (waking failed, controller unreachable),
  // DeadlineExceeded (the wake took longer than the client's wake timeout).
  virtual absl::StatusOr<BackendAddress> Wake(const std::string& endpoint) = 0;

  // Long poll: returns the route table once its version differs from `applied_version` (at
  // once if it already does), or the unchanged table after about `wait_seconds`. Passing
  // `applied_version` tells the controller the proxy listens on every port of that version.
  virtual absl::StatusOr<RouteTable> WatchRoutes(int64_t applied_version, int wait_seconds) = 0;

  // The credentials clients of `endpoint` must prove; nullopt when the controller gives none
  // (then PostgreSQL authenticates the client itself, after the wake). Must not wake anything
  // or block long. The default knows none (the Kubernetes mode today).
  virtual absl::StatusOr<std::optional<EndpointCredentials>> Credentials(
      const std::string& endpoint) {
    (void)endpoint;
    return std::optional<EndpointCredentials>();
  }

  // Reports the open client connections per endpoint.
  virtual absl::Status ReportActivity(const std::map<std::string, int>& connections) = 0;

  // Makes Wake() and WatchRoutes() calls in progress and later ones fail fast (Cancelled); used
  // at shutdown. ReportActivity() keeps working (bounded by its own timeout) so that the last
  // report can say the connections are gone.
  virtual void Shutdown() = 0;
};

}  // namespace pgbranch::proxy
