#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/scram.h"
#include "proxy/stream.h"

// The proxy's two SCRAM-SHA-256 legs over the PostgreSQL protocol (blocking, on sockets with
// timeouts set). With them the proxy checks a client's password BEFORE it wakes anything and then
// logs in to PostgreSQL as that client ("SCRAM pass-through", as Neon's proxy does): PostgreSQL's
// role holds the same verifier, so the ClientKey recovered from the client's proof answers
// PostgreSQL's challenge. The password never reaches the proxy.
namespace pgbranch::proxy {

// Reads one typed message: its type byte and body. InvalidArgument when the body would exceed
// `max_body` bytes.
absl::Status ReadMessage(Stream* stream, size_t max_body, char* type, std::string* body);

// Client leg, right after the StartupMessage: AuthenticationSASL(SCRAM-SHA-256), the client's
// first message, AuthenticationSASLContinue, its final message, AuthenticationSASLFinal.
// Returns the client's ClientKey. PermissionDenied: a wrong password (nothing more was sent;
// the caller answers 28P01). Other errors: a malformed exchange or the client went away.
absl::StatusOr<std::string> AuthenticateClient(Stream* client, const scram::Verifier& verifier);

// Backend leg, after the StartupMessage went to PostgreSQL: answers its SASL exchange with
// `client_key` until AuthenticationOk, which is left in `*forward` for the client (the client
// already had its SASL exchange with the proxy). When PostgreSQL refuses, `*forward` holds its
// ErrorResponse (to pass on as it is) and the status says why; when it asks for another method
// the status says so and `*forward` is empty.
absl::Status LogInToBackend(Stream* server, const scram::Verifier& verifier,
                            const std::string& client_key, std::string* forward);

}  // namespace pgbranch::proxy
