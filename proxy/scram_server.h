#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "common/scram.h"

namespace pgbranch::proxy {

// The server side of one SCRAM-SHA-256 exchange (RFC 5802, RFC 7677) against a stored verifier:
// the proxy authenticates a client with the salt, iteration count, StoredKey and ServerKey of its
// branch's role, without the password. A successful exchange recovers the client's ClientKey
// (ClientProof XOR HMAC(StoredKey, AuthMessage), checked: SHA-256(ClientKey) == StoredKey),
// which lets the proxy log in to PostgreSQL as that client when PostgreSQL holds the same
// verifier (ScramClient).
//
// Channel binding is not offered (only SCRAM-SHA-256, not -PLUS): a client may send gs2 flag
// 'n' or 'y' ("I could, the server did not offer it"), never 'p'. Not thread-safe; one per
// connection; each message is parsed as untrusted input.
class ScramServer {
 public:
  // `server_nonce`: printable, without ','; random in production (scram::RandomNonce()).
  ScramServer(scram::Verifier verifier, std::string server_nonce);

  // client-first-message -> server-first-message. InvalidArgument when malformed.
  absl::StatusOr<std::string> HandleClientFirst(absl::string_view message);
  // client-final-message -> server-final-message ("v=ServerSignature"). PermissionDenied when
  // the proof does not match (a wrong password); InvalidArgument when malformed.
  absl::StatusOr<std::string> HandleClientFinal(absl::string_view message);

  // After a successful HandleClientFinal(): the client's ClientKey (raw bytes).
  const std::string& client_key() const { return client_key_; }

 private:
  const scram::Verifier verifier_;
  const std::string server_nonce_;
  std::string gs2_header_;         // "n,," or "y,," as the client sent it
  std::string client_first_bare_;  // "n=...,r=..."
  std::string server_first_;
  std::string nonce_;  // client nonce + server nonce
  std::string client_key_;
  enum class State { kFirst, kFinal, kDone } state_ = State::kFirst;
};

}  // namespace pgbranch::proxy
