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

// The send buffer asked for on the channel's socket. A Unix stream socket queues at most its
// sender's send buffer (212 KiB by default): while the pageserver commits one round (log write,
// fdatasync, apply), the next commits of a bulk load -- up to 4 MiB each -- then wait in the
// writer, and cross in 212 KiB steps of one thread wakeup each once it reads again. With room for
// a few of them, they are in the socket by the time the pageserver reads.
inline constexpr int kCommitSendBufferBytes = 8 << 20;
void SetCommitSendBuffer(int fd);

// Connects to `address` and sends the hello with `authorization` ("Bearer TOKEN" or empty).
// A pageserver that is restarting (no socket yet, or refusing) is retried until `wait` passes.
// Returns the connected socket (the caller owns it).
absl::StatusOr<int> ConnectCommitChannel(const std::string& address,
                                         const std::string& authorization,
                                         std::chrono::milliseconds wait);

}  // namespace pgbranch::pagefs
