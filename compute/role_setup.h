#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// The login role of an endpoint's connection strings, set up over the unix socket as the
// postgres superuser once PostgreSQL accepts connections (read-write endpoints only: a hot
// standby cannot write, and the role comes with the branch).
namespace pgbranch::compute {

// Reads a password file: its content without surrounding whitespace (as the CLI reads it). An error
// if it is unreadable or empty.
absl::StatusOr<std::string> ReadPasswordFile(const std::string& path);

// Creates `role` (LOGIN CREATEDB CREATEROLE) and `database` (owned by it) when missing, and sets
// the role's password unless it is already current. `password` is either a plain password (the
// SCRAM verifier is computed here with PQencryptPasswordConn, so the password itself never
// reaches the server or its logs) or a SCRAM-SHA-256 verifier, set as given: local mode hands
// the compute its branch's verifier, the very one the proxy checks clients against.
// Then installs the DDL capture in `database` (compute/ddl_capture.h). Errors if the server is in
// recovery.
//
// `conninfo` should name `database`: the first backend of a database after a recovery rebuilds
// its relation cache init file (cold catalog reads through pagefs), which the first client
// connection then finds done. `fallback_conninfo` (the postgres database) is used when
// `database` does not exist yet.
absl::Status SetUpRole(const std::string& conninfo, const std::string& fallback_conninfo,
                       const std::string& role, const std::string& database,
                       const std::string& password);

}  // namespace pgbranch::compute
