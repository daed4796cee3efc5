#include "pageserver/server/token_auth.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "common/token_signer.h"
#include "gtest/gtest.h"

namespace pgbranch::pageserver {
namespace {

constexpr char kTokens[] = R"(
tokens:
  - token: admin-token-123
    scope: admin
  - token: tenant-token-123
    tenant: t1
  - token: compute-token-123
    tenant: t1
    timeline: main
)";

TEST(TokenAuthTest, ScopesTokensToTenantsAndTimelines) {
  auto auth = TokenAuth::FromYaml(kTokens);
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE(auth->Check("Bearer admin-token-123", true, "", "").ok());
  EXPECT_TRUE(auth->Check("Bearer tenant-token-123", false, "t1", "any").ok());
  EXPECT_EQ(auth->Check("Bearer tenant-token-123", false, "t2", "x").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(auth->Check("Bearer tenant-token-123", true, "t1", "").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(auth->Check("Bearer compute-token-123", false, "t1", "main").ok());
  EXPECT_EQ(auth->Check("Bearer compute-token-123", false, "t1", "dev").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(auth->Check("", false, "t1", "main").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth->Check("Bearer wrong-token-123", false, "t1", "main").code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(TokenAuthTest, DisabledAllowsEverythingAndBadFilesAreRejected) {
  TokenAuth open;
  EXPECT_TRUE(open.Check("", true, "", "").ok());
  EXPECT_FALSE(TokenAuth::FromYaml("tokens: [{token: short}]").ok());
  EXPECT_FALSE(TokenAuth::FromYaml("tokens: [{token: long-enough-token}]").ok());
  EXPECT_FALSE(TokenAuth::FromYaml("nope: 1").ok());
}

// A signing key file in a fresh temporary directory.
class SignedTokenAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/token-auth-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    key_file_ = dir_ + "/signing-key";
    WriteKey(kKeyA);
  }
  void TearDown() override {
    std::remove(key_file_.c_str());
    std::remove((key_file_ + ".new").c_str());
    rmdir(dir_.c_str());
  }
  // Replaces the file the way the kubelet updates a Secret volume (a new inode, atomically).
  void WriteKey(const std::string& key) {
    std::ofstream(key_file_ + ".new") << key << "\n";
    ASSERT_EQ(std::rename((key_file_ + ".new").c_str(), key_file_.c_str()), 0);
  }
  static std::string Mint(const std::string& key, TokenClaims claims) {
    auto signer = TokenSigner::FromKey(key);
    EXPECT_TRUE(signer.ok());
    auto token = signer->Mint(claims);
    EXPECT_TRUE(token.ok()) << token.status();
    return "Bearer " + token.value_or("");
  }
  static TokenClaims TenantClaims(const std::string& tenant, const std::string& timeline = "",
                                  int64_t exp = 0) {
    TokenClaims c;
    c.tenant = tenant;
    c.timeline = timeline;
    c.expires_unix = exp;
    return c;
  }
  static TokenClaims AdminClaims() {
    TokenClaims c;
    c.admin = true;
    return c;
  }

  static constexpr char kKeyA[] = "key-a-0123456789abcdef0123456789";
  static constexpr char kKeyB[] = "key-b-0123456789abcdef0123456789";
  std::string dir_, key_file_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  SigningKeyWatcher::Clock clock_ = [this] { return now_; };
};

TEST_F(SignedTokenAuthTest, ScopesSignedTokensLikeStaticOnes) {
  TokenAuth auth;
  ASSERT_TRUE(auth.AddSigningKeyFile(key_file_, clock_).ok());
  EXPECT_TRUE(auth.enabled());
  const std::string admin = Mint(kKeyA, AdminClaims());
  const std::string tenant = Mint(kKeyA, TenantClaims("team-a"));
  const std::string compute = Mint(kKeyA, TenantClaims("team-a", "main"));
  EXPECT_TRUE(auth.Check(admin, true, "", "").ok());
  EXPECT_TRUE(auth.Check(admin, false, "team-b", "x").ok());
  EXPECT_TRUE(auth.Check(tenant, false, "team-a", "any").ok());
  EXPECT_EQ(auth.Check(tenant, false, "team-b", "any").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(auth.Check(tenant, true, "team-a", "").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(auth.Check(compute, false, "team-a", "main").ok());
  EXPECT_EQ(auth.Check(compute, false, "team-a", "dev").code(),
            absl::StatusCode::kPermissionDenied);
  // Twice: the second answer comes from the verified-token cache and must not differ.
  for (int i = 0; i < 2; ++i) {
    absl::Status bad = auth.Check(Mint(kKeyB, TenantClaims("team-a")), false, "team-a", "x");
    EXPECT_EQ(bad.code(), absl::StatusCode::kUnauthenticated);
    EXPECT_NE(bad.message().find("bad signature"), std::string::npos) << bad;
    EXPECT_EQ(auth.Check(tenant, false, "team-b", "any").code(),
              absl::StatusCode::kPermissionDenied);
  }
}

TEST_F(SignedTokenAuthTest, ExpiredTokensAreUnauthenticatedEvenWhenCached) {
  TokenAuth auth;
  ASSERT_TRUE(auth.AddSigningKeyFile(key_file_, clock_).ok());
  const std::string token = Mint(kKeyA, TenantClaims("team-a", "", 1'800'000'010));
  EXPECT_TRUE(auth.Check(token, false, "team-a", "x").ok());
  now_ += absl::Seconds(10);
  absl::Status late = auth.Check(token, false, "team-a", "x");
  EXPECT_EQ(late.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(late.message().find("expired"), std::string::npos) << late;
}

TEST_F(SignedTokenAuthTest, StaticTokensKeepWorkingBesideSignedOnes) {
  auto auth = TokenAuth::FromYaml(kTokens);
  ASSERT_TRUE(auth.ok());
  ASSERT_TRUE(auth->AddSigningKeyFile(key_file_, clock_).ok());
  EXPECT_TRUE(auth->Check("Bearer admin-token-123", true, "", "").ok());
  EXPECT_EQ(auth->Check("Bearer tenant-token-123", false, "t2", "x").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(auth->Check(Mint(kKeyA, TenantClaims("t2")), false, "t2", "x").ok());
  EXPECT_EQ(auth->Check("Bearer wrong-token-123", false, "t1", "main").code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(SignedTokenAuthTest, SignedTokensWithoutAKeyAreRefusedWithAHint) {
  auto auth = TokenAuth::FromYaml(kTokens);
  ASSERT_TRUE(auth.ok());
  absl::Status s = auth->Check(Mint(kKeyA, AdminClaims()), true, "", "");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("--token-signing-key-file"), std::string::npos) << s;
}

TEST_F(SignedTokenAuthTest, ARotatedKeyFileIsPickedUp) {
  TokenAuth auth;
  ASSERT_TRUE(auth.AddSigningKeyFile(key_file_, clock_).ok());
  const std::string old_token = Mint(kKeyA, TenantClaims("team-a"));
  const std::string new_token = Mint(kKeyB, TenantClaims("team-a"));
  EXPECT_TRUE(auth.Check(old_token, false, "team-a", "x").ok());
  WriteKey(kKeyB);
  now_ += absl::Seconds(2);  // past the recheck interval
  EXPECT_TRUE(auth.Check(new_token, false, "team-a", "x").ok());
  EXPECT_EQ(auth.Check(old_token, false, "team-a", "x").code(), absl::StatusCode::kUnauthenticated);
  // A broken file mid-rotation keeps the last good key.
  WriteKey("short");
  now_ += absl::Seconds(2);
  EXPECT_TRUE(auth.Check(new_token, false, "team-a", "x").ok());
}

TEST_F(SignedTokenAuthTest, AMissingOrShortKeyFileFailsAtStart) {
  TokenAuth auth;
  EXPECT_EQ(auth.AddSigningKeyFile(dir_ + "/absent", clock_).code(), absl::StatusCode::kNotFound);
  WriteKey("too-short");
  absl::Status s = auth.AddSigningKeyFile(key_file_, clock_);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("at least 32"), std::string::npos) << s;
  EXPECT_FALSE(auth.enabled());
}

}  // namespace
}  // namespace pgbranch::pageserver
