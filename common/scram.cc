#include "common/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pgbranch::scram {
namespace {

constexpr char kPrefix[] = "SCRAM-SHA-256";

// Debian's abseil has its own string_view type.
absl::string_view A(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status Malformed(std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("not a SCRAM-SHA-256 verifier: ", A(why)));
}

}  // namespace

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string Sha256(std::string_view data) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  return std::string(reinterpret_cast<char*>(out), sizeof(out));
}

std::string Xor(std::string_view a, std::string_view b) {
  std::string out(a.size(), '\0');
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) out[i] = static_cast<char>(a[i] ^ b[i]);
  return out;
}

bool SecureEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string RandomNonce(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  return absl::Base64Escape(raw);
}

std::string SaltedPassword(std::string_view password, std::string_view salt, int iterations) {
  unsigned char out[kKeyLength];
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(), sizeof(out), out);
  return std::string(reinterpret_cast<char*>(out), sizeof(out));
}

std::string ClientKeyOf(std::string_view salted_password) {
  return HmacSha256(salted_password, "Client Key");
}

Verifier MakeVerifier(std::string_view password, std::string_view salt, int iterations) {
  std::string salted = SaltedPassword(password, salt, iterations);
  Verifier v;
  v.iterations = iterations;
  v.salt = std::string(salt);
  v.stored_key = Sha256(ClientKeyOf(salted));
  v.server_key = HmacSha256(salted, "Server Key");
  return v;
}

Verifier NewVerifier(std::string_view password) {
  std::string salt(16, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size()));
  return MakeVerifier(password, salt, kDefaultIterations);
}

absl::StatusOr<Verifier> ParseVerifier(std::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(A(text), '$');
  if (parts.size() != 3 || parts[0] != kPrefix) return Malformed("expected SCRAM-SHA-256$...$...");
  std::vector<absl::string_view> iter_salt = absl::StrSplit(parts[1], ':');
  std::vector<absl::string_view> keys = absl::StrSplit(parts[2], ':');
  if (iter_salt.size() != 2 || keys.size() != 2) return Malformed("expected i:salt$stored:server");
  Verifier v;
  if (!absl::SimpleAtoi(iter_salt[0], &v.iterations) || v.iterations <= 0 ||
      v.iterations > 10'000'000) {
    return Malformed("bad iteration count");
  }
  if (!absl::Base64Unescape(iter_salt[1], &v.salt) || v.salt.empty() ||
      !absl::Base64Unescape(keys[0], &v.stored_key) ||
      !absl::Base64Unescape(keys[1], &v.server_key) || v.stored_key.size() != kKeyLength ||
      v.server_key.size() != kKeyLength) {
    return Malformed("bad base64 salt or keys");
  }
  return v;
}

std::string FormatVerifier(const Verifier& v) {
  return absl::StrCat(kPrefix, "$", v.iterations, ":", absl::Base64Escape(v.salt), "$",
                      absl::Base64Escape(v.stored_key), ":", absl::Base64Escape(v.server_key));
}

bool VerifierMatches(std::string_view verifier, std::string_view password) {
  absl::StatusOr<Verifier> v = ParseVerifier(verifier);
  if (!v.ok()) return false;
  Verifier made = MakeVerifier(password, v->salt, v->iterations);
  return SecureEquals(made.stored_key, v->stored_key) &&
         SecureEquals(made.server_key, v->server_key);
}

}  // namespace pgbranch::scram
