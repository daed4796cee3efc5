#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace pgbranch::proxy {

// The server side of TLS for clients that send SSLRequest: one certificate and key (PEM files),
// TLS 1.2 or newer. Immutable after Load(); OpenSSL's SSL_CTX is safe to share between threads.
class TlsContext {
 public:
  static absl::StatusOr<std::unique_ptr<TlsContext>> Load(const std::string& cert_file,
                                                          const std::string& key_file);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // A new server-side SSL object for one connection (the caller owns it: SSL_free).
  SSL* NewSsl() const;

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

// The pending OpenSSL error queue as text (and clears it).
std::string OpenSslErrors();

}  // namespace pgbranch::proxy
