#include "common/frame_io.h"

#include <errno.h>
#include <sys/socket.h>

#include <algorithm>
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
  if (end_ - off_ < 4) return absl::OkStatus();
  const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + off_);
  uint32_t n = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
  if (n > max_) {
    return absl::InvalidArgumentError(
        absl::StrCat("a frame of ", n, " bytes is over the limit of ", max_, " bytes"));
  }
  if (end_ - off_ - 4 >= n) {
    *size = n;
  } else {
    *size = -1 - static_cast<long long>(n);  // not all buffered: -1 - its size
  }
  return absl::OkStatus();
}

void FrameReader::Compact() {
  if (off_ > 0 && (off_ == end_ || off_ >= (1u << 20))) {
    std::memmove(buf_.data(), buf_.data() + off_, end_ - off_);
    end_ -= off_;
    off_ = 0;
  }
}

absl::Status FrameReader::NextHeld(bool block, std::string_view* frame) {
  if (!held_) {
    Compact();
    held_ = true;
  }
  return Next(block, frame);
}

void FrameReader::Release() {
  held_ = false;
  retired_.clear();
  const size_t pending = end_ - off_;
  // Rounds of small frames since the last big one: a bulk connection keeps its buffer (no
  // regrowth, zero-filled, per frame), one whose burst is over gives it back.
  if (pending <= kKeepBytes / 2 && largest_ <= kKeepBytes / 4) {
    ++small_rounds_;
  } else {
    small_rounds_ = 0;
  }
  largest_ = 0;
  if (buf_.capacity() > kKeepBytes && small_rounds_ >= kShrinkAfterRounds) {
    std::string smaller(pending + kReadBytes, '\0');
    std::memcpy(smaller.data(), buf_.data() + off_, pending);
    buf_ = std::move(smaller);
    last_ = 0;
    off_ = 0;
    end_ = pending;
  }
}

absl::Status FrameReader::Next(bool block, std::string_view* frame) {
  // Drop what was consumed before reading more (the caller is done with the last frame, and
  // holds none).
  if (!held_) Compact();
  if (block) drained_ = false;
  bool tried = false;
  while (true) {
    long long size;
    absl::Status s = Peek(&size);
    if (!s.ok()) return s;
    if (size >= 0) {
      last_ = off_;
      largest_ = std::max(largest_, static_cast<size_t>(size));
      *frame = std::string_view(buf_.data() + off_ + 4, static_cast<size_t>(size));
      off_ += 4 + static_cast<size_t>(size);
      return absl::OkStatus();
    }
    if (!block && (tried || drained_)) return absl::UnavailableError("no whole frame received yet");
    tried = true;
    // Room for 256 KiB more, or for the rest of the current frame if its header is in. buf_ only
    // grows (each growth zero-fills once), so reads on the commit path write into room that is
    // already there.
    size_t want = kReadBytes;
    // The rest of the current frame, if its header is in (at least one byte more otherwise).
    size_t rest = size < -1 ? off_ + 4 + static_cast<size_t>(-1 - size) - end_ : 1;
    want = std::max(want, rest);
    if (buf_.size() < end_ + want) {
      if (!held_ || off_ == 0) {
        buf_.resize(end_ + want);
      } else if (buf_.size() < end_ + std::max(rest, kMinRoom)) {
        // Held frames point into buf_: move the unconsumed bytes to a new, bigger buffer and
        // keep the old one until Release. Grown geometrically up to kKeepBytes of spare room,
        // by what a frame needs beyond that.
        std::string bigger(end_ - off_ + want + std::min(buf_.size(), kKeepBytes), '\0');
        std::memcpy(bigger.data(), buf_.data() + off_, end_ - off_);
        retired_.push_back(std::move(buf_));
        buf_ = std::move(bigger);
        end_ -= off_;
        last_ = last_ >= off_ ? last_ - off_ : 0;
        off_ = 0;
      }  // else: read into the room there is (the frame's rest fits)
    }
    ssize_t n;
    do {
      n = ::recv(fd_, buf_.data() + end_, buf_.size() - end_, block ? 0 : MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
      drained_ = static_cast<size_t>(n) < buf_.size() - end_;
      end_ += static_cast<size_t>(n);
    }
    if (n < 0 && !block && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return absl::UnavailableError("no whole frame received yet");
    }
    if (n <= 0) {
      std::string why = n == 0 ? "closed" : std::string("broke: ") + std::strerror(errno);
      if (end_ == off_) return absl::CancelledError(absl::StrCat("the connection ", why));
      return absl::DataLossError(absl::StrCat("the connection ", why, " in the middle of a frame"));
    }
  }
}

}  // namespace pgbranch
