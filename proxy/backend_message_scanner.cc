#include "proxy/backend_message_scanner.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace pgbranch::proxy {

absl::Status BackendMessageScanner::Feed(const char* data, size_t n) {
  if (failed_) return absl::InvalidArgumentError("malformed message from the server");
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  size_t i = 0;
  while (i < n && !ready_) {
    if (body_left_ == 0 && header_len_ < 5) {
      header_[header_len_++] = p[i++];
      if (header_len_ < 5) continue;
      uint32_t len = (uint32_t{header_[1]} << 24) | (uint32_t{header_[2]} << 16) |
                     (uint32_t{header_[3]} << 8) | uint32_t{header_[4]};
      if (len < 4) {
        failed_ = true;
        return absl::InvalidArgumentError(absl::StrCat("malformed message from the server: type ",
                                                       static_cast<int>(header_[0]), " length ",
                                                       len));
      }
      body_left_ = len - 4;
      in_key_body_ = header_[0] == 'K' && body_left_ == 8;
      key_len_ = 0;
      if (header_[0] == 'Z') ready_ = true;
      if (body_left_ == 0) header_len_ = 0;
      continue;
    }
    size_t take = std::min<size_t>(body_left_, n - i);
    if (in_key_body_) {
      std::copy(p + i, p + i + take, key_body_ + key_len_);
      key_len_ += take;
      if (key_len_ == 8) {
        pid_ = (uint32_t{key_body_[0]} << 24) | (uint32_t{key_body_[1]} << 16) |
               (uint32_t{key_body_[2]} << 8) | uint32_t{key_body_[3]};
        key_ = (uint32_t{key_body_[4]} << 24) | (uint32_t{key_body_[5]} << 16) |
               (uint32_t{key_body_[6]} << 8) | uint32_t{key_body_[7]};
        has_key_ = true;
      }
    }
    i += take;
    body_left_ -= static_cast<uint32_t>(take);
    if (body_left_ == 0) header_len_ = 0;
  }
  return absl::OkStatus();
}

}  // namespace pgbranch::proxy
