#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it. The verifier is what
// pg_authid.rolpassword stores, and what the proxy checks a client's proof against:
//   SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>
// with SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations),
// ClientKey = HMAC(SaltedPassword, "Client Key"), StoredKey = SHA-256(ClientKey),
// ServerKey = HMAC(SaltedPassword, "Server Key").
//
// Pure functions; thread-safe. Passwords are used as given (no SASLprep): pgbranch generates
// ASCII passwords, for which SASLprep changes nothing.
namespace pgbranch::scram {

inline constexpr int kDefaultIterations = 4096;  // PostgreSQL's scram_iterations default
inline constexpr size_t kKeyLength = 32;         // SHA-256 output

// A parsed verifier; every field holds raw bytes (not base64).
struct Verifier {
  int iterations = kDefaultIterations;
  std::string salt;
  std::string stored_key;  // kKeyLength bytes
  std::string server_key;  // kKeyLength bytes
};

// InvalidArgument unless `text` is a well-formed SCRAM-SHA-256 verifier.
absl::StatusOr<Verifier> ParseVerifier(std::string_view text);
std::string FormatVerifier(const Verifier& v);

// The verifier of `password` with the given salt (raw bytes) and iteration count.
Verifier MakeVerifier(std::string_view password, std::string_view salt, int iterations);
// The same with a fresh random 16-byte salt and kDefaultIterations.
Verifier NewVerifier(std::string_view password);
// Whether `verifier` (text) was made from `password`. False for malformed text.
bool VerifierMatches(std::string_view verifier, std::string_view password);

std::string SaltedPassword(std::string_view password, std::string_view salt, int iterations);
std::string ClientKeyOf(std::string_view salted_password);
std::string HmacSha256(std::string_view key, std::string_view data);
std::string Sha256(std::string_view data);
// Byte-wise XOR of two strings of equal length.
std::string Xor(std::string_view a, std::string_view b);
// Constant-time equality of two byte strings.
bool SecureEquals(std::string_view a, std::string_view b);
// `bytes` random bytes in base64: a nonce (printable, no ',').
std::string RandomNonce(size_t bytes = 18);

}  // namespace pgbranch::scram
