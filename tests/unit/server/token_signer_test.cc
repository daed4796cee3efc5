#include "common/token_signer.h"

#include "absl/strings/escaping.h"
#include "common/scram.h"
#include "gtest/gtest.h"

namespace pgbranch {
namespace {

constexpr char kKey[] = "0123456789abcdef0123456789abcdef";
constexpr char kOtherKey[] = "fedcba9876543210fedcba9876543210";

TokenSigner Signer(const std::string& key = kKey) {
  auto s = TokenSigner::FromKey(key);
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

TokenClaims Tenant(const std::string& tenant, const std::string& timeline = "", int64_t exp = 0) {
  TokenClaims c;
  c.tenant = tenant;
  c.timeline = timeline;
  c.expires_unix = exp;
  return c;
}

TEST(TokenSignerTest, MintedTokensVerifyWithTheirClaims) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  auto token = Signer().Mint(Tenant("team-a", "tl-1", 1'800'000'060));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_TRUE(TokenSigner::IsSignedToken(*token));
  EXPECT_EQ(token->rfind("pgb1.", 0), 0u);
  auto claims = Signer().Verify(*token, now);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_FALSE(claims->admin);
  EXPECT_EQ(claims->tenant, "team-a");
  EXPECT_EQ(claims->timeline, "tl-1");
  EXPECT_EQ(claims->expires_unix, 1'800'000'060);

  TokenClaims admin;
  admin.admin = true;
  auto admin_token = Signer().Mint(admin);
  ASSERT_TRUE(admin_token.ok());
  auto admin_claims = Signer().Verify(*admin_token, now);
  ASSERT_TRUE(admin_claims.ok()) << admin_claims.status();
  EXPECT_TRUE(admin_claims->admin);
  EXPECT_TRUE(admin_claims->tenant.empty());
}

TEST(TokenSignerTest, NamesWithQuotesSurviveTheClaimsJson) {
  auto token = Signer().Mint(Tenant("a\"b\\c\nd"));
  ASSERT_TRUE(token.ok());
  auto claims = Signer().Verify(*token, absl::Now());
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->tenant, "a\"b\\c\nd");
}

TEST(TokenSignerTest, AnotherKeysSignatureIsUnauthenticated) {
  auto token = Signer(kOtherKey).Mint(Tenant("team-a"));
  ASSERT_TRUE(token.ok());
  auto claims = Signer().Verify(*token, absl::Now());
  EXPECT_EQ(claims.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(claims.status().message().find("bad signature"), std::string::npos) << claims.status();
}

TEST(TokenSignerTest, ChangedClaimsBreakTheSignature) {
  auto token = Signer().Mint(Tenant("team-a"));
  ASSERT_TRUE(token.ok());
  // Swap in a payload naming another tenant, keeping the original signature.
  const std::string forged_claims = absl::WebSafeBase64Escape(R"({"scope":"admin"})");
  const size_t sig = token->rfind('.');
  const std::string forged = "pgb1." + forged_claims + token->substr(sig);
  EXPECT_EQ(Signer().Verify(forged, absl::Now()).status().code(),
            absl::StatusCode::kUnauthenticated);
  std::string flipped = *token;
  flipped[sig + 3] = flipped[sig + 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(Signer().Verify(flipped, absl::Now()).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(TokenSignerTest, ExpiredTokensSayWhen) {
  auto token = Signer().Mint(Tenant("team-a", "", 1'800'000'000));
  ASSERT_TRUE(token.ok());
  EXPECT_TRUE(Signer().Verify(*token, absl::FromUnixSeconds(1'799'999'999)).ok());
  auto late = Signer().Verify(*token, absl::FromUnixSeconds(1'800'000'000));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(late.status().message().find("expired at 2027-01-15T08:00:00Z"), std::string::npos)
      << late.status();
}

TEST(TokenSignerTest, MalformedTokensAreUnauthenticated) {
  for (const char* bad :
       {"", "pgb1.", "pgb1..", "pgb1.abc", "pgb1.e30.!!!", "pgb2.e30.e30", "static-token-123"}) {
    EXPECT_EQ(Signer().Verify(bad, absl::Now()).status().code(), absl::StatusCode::kUnauthenticated)
        << bad;
  }
  // Correctly signed, but the claims are not a usable scope.
  for (const char* claims : {R"({"scope":"root"})", R"({"scope":"tenant"})", R"([1,2])",
                             R"({"scope":"tenant","tenant":"t","exp":"soon"})"}) {
    // Signed by hand the way Mint signs.
    const std::string body = "pgb1." + absl::WebSafeBase64Escape(claims);
    const std::string token = body + "." + absl::WebSafeBase64Escape(scram::HmacSha256(kKey, body));
    auto verified = Signer().Verify(token, absl::Now());
    EXPECT_EQ(verified.status().code(), absl::StatusCode::kUnauthenticated) << claims;
    EXPECT_EQ(verified.status().message().find("bad signature"), std::string::npos)
        << verified.status();
  }
}

TEST(TokenSignerTest, ShortKeysAndBadClaimsAreRefusedAtMint) {
  EXPECT_EQ(TokenSigner::FromKey("short").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Signer().Mint(TokenClaims{}).ok());  // tenant scope, no tenant
  TokenClaims admin_with_tenant;
  admin_with_tenant.admin = true;
  admin_with_tenant.tenant = "t";
  EXPECT_FALSE(Signer().Mint(admin_with_tenant).ok());
}

}  // namespace
}  // namespace pgbranch
