#include "cli/pq_session.h"

#include "absl/strings/str_cat.h"

namespace pgbranch::cli {
namespace {

std::string Trimmed(const char* s) {
  std::string out = s == nullptr ? "" : s;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PqSession>> PqSession::Connect(const std::string& uri,
                                                              const std::string& application_name) {
  const char* keys[] = {"dbname", "application_name", "connect_timeout", nullptr};
  const char* values[] = {uri.c_str(), application_name.c_str(), "120", nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string error = Trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    return absl::UnavailableError(absl::StrCat("cannot connect: ", error));
  }
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<PqSession>(new PqSession(conn));
}

PqSession::~PqSession() { PQfinish(conn_); }

absl::StatusOr<SqlResult> PqSession::Exec(const std::string& sql) {
  if (!PQsendQuery(conn_, sql.c_str())) {
    return absl::UnavailableError(Trimmed(PQerrorMessage(conn_)));
  }
  // Every result is read (a multi-statement string has one per statement); the first error
  // wins, the rows are the last result's.
  SqlResult out;
  std::optional<absl::Status> error;
  while (PGresult* r = PQgetResult(conn_)) {
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK) {
      out.rows.clear();
      for (int i = 0; i < PQntuples(r); ++i) {
        std::vector<std::optional<std::string>> row;
        for (int j = 0; j < PQnfields(r); ++j) {
          row.push_back(PQgetisnull(r, i, j) ? std::nullopt
                                             : std::optional<std::string>(PQgetvalue(r, i, j)));
        }
        out.rows.push_back(std::move(row));
      }
    } else if (st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY && !error) {
      std::string msg = Trimmed(PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
      if (msg.empty()) msg = Trimmed(PQerrorMessage(conn_));
      const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      if (state != nullptr) absl::StrAppend(&msg, " (SQLSTATE ", state, ")");
      if (const char* d = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL)) {
        absl::StrAppend(&msg, "\n  DETAIL: ", Trimmed(d));
      }
      if (const char* h = PQresultErrorField(r, PG_DIAG_MESSAGE_HINT)) {
        absl::StrAppend(&msg, "\n  HINT: ", Trimmed(h));
      }
      error = absl::FailedPreconditionError(msg);
    }
    PQclear(r);
  }
  if (PQstatus(conn_) != CONNECTION_OK && !error) {
    error = absl::UnavailableError(
        absl::StrCat("the connection was lost: ", Trimmed(PQerrorMessage(conn_))));
  }
  if (error) return *error;
  return out;
}

}  // namespace pgbranch::cli
