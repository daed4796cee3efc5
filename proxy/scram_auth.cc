#include "proxy/scram_auth.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "proxy/pg_protocol.h"
#include "proxy/scram_client.h"
#include "proxy/scram_server.h"

namespace pgbranch::proxy {
namespace {

constexpr char kMechanism[] = "SCRAM-SHA-256";
// What PostgreSQL may send before AuthenticationOk: a few auth requests, maybe a notice.
constexpr size_t kMaxBackendAuthMessage = 64 * 1024;

uint32_t ReadU32(const char* p) {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

// Reads the client's next SASL message ('p').
absl::StatusOr<std::string> ReadSaslMessage(Stream* client) {
  char type;
  std::string body;
  PGB_RETURN_IF_ERROR(ReadMessage(client, kMaxSaslMessageLength, &type, &body));
  if (type != 'p') {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a SASL response, got message type '", std::string(1, type), "'"));
  }
  return body;
}

}  // namespace

absl::Status ReadMessage(Stream* stream, size_t max_body, char* type, std::string* body) {
  char header[5];
  PGB_RETURN_IF_ERROR(stream->ReadFull(header, sizeof(header)));
  uint32_t len = ReadU32(header + 1);
  if (len < 4 || len - 4 > max_body) {
    return absl::InvalidArgumentError(absl::StrCat("invalid message length ", len));
  }
  *type = header[0];
  body->assign(len - 4, '\0');
  return stream->ReadFull(body->data(), body->size());
}

absl::StatusOr<std::string> AuthenticateClient(Stream* client, const scram::Verifier& verifier) {
  PGB_RETURN_IF_ERROR(client->WriteAll(BuildAuthenticationSasl({kMechanism})));
  PGB_ASSIGN_OR_RETURN(std::string initial_body, ReadSaslMessage(client));
  PGB_ASSIGN_OR_RETURN(SaslInitialResponse initial, ParseSaslInitialResponse(initial_body));
  if (initial.mechanism != kMechanism) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unsupported SASL mechanism \"", initial.mechanism.substr(0, 40), "\": use ", kMechanism));
  }
  ScramServer server(verifier, scram::RandomNonce());
  PGB_ASSIGN_OR_RETURN(std::string server_first, server.HandleClientFirst(initial.data));
  PGB_RETURN_IF_ERROR(client->WriteAll(BuildAuthenticationSaslContinue(server_first)));
  PGB_ASSIGN_OR_RETURN(std::string client_final, ReadSaslMessage(client));
  PGB_ASSIGN_OR_RETURN(std::string server_final, server.HandleClientFinal(client_final));
  PGB_RETURN_IF_ERROR(client->WriteAll(BuildAuthenticationSaslFinal(server_final)));
  return server.client_key();
}

absl::Status LogInToBackend(Stream* server, const scram::Verifier& verifier,
                            const std::string& client_key, std::string* forward) {
  forward->clear();
  ScramClient scram(client_key, verifier, scram::RandomNonce());
  for (int i = 0; i < 16; ++i) {
    char type;
    std::string body;
    PGB_RETURN_IF_ERROR(ReadMessage(server, kMaxBackendAuthMessage, &type, &body));
    if (type == 'E') {
      *forward = BuildMessage(type, body);
      return absl::PermissionDeniedError("PostgreSQL refused the login");
    }
    if (type == 'N') continue;  // a notice before authentication: nothing the client needs
    if (type != 'R') {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected message type '", std::string(1, type), "' from PostgreSQL during login"));
    }
    PGB_ASSIGN_OR_RETURN(AuthenticationRequest request, ParseAuthenticationRequest(body));
    switch (request.code) {
      case kAuthOk:
        *forward = BuildAuthenticationOk();
        return absl::OkStatus();
      case kAuthSasl: {
        std::vector<std::string> mechanisms = ParseSaslMechanisms(request.data);
        if (std::find(mechanisms.begin(), mechanisms.end(), kMechanism) == mechanisms.end()) {
          return absl::FailedPreconditionError("PostgreSQL does not offer SCRAM-SHA-256");
        }
        PGB_RETURN_IF_ERROR(
            server->WriteAll(BuildSaslInitialResponse(kMechanism, scram.ClientFirst())));
        break;
      }
      case kAuthSaslContinue: {
        PGB_ASSIGN_OR_RETURN(std::string final_message, scram.HandleServerFirst(request.data));
        PGB_RETURN_IF_ERROR(server->WriteAll(BuildSaslResponse(final_message)));
        break;
      }
      case kAuthSaslFinal:
        PGB_RETURN_IF_ERROR(scram.HandleServerFinal(request.data));
        break;
      default:
        return absl::FailedPreconditionError(absl::StrCat(
            "PostgreSQL asks for authentication method ", request.code,
            "; the proxy logs in with SCRAM-SHA-256 only (pg_hba.conf: scram-sha-256)"));
    }
  }
  return absl::InvalidArgumentError("too many authentication messages from PostgreSQL");
}

}  // namespace pgbranch::proxy
