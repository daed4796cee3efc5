#include "cli/api_errors.h"

#include <gtest/gtest.h>

namespace pgbranch::cli {
namespace {

TEST(ApiErrorsTest, MapsManifestFieldsToFlags) {
  EXPECT_EQ(FlagForField("spec.parent"), "--parent");
  EXPECT_EQ(FlagForField("spec.lsn"), "--lsn");
  EXPECT_EQ(FlagForField("spec.timestamp"), "--at");
  EXPECT_EQ(FlagForField("spec.ttl"), "--ttl");
  EXPECT_EQ(FlagForField("spec.expireTime"), "--expire-time");
  EXPECT_EQ(FlagForField("spec.branch"), "--branch");
  EXPECT_EQ(FlagForField("spec.type"), "--type");
  EXPECT_EQ(FlagForField("spec.suspendTimeout"), "--suspend-timeout");
  EXPECT_EQ(FlagForField("metadata.name"), "");
  EXPECT_EQ(FlagForField(""), "");
}

TEST(ApiErrorsTest, RewordsUnderTheFlag) {
  absl::Status api = WithApiErrorFields(
      absl::InvalidArgumentError("branch \"dev\": spec.parent: branch \"nope\" does not exist"),
      "spec.parent", "branch \"nope\" does not exist");
  absl::Status cli = WithFlagNames(api);
  EXPECT_EQ(cli.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cli.message(), "--parent: branch \"nope\" does not exist");
  EXPECT_EQ(ApiErrorField(cli), "spec.parent");
}

TEST(ApiErrorsTest, KeepsTheSentenceWithoutAFlagOrDetail) {
  absl::Status exists = WithApiErrorFields(
      absl::AlreadyExistsError("branch \"dev\" already exists; `pgbranch apply` changes an "
                               "existing branch"),
      "metadata.name", "already exists");
  EXPECT_EQ(WithFlagNames(exists).message(), exists.message());
  absl::Status bare = absl::InvalidArgumentError("spec.lsn: bad");
  EXPECT_EQ(WithFlagNames(WithApiErrorFields(bare, "spec.lsn", "")).message(), "spec.lsn: bad");
  EXPECT_EQ(ApiErrorField(absl::InternalError("x")), "");
}

}  // namespace
}  // namespace pgbranch::cli
