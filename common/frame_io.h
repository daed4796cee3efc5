#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace pgbranch {

// Length-prefixed frames on a stream socket: a 4-byte little-endian length, then that many
// bytes. The commit channel's transport (pageserver/server/commit_socket_server.h).

// The first frame a commit channel client sends: this, then an authorization header value
// ("Bearer TOKEN", or nothing).
inline constexpr std::string_view kCommitHello = "pgbranch-commit/1\n";

// Frames larger than this are refused (the pageserver's gRPC limit is 72 MiB by default).
inline constexpr size_t kMaxFrameBytes = 128u << 20;

// Appends `payload` as one frame to `out`.
void AppendFrame(std::string_view payload, std::string* out);

// Writes all of `data` (MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE). False on error.
bool WriteAll(int fd, std::string_view data);

// Reads frames from `fd` (not owned). One reader thread at a time.
class FrameReader {
 public:
  explicit FrameReader(int fd, size_t max_frame = kMaxFrameBytes) : fd_(fd), max_(max_frame) {}

  // The next frame, valid until the next call. `block`: wait for it; otherwise take only what
  // the socket already holds -- as the reads of this call and of the last blocking call found
  // it: when one of them came back short (it drained the socket, a stream socket's receive
  // hands over all it holds), no more is asked for, so the round a server makes of one request
  // after a blocking read costs no extra recv() that would find nothing (EAGAIN). Errors:
  // Unavailable (!block and no whole frame received yet), Cancelled (the peer closed the
  // connection, or it broke, between frames), DataLoss (it closed in the middle of a frame),
  // InvalidArgument (a frame over the limit).
  absl::Status Next(bool block, std::string_view* frame);
  // Gives back the frame the last Next returned: the next Next returns it again.
  void Unread() { off_ = last_; }

 private:
  // The frame at off_: its payload size if all of it is buffered; else -1 if not even its
  // length is, or -1 - its payload size.
  absl::Status Peek(long long* size) const;

  int fd_;
  size_t max_;
  std::string buf_;  // received bytes in [0, end_); room after them (only grows)
  size_t end_ = 0;
  size_t off_ = 0;   // first unconsumed byte of buf_
  size_t last_ = 0;  // where the frame last returned started
  // The last recv() came back short of the room it had: the socket held nothing more then.
  // Cleared by every blocking Next (time has passed since, whatever its caller did meanwhile).
  bool drained_ = false;
};

}  // namespace pgbranch
