#include "cli/captured_ddl.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace pgbranch::cli {

absl::StatusOr<std::vector<CapturedStatement>> ReadCapturedDdl(SqlSession& session,
                                                               const std::string& timeline) {
  // Timeline ids are [a-z0-9-] (validated by the pageserver); quoted all the same.
  absl::StatusOr<SqlResult> rows = session.Exec(
      absl::StrCat("SELECT id, command_tag, query FROM pgbranch.ddl_log WHERE timeline = '",
                   absl::StrReplaceAll(timeline, {{"'", "''"}}), "' ORDER BY id"));
  if (!rows.ok()) {
    // 42P01: undefined_table.
    if (rows.status().message().find("42P01") != std::string::npos) {
      return absl::NotFoundError(std::string(rows.status().message()));
    }
    return absl::UnavailableError(std::string(rows.status().message()));
  }
  std::vector<CapturedStatement> captured;
  for (const auto& row : rows->rows) {
    if (row.size() < 3) continue;
    int64_t id = 0;
    (void)absl::SimpleAtoi(row[0].value_or("0"), &id);
    captured.push_back({id, row[1].value_or(""), row[2].value_or("")});
  }
  return captured;
}

}  // namespace pgbranch::cli
