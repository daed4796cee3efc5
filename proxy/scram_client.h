#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/scram.h"

namespace pgbranch::proxy {

// The client side of one SCRAM-SHA-256 exchange, driven by a ClientKey instead of a password:
// the proxy logs in to PostgreSQL with the ClientKey it recovered from the client's own proof
// (ScramServer). The server must hold the same verifier: its salt and iteration count must be
// `verifier`'s, and its final signature is checked against `verifier`'s ServerKey. No channel
// binding (gs2 header "n,,"). Not thread-safe; one per connection.
class ScramClient {
 public:
  // `client_nonce`: printable, without ','; random in production. `user` goes into the
  // client-first-message (PostgreSQL ignores it; RFC 7677's example sets it).
  ScramClient(std::string client_key, scram::Verifier verifier, std::string client_nonce,
              std::string user = "");

  std::string ClientFirst();
  // server-first-message -> client-final-message. FailedPrecondition when the server's salt or
  // iteration count differ from the verifier's (it holds another password).
  absl::StatusOr<std::string> HandleServerFirst(absl::string_view message);
  // Checks the server-final-message's signature (PermissionDenied: not the expected server).
  absl::Status HandleServerFinal(absl::string_view message);

 private:
  const std::string client_key_;
  const scram::Verifier verifier_;
  const std::string client_nonce_;
  const std::string user_;
  std::string client_first_bare_;
  std::string auth_message_;
};

}  // namespace pgbranch::proxy
