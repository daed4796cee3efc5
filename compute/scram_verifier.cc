#include "compute/scram_verifier.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace pgbranch::compute {
namespace {

std::string Hmac(const unsigned char* key, size_t key_len, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key, static_cast<int>(key_len),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

}  // namespace

bool ScramVerifierMatches(const std::string& verifier, const std::string& password) {
  // SCRAM-SHA-256$4096:salt$stored:server
  std::vector<std::string> parts = absl::StrSplit(verifier, '$');
  if (parts.size() != 3 || parts[0] != "SCRAM-SHA-256") return false;
  std::vector<std::string> iter_salt = absl::StrSplit(parts[1], ':');
  std::vector<std::string> keys = absl::StrSplit(parts[2], ':');
  if (iter_salt.size() != 2 || keys.size() != 2) return false;
  int iterations = 0;
  std::string salt;
  if (!absl::SimpleAtoi(iter_salt[0], &iterations) || iterations <= 0 || iterations > 10'000'000 ||
      !absl::Base64Unescape(iter_salt[1], &salt)) {
    return false;
  }
  unsigned char salted[SHA256_DIGEST_LENGTH];
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(), sizeof(salted),
                        salted) != 1) {
    return false;
  }
  std::string client_key = Hmac(salted, sizeof(salted), "Client Key");
  unsigned char stored[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(client_key.data()), client_key.size(), stored);
  std::string server_key = Hmac(salted, sizeof(salted), "Server Key");
  std::string stored_b64 =
      absl::Base64Escape(std::string(reinterpret_cast<char*>(stored), sizeof(stored)));
  std::string server_b64 = absl::Base64Escape(server_key);
  return stored_b64 == keys[0] && server_b64 == keys[1];
}

}  // namespace pgbranch::compute
