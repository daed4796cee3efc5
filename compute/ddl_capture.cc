#include "compute/ddl_capture.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace pgbranch::compute {
namespace {

struct ResultCloser {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultCloser>;

// One transaction with the version comment last (appended below): a crash in the middle leaves
// nothing, and a database without the comment is installed again.
constexpr char kInstall[] = R"sql(
BEGIN;
SET LOCAL pgbranch.capture = 'off';
CREATE SCHEMA IF NOT EXISTS pgbranch;
REVOKE ALL ON SCHEMA pgbranch FROM PUBLIC;
GRANT USAGE ON SCHEMA pgbranch TO PUBLIC;
CREATE TABLE IF NOT EXISTS pgbranch.ddl_log (
  id bigserial PRIMARY KEY,
  timeline text NOT NULL,
  executed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  pid integer NOT NULL,
  statement_start timestamptz NOT NULL,
  username name NOT NULL,
  command_tag text NOT NULL,
  query text NOT NULL,
  query_md5 text GENERATED ALWAYS AS (md5(query)) STORED,
  UNIQUE (pid, statement_start, query_md5));
REVOKE ALL ON pgbranch.ddl_log FROM PUBLIC;
GRANT SELECT ON pgbranch.ddl_log TO PUBLIC;
CREATE OR REPLACE FUNCTION pgbranch.capture_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  IF current_setting('pgbranch.capture', true) = 'off' THEN
    RETURN;
  END IF;
  INSERT INTO pgbranch.ddl_log (timeline, pid, statement_start, username, command_tag, query)
  VALUES (coalesce(current_setting('pgbranch.timeline', true), ''), pg_backend_pid(), statement_timestamp(), session_user,
          tg_tag, current_query())
  ON CONFLICT (pid, statement_start, query_md5) DO NOTHING;
END
$fn$;
REVOKE ALL ON FUNCTION pgbranch.capture_ddl() FROM PUBLIC;
DO $do$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'pgbranch_capture_ddl') THEN
    CREATE EVENT TRIGGER pgbranch_capture_ddl ON ddl_command_end
      EXECUTE FUNCTION pgbranch.capture_ddl();
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'pgbranch_capture_drop') THEN
    CREATE EVENT TRIGGER pgbranch_capture_drop ON sql_drop
      EXECUTE FUNCTION pgbranch.capture_ddl();
  END IF;
END
$do$;
)sql";

std::string ErrorOf(PGconn* conn) {
  std::string e = PQerrorMessage(conn);
  while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
  return e;
}

}  // namespace

absl::Status EnsureDdlCapture(PGconn* conn) {
  const char* values[] = {kDdlCaptureVersion};
  Result check(PQexecParams(conn,
                            "SELECT 1 FROM pg_catalog.pg_namespace "
                            "WHERE nspname = 'pgbranch' AND "
                            "pg_catalog.obj_description(oid, 'pg_namespace') = $1",
                            1, nullptr, values, nullptr, nullptr, 0));
  if (PQresultStatus(check.get()) != PGRES_TUPLES_OK) {
    return absl::InternalError(absl::StrCat("checking the DDL capture: ", ErrorOf(conn)));
  }
  if (PQntuples(check.get()) > 0) return absl::OkStatus();
  const std::string install = absl::StrCat(kInstall, "COMMENT ON SCHEMA pgbranch IS '",
                                           kDdlCaptureVersion, "';\nCOMMIT;\n");
  Result r(PQexec(conn, install.c_str()));
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    std::string error = ErrorOf(conn);
    Result rollback(PQexec(conn, "ROLLBACK"));
    return absl::InternalError(absl::StrCat("installing the DDL capture: ", error));
  }
  LogInfo("Installed the DDL capture", {{"database", PQdb(conn)}});
  return absl::OkStatus();
}

}  // namespace pgbranch::compute
