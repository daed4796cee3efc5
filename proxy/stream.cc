#include "proxy/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pgbranch::proxy {

Stream::~Stream() { Close(); }

Stream::Stream(Stream&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      ssl_(std::exchange(other.ssl_, nullptr)),
      last_error_(std::move(other.last_error_)) {}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    ssl_ = std::exchange(other.ssl_, nullptr);
    last_error_ = std::move(other.last_error_);
  }
  return *this;
}

void Stream::Close() {
  if (ssl_ != nullptr) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

std::string Stream::server_name() const {
  if (ssl_ == nullptr) return "";
  const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  return name == nullptr ? "" : name;
}

absl::Status Stream::AcceptTls(const TlsContext& context) {
  ssl_ = context.NewSsl();
  if (ssl_ == nullptr) return absl::InternalError("SSL_new: " + OpenSslErrors());
  if (SSL_set_fd(ssl_, fd_) != 1) return absl::InternalError("SSL_set_fd: " + OpenSslErrors());
  ERR_clear_error();
  int ret = SSL_accept(ssl_);
  if (ret != 1) {
    int err = SSL_get_error(ssl_, ret);
    std::string detail =
        err == SSL_ERROR_SYSCALL
            ? (errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : std::strerror(errno))
            : OpenSslErrors();
    ERR_clear_error();
    // Without a clean shutdown the SSL object must not send close_notify later.
    SSL_set_quiet_shutdown(ssl_, 1);
    return absl::UnavailableError(absl::StrCat("TLS handshake failed: ", detail));
  }
  return absl::OkStatus();
}

IoResult Stream::SslResult(int ret, bool writing, size_t* n) {
  if (ret > 0) {
    *n = static_cast<size_t>(ret);
    return IoResult::kOk;
  }
  int err = SSL_get_error(ssl_, ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      return IoResult::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return IoResult::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return IoResult::kEof;
    case SSL_ERROR_SYSCALL:
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return writing ? IoResult::kWantWrite : IoResult::kWantRead;
      }
      if (ret == 0 || errno == 0) return IoResult::kEof;  // EOF without close_notify
      last_error_ = std::strerror(errno);
      SSL_set_quiet_shutdown(ssl_, 1);
      return IoResult::kError;
    default:
      last_error_ = OpenSslErrors();
      SSL_set_quiet_shutdown(ssl_, 1);
      return IoResult::kError;
  }
}

IoResult Stream::Read(char* buf, size_t cap, size_t* n) {
  if (ssl_ != nullptr) {
    ERR_clear_error();
    errno = 0;
    return SslResult(SSL_read(ssl_, buf, static_cast<int>(cap)), false, n);
  }
  while (true) {
    ssize_t r = ::recv(fd_, buf, cap, 0);
    if (r > 0) {
      *n = static_cast<size_t>(r);
      return IoResult::kOk;
    }
    if (r == 0) return IoResult::kEof;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult::kWantRead;
    last_error_ = std::strerror(errno);
    return IoResult::kError;
  }
}

IoResult Stream::Write(const char* buf, size_t len, size_t* n) {
  if (ssl_ != nullptr) {
    ERR_clear_error();
    errno = 0;
    IoResult r = SslResult(SSL_write(ssl_, buf, static_cast<int>(len)), true, n);
    if (r == IoResult::kEof) {
      last_error_ = "connection closed";
      return IoResult::kError;
    }
    return r;
  }
  while (true) {
    ssize_t r = ::send(fd_, buf, len, MSG_NOSIGNAL);
    if (r >= 0) {
      *n = static_cast<size_t>(r);
      return IoResult::kOk;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult::kWantWrite;
    last_error_ = std::strerror(errno);
    return IoResult::kError;
  }
}

absl::Status Stream::ReadFull(char* buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    size_t got = 0;
    switch (Read(buf + done, n - done, &got)) {
      case IoResult::kOk:
        done += got;
        break;
      case IoResult::kEof:
        return absl::UnavailableError("the client closed the connection");
      case IoResult::kWantRead:
      case IoResult::kWantWrite:
        return absl::DeadlineExceededError("timed out waiting for the client");
      case IoResult::kError:
        return absl::UnavailableError(absl::StrCat("read from the client failed: ", last_error_));
    }
  }
  return absl::OkStatus();
}

absl::Status Stream::WriteAll(std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    size_t wrote = 0;
    switch (Write(data.data() + done, data.size() - done, &wrote)) {
      case IoResult::kOk:
        done += wrote;
        break;
      case IoResult::kWantRead:
      case IoResult::kWantWrite:
        return absl::DeadlineExceededError("timed out writing");
      case IoResult::kEof:
      case IoResult::kError:
        return absl::UnavailableError(absl::StrCat("write failed: ", last_error_));
    }
  }
  return absl::OkStatus();
}

absl::Status Stream::SetNonBlocking(bool on) {
  int flags = fcntl(fd_, F_GETFL);
  if (flags < 0) return absl::InternalError(absl::StrCat("fcntl: ", std::strerror(errno)));
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (fcntl(fd_, F_SETFL, flags) < 0) {
    return absl::InternalError(absl::StrCat("fcntl: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status Stream::SetTimeouts(int millis) {
  timeval tv{millis / 1000, (millis % 1000) * 1000};
  if (setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
      setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
    return absl::InternalError(absl::StrCat("setsockopt: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

void Stream::ShutdownWrite() {
  if (fd_ < 0) return;
  if (ssl_ != nullptr && !SSL_get_quiet_shutdown(ssl_)) {
    ERR_clear_error();
    SSL_shutdown(ssl_);  // sends close_notify; does not wait for the peer's
    ERR_clear_error();
  }
  ::shutdown(fd_, SHUT_WR);
}

void Stream::ShutdownBoth() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

}  // namespace pgbranch::proxy
