#pragma once

#include <chrono>
#include <string>

#include "absl/status/statusor.h"

namespace pgbranch::pagefs {

// The client end of the pageserver's commit channel (pageserver --commit-socket PATH;
// pageserver/server/commit_socket_server.h has the wire format).

// Checks a --commit-channel address: "unix:PATH", PATH absolute and short enough for a Unix
// socket. Returns PATH.
absl::StatusOr<std::string> CommitChannelPath(const std::string& address);

// Connects to `address` and sends the hello with `authorization` ("Bearer TOKEN" or empty).
// A pageserver that is restarting (no socket yet, or refusing) is retried until `wait` passes.
// Returns the connected socket (the caller owns it).
absl::StatusOr<int> ConnectCommitChannel(const std::string& address,
                                         const std::string& authorization,
                                         std::chrono::milliseconds wait);

}  // namespace pgbranch::pagefs
