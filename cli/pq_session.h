#pragma once

#include <libpq-fe.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cli/libpq_api.h"
#include "cli/sql_session.h"

// SqlSession over libpq (loaded on the first Connect, cli/libpq_api.h): one connection, opened by
// Connect, closed with the object.
namespace pgbranch::cli {

class PqSession : public SqlSession {
 public:
  // `uri` is a connection string (postgresql://...); `application_name` shows in pg_stat_activity.
  static absl::StatusOr<std::unique_ptr<PqSession>> Connect(const std::string& uri,
                                                            const std::string& application_name);
  ~PqSession() override;

  absl::StatusOr<SqlResult> Exec(const std::string& sql) override;

 private:
  PqSession(const LibpqApi* pq, PGconn* conn) : pq_(pq), conn_(conn) {}
  const LibpqApi* pq_;
  PGconn* conn_;
};

}  // namespace pgbranch::cli
