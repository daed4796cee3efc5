#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"

namespace pgbranch::proxy {

// Watches the bytes PostgreSQL sends during connection startup (authentication, ParameterStatus,
// BackendKeyData, ReadyForQuery) without buffering them: the relay forwards every byte as it
// arrives and feeds a copy here. Messages may be split across Feed() calls at any byte.
//
// Records the BackendKeyData ('K') that a CancelRequest for this session must quote, and notices
// the first ReadyForQuery ('Z'), after which the session is established and the proxy stops
// parsing. Not thread-safe (one relay thread owns it).
class BackendMessageScanner {
 public:
  // Scans `n` more bytes. InvalidArgument when a message header is malformed (length < 4), after
  // which the scanner stays failed. Bytes after the first ReadyForQuery are ignored.
  absl::Status Feed(const char* data, size_t n);

  bool ready() const { return ready_; }
  bool has_key() const { return has_key_; }
  uint32_t backend_pid() const { return pid_; }
  uint32_t cancel_key() const { return key_; }

 private:
  // Header being assembled: type byte + 4-byte length.
  unsigned char header_[5] = {};
  size_t header_len_ = 0;
  // Body of the current message still to consume (0: expecting a header).
  uint32_t body_left_ = 0;
  bool in_key_body_ = false;  // the current body is BackendKeyData's
  unsigned char key_body_[8] = {};
  size_t key_len_ = 0;
  bool ready_ = false;
  bool has_key_ = false;
  bool failed_ = false;
  uint32_t pid_ = 0;
  uint32_t key_ = 0;
};

}  // namespace pgbranch::proxy
