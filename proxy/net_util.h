#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

// Small socket helpers shared by the listeners and the backend side of a session.
namespace pgbranch::proxy {

struct HostPort {
  std::string host;
  int port = 0;
};

// "HOST:PORT" or "[V6]:PORT"; PORT 0..65535.
absl::StatusOr<HostPort> ParseHostPort(const std::string& address);

// A listening TCP socket (SO_REUSEADDR, close-on-exec, non-blocking) bound to host:port
// (port 0: the kernel picks). Returns the descriptor; `*bound_port` gets the actual port.
absl::StatusOr<int> ListenTcp(const std::string& host, int port, int* bound_port);

// Connects to host:port within `timeout`; returns a blocking, close-on-exec socket with
// TCP_NODELAY set.
absl::StatusOr<int> ConnectTcp(const std::string& host, int port, absl::Duration timeout);

// TCP_NODELAY: the relay forwards whole protocol messages and must not wait for more.
void SetNoDelay(int fd);

}  // namespace pgbranch::proxy
