#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

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
  // Next, for a frame that stays valid (with every frame NextHeld returned since the last
  // Release) until Release: a server parses a round of requests in place and commits them
  // before letting go of their bytes.
  absl::Status NextHeld(bool block, std::string_view* frame);
  // Lets go of the held frames. A buffer that a burst of large frames grew past kKeepBytes is
  // given back after kShrinkAfterRounds releases in a row with only small frames and little
  // pending, so that a connection whose bulk load is over does not pin tens of MiB.
  void Release();
  // Gives back the frame the last Next returned: the next Next returns it again.
  void Unread() { off_ = last_; }

  // The receive buffer's size (tests).
  size_t BufferBytesForTest() const { return buf_.size(); }
  static constexpr size_t kReadBytes = 256 << 10;  // the room each read asks for, at least
  static constexpr size_t kKeepBytes = 2 << 20;    // the most buffer kept after a burst
  // While frames are held, a read makes do with this much room rather than move the buffer.
  static constexpr size_t kMinRoom = 64 << 10;
  static constexpr int kShrinkAfterRounds = 16;

 private:
  // Drops the consumed bytes (no frame may be held) when that is worth a move.
  void Compact();
  // The frame at off_: its payload size if all of it is buffered; else -1 if not even its
  // length is, or -1 - its payload size.
  absl::Status Peek(long long* size) const;

  int fd_;
  size_t max_;
  // Received bytes in [0, end_); room after them. It grows in place, except while frames are
  // held: then a bigger buffer takes the unconsumed bytes and the old one is kept in retired_
  // (the held frames point into it) until Release.
  std::string buf_;
  std::vector<std::string> retired_;
  bool held_ = false;
  size_t largest_ = 0;    // the largest frame returned since the last Release
  int small_rounds_ = 0;  // Releases in a row with only small frames and little pending
  size_t end_ = 0;
  size_t off_ = 0;   // first unconsumed byte of buf_
  size_t last_ = 0;  // where the frame last returned started
  // The last recv() came back short of the room it had: the socket held nothing more then.
  // Cleared by every blocking Next (time has passed since, whatever its caller did meanwhile).
  bool drained_ = false;
};

}  // namespace pgbranch
