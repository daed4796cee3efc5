#include "cli/captured_ddl.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace pgbranch::cli {
namespace {

// Answers the capture query with `rows`, or with `error` when set; records the query.
class CaptureSession : public SqlSession {
 public:
  absl::StatusOr<SqlResult> Exec(const std::string& sql) override {
    last_sql = sql;
    if (error) return *error;
    return result;
  }
  SqlResult result;
  std::optional<absl::Status> error;
  std::string last_sql;
};

TEST(CapturedDdlTest, RowsComeBackInOrderAndTheTimelineIsQuoted) {
  CaptureSession s;
  s.result.rows = {{"3", "CREATE TABLE", "CREATE TABLE t (a int)"},
                   {"7", "CREATE INDEX", std::nullopt},
                   {"x", "ALTER TABLE", "ALTER TABLE t ADD b int"},
                   {"9"}};  // short row: skipped
  auto got = ReadCapturedDdl(s, "tl-1'x");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].id, 3);
  EXPECT_EQ((*got)[0].command_tag, "CREATE TABLE");
  EXPECT_EQ((*got)[1].query, "");
  EXPECT_EQ((*got)[2].id, 0);  // not a number: 0, not an exception
  EXPECT_NE(s.last_sql.find("timeline = 'tl-1''x'"), std::string::npos) << s.last_sql;
  EXPECT_NE(s.last_sql.find("ORDER BY id"), std::string::npos);
}

TEST(CapturedDdlTest, AMissingCaptureIsNotFoundAndOtherErrorsUnavailable) {
  CaptureSession s;
  s.error = absl::UnknownError("ERROR:  relation \"pgbranch.ddl_log\" does not exist (42P01)");
  EXPECT_TRUE(absl::IsNotFound(ReadCapturedDdl(s, "t").status()));
  s.error = absl::UnknownError("server closed the connection unexpectedly");
  EXPECT_TRUE(absl::IsUnavailable(ReadCapturedDdl(s, "t").status()));
}

}  // namespace
}  // namespace pgbranch::cli
