#include "proxy/scram_client.h"

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pgbranch::proxy {

ScramClient::ScramClient(std::string client_key, scram::Verifier verifier, std::string client_nonce,
                         std::string user)
    : client_key_(std::move(client_key)),
      verifier_(std::move(verifier)),
      client_nonce_(std::move(client_nonce)),
      user_(std::move(user)) {}

std::string ScramClient::ClientFirst() {
  client_first_bare_ = absl::StrCat("n=", user_, ",r=", client_nonce_);
  return absl::StrCat("n,,", client_first_bare_);
}

absl::StatusOr<std::string> ScramClient::HandleServerFirst(absl::string_view message) {
  absl::string_view nonce, salt_b64, iterations_text;
  for (absl::string_view attr : absl::StrSplit(message, ',')) {
    if (absl::StartsWith(attr, "r=")) nonce = attr.substr(2);
    if (absl::StartsWith(attr, "s=")) salt_b64 = attr.substr(2);
    if (absl::StartsWith(attr, "i=")) iterations_text = attr.substr(2);
  }
  std::string salt;
  int iterations = 0;
  if (!absl::StartsWith(nonce, client_nonce_) || nonce.size() == client_nonce_.size() ||
      !absl::Base64Unescape(salt_b64, &salt) || !absl::SimpleAtoi(iterations_text, &iterations)) {
    return absl::InvalidArgumentError("malformed SCRAM server-first-message from PostgreSQL");
  }
  if (salt != verifier_.salt || iterations != verifier_.iterations) {
    return absl::FailedPreconditionError(
        "PostgreSQL holds another password for the role than its branch (different SCRAM salt)");
  }
  std::string without_proof = absl::StrCat("c=biws,r=", nonce);
  auth_message_ = absl::StrCat(client_first_bare_, ",", message, ",", without_proof);
  std::string signature = scram::HmacSha256(verifier_.stored_key, auth_message_);
  return absl::StrCat(without_proof, ",p=", absl::Base64Escape(scram::Xor(client_key_, signature)));
}

absl::Status ScramClient::HandleServerFinal(absl::string_view message) {
  if (absl::StartsWith(message, "e=")) {
    return absl::PermissionDeniedError(
        absl::StrCat("PostgreSQL refused the SCRAM exchange: ", message.substr(2)));
  }
  std::string signature;
  if (!absl::StartsWith(message, "v=") || !absl::Base64Unescape(message.substr(2), &signature)) {
    return absl::InvalidArgumentError("malformed SCRAM server-final-message from PostgreSQL");
  }
  if (!scram::SecureEquals(signature, scram::HmacSha256(verifier_.server_key, auth_message_))) {
    return absl::PermissionDeniedError("PostgreSQL's SCRAM server signature does not match");
  }
  return absl::OkStatus();
}

}  // namespace pgbranch::proxy
