#include "cli/pq_session.h"

#include "absl/strings/str_cat.h"
#include "cli/libpq_api.h"

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
  absl::StatusOr<const LibpqApi*> api = LibpqApi::Get();
  if (!api.ok()) return api.status();
  const LibpqApi& pq = **api;
  const char* keys[] = {"dbname", "application_name", "connect_timeout", nullptr};
  const char* values[] = {uri.c_str(), application_name.c_str(), "120", nullptr};
  PGconn* conn = pq.connectdb_params(keys, values, /*expand_dbname=*/1);
  if (pq.status(conn) != CONNECTION_OK) {
    std::string error = Trimmed(pq.error_message(conn));
    pq.finish(conn);
    return absl::UnavailableError(absl::StrCat("cannot connect: ", error));
  }
  pq.set_notice_processor(
      conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<PqSession>(new PqSession(&pq, conn));
}

PqSession::~PqSession() { pq_->finish(conn_); }

absl::StatusOr<SqlResult> PqSession::Exec(const std::string& sql) {
  if (!pq_->send_query(conn_, sql.c_str())) {
    return absl::UnavailableError(Trimmed(pq_->error_message(conn_)));
  }
  // Every result is read (a multi-statement string has one per statement); the first error
  // wins, the rows are the last result's.
  SqlResult out;
  std::optional<absl::Status> error;
  while (PGresult* r = pq_->get_result(conn_)) {
    ExecStatusType st = pq_->result_status(r);
    if (st == PGRES_TUPLES_OK) {
      out.rows.clear();
      for (int i = 0; i < pq_->ntuples(r); ++i) {
        std::vector<std::optional<std::string>> row;
        for (int j = 0; j < pq_->nfields(r); ++j) {
          row.push_back(pq_->getisnull(r, i, j)
                            ? std::nullopt
                            : std::optional<std::string>(pq_->getvalue(r, i, j)));
        }
        out.rows.push_back(std::move(row));
      }
    } else if (st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY && !error) {
      std::string msg = Trimmed(pq_->result_error_field(r, PG_DIAG_MESSAGE_PRIMARY));
      if (msg.empty()) msg = Trimmed(pq_->error_message(conn_));
      const char* state = pq_->result_error_field(r, PG_DIAG_SQLSTATE);
      if (state != nullptr) absl::StrAppend(&msg, " (SQLSTATE ", state, ")");
      if (const char* d = pq_->result_error_field(r, PG_DIAG_MESSAGE_DETAIL)) {
        absl::StrAppend(&msg, "\n  DETAIL: ", Trimmed(d));
      }
      if (const char* h = pq_->result_error_field(r, PG_DIAG_MESSAGE_HINT)) {
        absl::StrAppend(&msg, "\n  HINT: ", Trimmed(h));
      }
      error = absl::FailedPreconditionError(msg);
    }
    pq_->clear(r);
  }
  if (pq_->status(conn_) != CONNECTION_OK && !error) {
    error = absl::UnavailableError(
        absl::StrCat("the connection was lost: ", Trimmed(pq_->error_message(conn_))));
  }
  if (error) return *error;
  return out;
}

}  // namespace pgbranch::cli
