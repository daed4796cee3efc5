#include "pageserver/server/token_auth.h"

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

}  // namespace
}  // namespace pgbranch::pageserver
