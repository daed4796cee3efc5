#pragma once

#include <string>

// SCRAM-SHA-256 verifiers as PostgreSQL stores them in pg_authid.rolpassword:
//   SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>
// (the math is in common/scram.h).
namespace pgbranch::compute {

// Whether `verifier` was computed from `password` (RFC 5802 / RFC 7677). False for anything
// that is not a well-formed SCRAM-SHA-256 verifier. Passwords that SASLprep would change
// (non-ASCII) may compare unequal: callers then simply set the password again.
bool ScramVerifierMatches(const std::string& verifier, const std::string& password);

// Whether `secret` is itself a SCRAM-SHA-256 verifier (a pre-hashed password). PostgreSQL
// stores such a "password" as given, which is how a role gets the very verifier the proxy
// checks clients against.
bool IsScramVerifier(const std::string& secret);

}  // namespace pgbranch::compute
