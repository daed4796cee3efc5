#include "compute/role_setup.h"

#include <libpq-fe.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "compute/ddl_capture.h"
#include "compute/scram_verifier.h"

namespace pgbranch::compute {
namespace {

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultCloser {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, ConnCloser>;
using Result = std::unique_ptr<PGresult, ResultCloser>;

std::string ErrorOf(PGconn* conn) {
  std::string e = PQerrorMessage(conn);
  while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
  return e;
}

// Runs `sql` with text parameters; returns whether it returned at least one row.
absl::StatusOr<bool> Exec(PGconn* conn, const std::string& sql,
                          const std::vector<std::string>& params = {}) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  Result r(PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                        nullptr, nullptr, 0));
  ExecStatusType st = PQresultStatus(r.get());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return absl::InternalError(ErrorOf(conn));
  }
  return st == PGRES_TUPLES_OK && PQntuples(r.get()) > 0;
}

absl::StatusOr<std::string> Identifier(PGconn* conn, const std::string& name) {
  char* id = PQescapeIdentifier(conn, name.c_str(), name.size());
  if (id == nullptr) return absl::InternalError(ErrorOf(conn));
  std::string out = id;
  PQfreemem(id);
  return out;
}

// What the role step needs to know, read in one statement (each statement of a new backend
// reads catalogs cold through pagefs).
struct RoleState {
  bool in_recovery = false;
  bool role_exists = false;
  std::string verifier;  // pg_authid.rolpassword, empty when NULL
  bool can_login = false;
  bool database_exists = false;
  // The connected database holds the current DDL capture (ddl_capture.h).
  bool ddl_capture_current = false;
};

absl::StatusOr<RoleState> LookUpRole(PGconn* conn, const std::string& role,
                                     const std::string& database) {
  const char* values[] = {role.c_str(), database.c_str(), kDdlCaptureVersion};
  Result r(
      PQexecParams(conn,
                   "SELECT pg_catalog.pg_is_in_recovery(), a.oid IS NOT NULL, "
                   "coalesce(a.rolpassword, ''), coalesce(a.rolcanlogin, false), "
                   "EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = $2), "
                   "EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'pgbranch' AND "
                   "pg_catalog.obj_description(oid, 'pg_namespace') = $3) "
                   "FROM (VALUES (1)) AS one LEFT JOIN pg_catalog.pg_authid a ON a.rolname = $1",
                   3, nullptr, values, nullptr, nullptr, 0));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) {
    return absl::InternalError(ErrorOf(conn));
  }
  auto flag = [&r](int column) { return std::string(PQgetvalue(r.get(), 0, column)) == "t"; };
  RoleState out;
  out.in_recovery = flag(0);
  out.role_exists = flag(1);
  out.verifier = PQgetvalue(r.get(), 0, 2);
  out.can_login = flag(3);
  out.database_exists = flag(4);
  out.ddl_capture_current = flag(5);
  return out;
}

double MsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// `before`: how long the connection and the role's look-up took (logged with the change).
absl::Status SetPassword(PGconn* conn, const std::string& role, const std::string& role_id,
                         const std::string& password, const std::string& before) {
  const auto t = std::chrono::steady_clock::now();
  // A pre-hashed verifier is set as given (PostgreSQL stores it unchanged).
  std::string verifier = password;
  if (!IsScramVerifier(password)) {
    char* made = PQencryptPasswordConn(conn, password.c_str(), role.c_str(), "scram-sha-256");
    if (made == nullptr) {
      return absl::InternalError(
          absl::StrCat("cannot compute the SCRAM verifier: ", ErrorOf(conn)));
    }
    verifier = made;
    PQfreemem(made);
  }
  char* literal = PQescapeLiteral(conn, verifier.c_str(), verifier.size());
  if (literal == nullptr) return absl::InternalError(ErrorOf(conn));
  std::string alter = absl::StrCat("ALTER ROLE ", role_id, " WITH LOGIN PASSWORD ", literal);
  PQfreemem(literal);
  absl::StatusOr<bool> altered = Exec(conn, alter);
  if (!altered.ok()) {
    return absl::InternalError(absl::StrCat("ALTER ROLE ", role, ": ", altered.status().message()));
  }
  char took[32];
  snprintf(took, sizeof(took), "%.1f", MsSince(t));
  LogInfo("Set the role's password", {{"role", role}, {"before_ms", before}, {"alter_ms", took}});
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ReadPasswordFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the password file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  // Stripped like the CLI strips it when it builds connection strings.
  std::string pw(absl::StripAsciiWhitespace(ss.str()));
  if (pw.empty())
    return absl::InvalidArgumentError(absl::StrCat("the password file ", path, " is empty"));
  return pw;
}

