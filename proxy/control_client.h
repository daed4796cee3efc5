#pragma once

#include <cstdint>
#include <map>
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

// One per-endpoint listener the proxy must open.
struct Route {
  std::string endpoint;
  int port = 0;
  bool operator==(const Route&) const = default;
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

  // Reports the open client connections per endpoint.
  virtual absl::Status ReportActivity(const std::map<std::string, int>& connections) = 0;

  // Makes Wake() and WatchRoutes() calls in progress and later ones fail fast (Cancelled); used
  // at shutdown. ReportActivity() keeps working (bounded by its own timeout) so that the last
  // report can say the connections are gone.
  virtual void Shutdown() = 0;
};

}  // namespace pgbranch::proxy
