#include "compute/scram_verifier.h"

#include "common/scram.h"

namespace pgbranch::compute {

bool ScramVerifierMatches(const std::string& verifier, const std::string& password) {
  return scram::VerifierMatches(verifier, password);
}

bool IsScramVerifier(const std::string& secret) { return scram::ParseVerifier(secret).ok(); }

}  // namespace pgbranch::compute
