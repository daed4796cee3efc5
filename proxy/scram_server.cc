#include "proxy/scram_server.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pgbranch::proxy {
namespace {

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed SCRAM message: ", what));
}

// The value of attribute `name` ("r=..."), which must be the next one in `message` at `*pos`.
bool TakeAttribute(absl::string_view message, size_t* pos, char name, absl::string_view* value) {
  if (*pos + 2 > message.size() || message[*pos] != name || message[*pos + 1] != '=') return false;
  size_t start = *pos + 2;
  size_t comma = message.find(',', start);
  size_t end = comma == absl::string_view::npos ? message.size() : comma;
  *value = message.substr(start, end - start);
  *pos = comma == absl::string_view::npos ? message.size() : comma + 1;
  return true;
}

bool IsPrintableNonce(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

}  // namespace

ScramServer::ScramServer(scram::Verifier verifier, std::string server_nonce)
    : verifier_(std::move(verifier)), server_nonce_(std::move(server_nonce)) {}

absl::StatusOr<std::string> ScramServer::HandleClientFirst(absl::string_view message) {
  if (state_ != State::kFirst) return absl::FailedPreconditionError("unexpected SCRAM message");
  // gs2-header: cbind-flag "," [authzid] ","
  if (absl::StartsWith(message, "p=")) {
    return absl::InvalidArgumentError(
        "the client requires channel binding, which the proxy does not offer "
        "(use channel_binding=prefer or disable)");
  }
  if (message.size() < 3 || (message[0] != 'n' && message[0] != 'y') || message[1] != ',') {
    return Malformed("bad gs2 header");
  }
  size_t second_comma = message.find(',', 2);
  if (second_comma == absl::string_view::npos) return Malformed("bad gs2 header");
  if (second_comma != 2 && !absl::StartsWith(message.substr(2), "a=")) {
    return Malformed("bad authzid");
  }
  gs2_header_ = std::string(message.substr(0, second_comma + 1));
  client_first_bare_ = std::string(message.substr(second_comma + 1));
  absl::string_view bare = client_first_bare_;
  size_t pos = 0;
  absl::string_view user, client_nonce;
  if (absl::StartsWith(bare, "m=")) return Malformed("mandatory extensions are not supported");
  // PostgreSQL ignores the user name here (it comes from the startup packet); so does the proxy.
  if (!TakeAttribute(bare, &pos, 'n', &user)) return Malformed("missing user name");
  if (!TakeAttribute(bare, &pos, 'r', &client_nonce) || !IsPrintableNonce(client_nonce)) {
    return Malformed("missing or bad client nonce");
  }
  nonce_ = absl::StrCat(client_nonce, server_nonce_);
  server_first_ = absl::StrCat("r=", nonce_, ",s=", absl::Base64Escape(verifier_.salt),
                               ",i=", verifier_.iterations);
  state_ = State::kFinal;
  return server_first_;
}

absl::StatusOr<std::string> ScramServer::HandleClientFinal(absl::string_view message) {
  if (state_ != State::kFinal) return absl::FailedPreconditionError("unexpected SCRAM message");
  size_t proof_at = message.rfind(",p=");
  if (proof_at == absl::string_view::npos) return Malformed("missing proof");
  absl::string_view without_proof = message.substr(0, proof_at);
  std::string proof;
  if (!absl::Base64Unescape(message.substr(proof_at + 3), &proof) ||
      proof.size() != scram::kKeyLength) {
    return Malformed("bad proof");
  }
  size_t pos = 0;
  absl::string_view binding, nonce;
  if (!TakeAttribute(without_proof, &pos, 'c', &binding))
    return Malformed("missing channel binding");
  std::string binding_raw;
  if (!absl::Base64Unescape(binding, &binding_raw) || binding_raw != gs2_header_) {
    return Malformed("channel binding does not match the gs2 header");
  }
  if (!TakeAttribute(without_proof, &pos, 'r', &nonce) || nonce != nonce_) {
    return Malformed("nonce does not match");
  }
  std::string auth_message =
      absl::StrCat(client_first_bare_, ",", server_first_, ",", without_proof);
  std::string client_signature = scram::HmacSha256(verifier_.stored_key, auth_message);
  std::string client_key = scram::Xor(proof, client_signature);
  state_ = State::kDone;
  if (!scram::SecureEquals(scram::Sha256(client_key), verifier_.stored_key)) {
    return absl::PermissionDeniedError("wrong password");
  }
  client_key_ = std::move(client_key);
  return absl::StrCat("v=",
                      absl::Base64Escape(scram::HmacSha256(verifier_.server_key, auth_message)));
}

}  // namespace pgbranch::proxy
