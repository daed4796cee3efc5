#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

// One database session, as the promotion sees it: statements go in, rows or an error come out.
// cli/pq_session.h is the libpq implementation; unit tests use a fake.
namespace pgbranch::cli {

struct SqlResult {
  // Rows of the last statement's result, text format; nullopt for SQL NULL.
  std::vector<std::vector<std::optional<std::string>>> rows;
};

class SqlSession {
 public:
  virtual ~SqlSession() = default;
  // Runs `sql` (simple query protocol: several statements allowed). An error's message is the
  // server's ("column \"x\" of relation \"t\" already exists"), with DETAIL/HINT appended.
  virtual absl::StatusOr<SqlResult> Exec(const std::string& sql) = 0;
};

}  // namespace pgbranch::cli
