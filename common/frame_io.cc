#include "common/frame_io.h"

#include <errno.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace pgbranch {

void AppendFrame(std::string_view payload, std::string* out) {
  uint32_t n = static_cast<uint32_t>(payload.size());
  char len[4] = {static_cast<char>(n), static_cast<char>(n >> 8), static_cast<char>(n >> 16),
                 static_cast<char>(n >> 24)};
  out->append(len, 4);
  out->append(payload);
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

absl::Status FrameReader::Peek(long long* size) const {
  *size = -1;
  if (buf_.size() - off_ < 4) return absl::OkStatus();
  const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + off_);
  uint32_t n = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
  if (n > max_) {
    return absl::InvalidArgumentError(
        absl::StrCat("a frame of ", n, " bytes is over the limit of ", max_, " bytes"));
  }
  if (buf_.size() - off_ - 4 >= n) *size = n;
  return absl::OkStatus();
}

absl::Status FrameReader::Next(bool block, std::string_view* frame) {
  // Drop what was consumed before reading more (the caller is done with the last frame).
  if (off_ > 0 && (off_ == buf_.size() || off_ >= (1u << 20))) {
    buf_.erase(0, off_);
    off_ = 0;
  }
  bool tried = false;
  while (true) {
    long long size;
    absl::Status s = Peek(&size);
    if (!s.ok()) return s;
    if (size >= 0) {
      last_ = off_;
      *frame = std::string_view(buf_.data() + off_ + 4, static_cast<size_t>(size));
      off_ += 4 + static_cast<size_t>(size);
      return absl::OkStatus();
    }
    if (!block && tried) return absl::UnavailableError("no whole frame received yet");
    tried = true;
    size_t have = buf_.size();
    size_t want = 256 << 10;
    if (have - off_ >= 4) {  // the rest of the current frame, at least
      const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + off_);
      size_t n = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<size_t>(p[3]) << 24);
      size_t missing = off_ + 4 + n - have;
      if (missing > want) want = missing;
    }
    buf_.resize(have + want);
    ssize_t n;
    do {
      n = ::recv(fd_, buf_.data() + have, want, block ? 0 : MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    buf_.resize(have + (n > 0 ? static_cast<size_t>(n) : 0));
    if (n < 0 && !block && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return absl::UnavailableError("no whole frame received yet");
    }
    if (n <= 0) {
      std::string why = n == 0 ? "closed" : std::string("broke: ") + std::strerror(errno);
      if (buf_.size() == off_) return absl::CancelledError(absl::StrCat("the connection ", why));
      return absl::DataLossError(absl::StrCat("the connection ", why, " in the middle of a frame"));
    }
  }
}

}  // namespace pgbranch
