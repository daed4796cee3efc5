// The compute's view of SCRAM verifiers: a plain password is hashed by PostgreSQL's client
// library, a pre-hashed verifier (local mode hands the compute its branch's) is set as given.
#include "compute/scram_verifier.h"

#include <gtest/gtest.h>

namespace pgbranch::compute {
namespace {

// What pg_authid holds for password "pencil" with RFC 7677's salt and 4096 iterations (keys
// computed independently with Python's hashlib.pbkdf2_hmac and hmac).
constexpr char kPencil[] =
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

TEST(ScramVerifierTest, MatchesItsPasswordOnly) {
  EXPECT_TRUE(ScramVerifierMatches(kPencil, "pencil"));
  EXPECT_FALSE(ScramVerifierMatches(kPencil, "pencil "));
  EXPECT_FALSE(ScramVerifierMatches("md5c0ffee", "pencil"));
}

TEST(ScramVerifierTest, TellsAVerifierFromAPassword) {
  EXPECT_TRUE(IsScramVerifier(kPencil));
  EXPECT_FALSE(IsScramVerifier("pencil"));
  EXPECT_FALSE(IsScramVerifier("SCRAM-SHA-256$4096:abc"));
  EXPECT_FALSE(IsScramVerifier(""));
}

}  // namespace
}  // namespace pgbranch::compute