absl::Status SetUpRole(const std::string& conninfo, const std::string& fallback_conninfo,
                       const std::string& role, const std::string& database,
                       const std::string& password) {
  const auto t0 = std::chrono::steady_clock::now();
  Conn conn(PQconnectdb(conninfo.c_str()));
  bool in_database = true;
  if (PQstatus(conn.get()) != CONNECTION_OK && !fallback_conninfo.empty() &&
      ErrorOf(conn.get()).find("does not exist") != std::string::npos) {
    conn.reset(PQconnectdb(fallback_conninfo.c_str()));
    in_database = false;
  }
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to PostgreSQL: ", ErrorOf(conn.get())));
  }
  // This backend has rebuilt the database's relation cache init file: further connections to
  // it start warm.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  PGB_ASSIGN_OR_RETURN(RoleState state, LookUpRole(conn.get(), role, database));
  // A read-write endpoint serves a primary: never a standby (a standby.signal that survived, a
  // promotion that did not happen).
  if (state.in_recovery) {
    return absl::FailedPreconditionError(
        "PostgreSQL is still in recovery: a read-write endpoint needs a primary");
  }
  PGB_ASSIGN_OR_RETURN(std::string role_id, Identifier(conn.get(), role));
  if (!state.role_exists) {
    absl::StatusOr<bool> r =
        Exec(conn.get(), absl::StrCat("CREATE ROLE ", role_id, " LOGIN CREATEDB CREATEROLE"));
    if (!r.ok()) {
      return absl::InternalError(absl::StrCat("CREATE ROLE ", role, ": ", r.status().message()));
    }
    LogInfo("Created role", {{"role", role}});
  }
  // Setting an unchanged password would cost a commit (a round trip to the pageserver) on every
  // wake: compare with the stored verifier first.
  // A branch's pg_authid starts as a copy of its parent's: the role gets this branch's own
  // verifier here, at every start (so also after a reset).
  // The password change commits synchronously: a branch or a read-only endpoint taken at this
  // branch's LSNs from now on must hold the password the branch's credentials say (the proxy
  // logs in with it), and a commit the WAL writer had not flushed yet would be missing there.
  bool current = IsScramVerifier(password) ? state.verifier == password
                                           : ScramVerifierMatches(state.verifier, password);
  if (!state.role_exists || !state.can_login || !current) {
    char before[32];
    snprintf(before, sizeof(before), "%.1f", MsSince(t0));
    PGB_RETURN_IF_ERROR(SetPassword(conn.get(), role, role_id, password, before));
  }
  if (!state.database_exists) {
    PGB_ASSIGN_OR_RETURN(std::string db_id, Identifier(conn.get(), database));
    absl::StatusOr<bool> r =
        // FILE_COPY: a small WAL record between two checkpoints, instead of every page of
        // template1 logged (WAL_LOG, ~7 MB) after the last checkpoint, which every branch of
        // a new root would replay (creating each relation file again through FUSE).
        Exec(conn.get(),
             absl::StrCat("CREATE DATABASE ", db_id, " OWNER ", role_id, " STRATEGY FILE_COPY"));
    if (!r.ok()) {
      return absl::InternalError(
          absl::StrCat("CREATE DATABASE ", database, ": ", r.status().message()));
    }
    LogInfo("Created database", {{"database", database}, {"owner", role}});
  }
  // The DDL capture lives in the database itself (children inherit it with the data). Already
  // current (the usual case: a branch inherits it): seen by the statement above.
  if (in_database && state.ddl_capture_current) return absl::OkStatus();
  if (!in_database) {
    conn.reset(PQconnectdb(conninfo.c_str()));
    if (PQstatus(conn.get()) != CONNECTION_OK) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to database ", database, ": ", ErrorOf(conn.get())));
    }
    PQsetNoticeProcessor(
        conn.get(), [](void*, const char*) {}, nullptr);
  }
  return EnsureDdlCapture(conn.get());
}

}  // namespace pgbranch::compute
