#include "compute/activity_sampler.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace pgbranch::compute {
namespace {

// One row: idle, idle in transaction, other (running) client sessions, autovacuum workers.
constexpr char kQuery[] = R"sql(
SELECT count(*) FILTER (WHERE client AND s = 'idle'),
       count(*) FILTER (WHERE client AND s LIKE 'idle in transaction%'),
       count(*) FILTER (WHERE client AND s <> 'idle' AND s NOT LIKE 'idle in transaction%'),
       count(*) FILTER (WHERE backend_type = 'autovacuum worker')
FROM (SELECT backend_type, backend_type IN ('client backend', 'walsender') AS client,
             coalesce(state, 'starting') AS s
      FROM pg_stat_activity WHERE pid <> pg_backend_pid()) a
)sql";

}  // namespace

PgActivitySource::PgActivitySource(std::string conninfo) : conninfo_(std::move(conninfo)) {}

PgActivitySource::~PgActivitySource() { Close(); }

void PgActivitySource::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  if (conn_ != nullptr) PQfinish(conn_);
  conn_ = nullptr;
}

absl::StatusOr<ActivitySnapshot> PgActivitySource::Sample() {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return absl::FailedPreconditionError("PostgreSQL is not running");
  absl::StatusOr<ActivitySnapshot> s = SampleLocked();
  if (s.ok() || conn_ != nullptr) return s;
  return SampleLocked();  // the connection broke: one fresh attempt
}

absl::StatusOr<ActivitySnapshot> PgActivitySource::TrySample() {
  std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) return absl::UnavailableError("the sampler is busy");
  if (closed_ || conn_ == nullptr) return absl::UnavailableError("not connected");
  return SampleLocked();
}

absl::Status PgActivitySource::ConnectLocked() {
  if (conn_ != nullptr) return absl::OkStatus();
  conn_ = PQconnectdb(conninfo_.c_str());
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string err = PQerrorMessage(conn_);
    PQfinish(conn_);
    conn_ = nullptr;
    return absl::UnavailableError(absl::StrCat("cannot connect to PostgreSQL: ", err));
  }
  // Notices ("terminating connection...") would go to the agent's stderr unstructured.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
  return absl::OkStatus();
}

absl::Status PgActivitySource::WithConnection(const std::function<absl::Status(PGconn*)>& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return absl::FailedPreconditionError("PostgreSQL is not running");
  absl::Status s = absl::OkStatus();
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (s = ConnectLocked(); !s.ok()) return s;
    if (s = fn(conn_); s.ok() || PQstatus(conn_) != CONNECTION_BAD) return s;
    PQfinish(conn_);  // broken (e.g. the backend was terminated): one fresh attempt
    conn_ = nullptr;
  }
  return s;
}

absl::StatusOr<ActivitySnapshot> PgActivitySource::SampleLocked() {
  PGB_RETURN_IF_ERROR(ConnectLocked());
  PGresult* r = PQexec(conn_, kQuery);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    std::string err = PQerrorMessage(conn_);
    PQclear(r);
    PQfinish(conn_);
    conn_ = nullptr;
    return absl::UnavailableError(absl::StrCat("pg_stat_activity: ", err));
  }
  auto get = [r](int col) { return atoi(PQgetvalue(r, 0, col)); };
  ActivitySnapshot s;
  s.idle = get(0);
  s.idle_in_transaction = get(1);
  s.active = get(2);
  s.autovacuum_workers = get(3);
  s.client_sessions = s.idle + s.idle_in_transaction + s.active;
  PQclear(r);
  return s;
}

}  // namespace pgbranch::compute
