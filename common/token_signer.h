#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

// Signed pageserver tokens (a small cousin of a JWT with HS256):
//
//   pgb1.<base64url(claims JSON)>.<base64url(HMAC-SHA256(key, "pgb1.<base64url(claims JSON)>"))>
//
// claims: {"scope":"admin"} or {"scope":"tenant","tenant":"T"[,"timeline":"X"]}, plus an optional
// "exp" (Unix seconds) after which the token is refused. base64url without padding.
//
// Whoever holds the key can mint any token: the pageserver (verifies), the operator (mints its
// own admin token and a tenant token per compute pod) and `pagectl token mint`. Keys are at least
// kMinKeyLength bytes. Immutable and thread-safe.
namespace pgbranch {

struct TokenClaims {
  bool admin = false;
  std::string tenant;        // tenant scope: required; admin: empty
  std::string timeline;      // empty: every timeline of the tenant
  int64_t expires_unix = 0;  // 0: never expires
};

class TokenSigner {
 public:
  static constexpr char kPrefix[] = "pgb1.";
  static constexpr size_t kMinKeyLength = 32;

  // InvalidArgument for a key shorter than kMinKeyLength.
  static absl::StatusOr<TokenSigner> FromKey(std::string key);
  // Reads the key from a file (a Kubernetes Secret key mounted as a file); surrounding whitespace
  // (a trailing newline) is not part of the key.
  static absl::StatusOr<TokenSigner> FromKeyFile(const std::string& path);

  // Whether `token` has the signed-token shape (so a verifier knows which check applies).
  static bool IsSignedToken(std::string_view token);

  // InvalidArgument for claims that no verifier would accept (tenant scope without a tenant).
  absl::StatusOr<std::string> Mint(const TokenClaims& claims) const;
  // Unauthenticated (with the reason: malformed, bad signature, expired) unless `token` was minted
  // with this key and has not expired at `now`.
  absl::StatusOr<TokenClaims> Verify(std::string_view token, absl::Time now) const;

 private:
  explicit TokenSigner(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace pgbranch
