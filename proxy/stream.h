#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "proxy/tls_context.h"

namespace pgbranch::proxy {

// Outcome of one non-blocking Stream::Read/Write. kWantRead/kWantWrite: retry once poll() says
// the socket is readable/writable (with TLS a read can need a write and the other way round).
enum class IoResult { kOk, kWantRead, kWantWrite, kEof, kError };

// One TCP socket, optionally wrapped in TLS (server side). Owns the descriptor and the SSL
// object; closes them on destruction. Move-only.
//
// Thread safety: none, except that ShutdownBoth() may be called from another thread while the
// descriptor is open (it only calls shutdown(2), which wakes blocked readers and writers).
// Without TLS, Read() and Write() may run concurrently on two threads (one each); with TLS they
// may not (OpenSSL objects are single-threaded).
class Stream {
 public:
  Stream() = default;
  explicit Stream(int fd) : fd_(fd) {}
  ~Stream();
  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  bool tls() const { return ssl_ != nullptr; }
  // The SNI host name the client sent in its TLS handshake ("" without TLS or SNI).
  std::string server_name() const;

  // Server-side TLS handshake on a blocking socket (bounded by its SO_RCVTIMEO/SO_SNDTIMEO).
  absl::Status AcceptTls(const TlsContext& context);

  // One read/write of up to `cap`/`len` bytes; `*n` is set on kOk. On a blocking socket kWant*
  // means the socket timeout expired.
  IoResult Read(char* buf, size_t cap, size_t* n);
  IoResult Write(const char* buf, size_t len, size_t* n);
  // Whether TLS has decrypted bytes buffered that poll() cannot see.
  bool HasPending() const { return ssl_ != nullptr && SSL_pending(ssl_) > 0; }

  // Blocking helpers for the startup phase: exactly `n` bytes / all of `data`.
  // DeadlineExceeded when the socket timeout expired, Unavailable when the peer went away.
  absl::Status ReadFull(char* buf, size_t n);
  absl::Status WriteAll(std::string_view data);

  absl::Status SetNonBlocking(bool on);
  // Sets SO_RCVTIMEO and SO_SNDTIMEO (0: none).
  absl::Status SetTimeouts(int millis);

  // Half-close: TLS close_notify (best effort), then shutdown(SHUT_WR).
  void ShutdownWrite();
  void ShutdownBoth();

  // Description of the last kError (errno or TLS errors).
  const std::string& last_error() const { return last_error_; }

  void Close();

 private:
  IoResult SslResult(int ret, bool writing, size_t* n);

  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string last_error_;
};

}  // namespace pgbranch::proxy
