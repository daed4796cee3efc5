#pragma once

#include <libpq-fe.h>

#include "absl/status/status.h"

// DDL capture: every branch records the DDL executed on it, in order and as the user wrote it,
// so that `pgbranch branch promote` can replay it on the parent (docs/promotion.md).
//
// In the branch's database (the one its connection strings name) the compute installs, as the
// superuser at start:
//   - schema `pgbranch` (USAGE for everyone, CREATE for no one) with table
//     pgbranch.ddl_log(id, timeline, executed_at, pid, statement_start, username, command_tag,
//     query), readable by everyone, written only by the trigger function;
//   - event triggers pgbranch_capture_ddl (ddl_command_end) and pgbranch_capture_drop
//     (sql_drop) that insert current_query() — the whole top-level statement the client sent
//     (a multi-statement query string or a DO block once, not each command inside it).
// One row per client statement: (pid, statement_start, md5(query)) is unique and a repeat is
// ignored, so the commands of one query string, or a DROP seen by both triggers, log once.
// A row commits or rolls back with the user's transaction. `timeline` is the pageserver timeline
// the statement ran on (the compute sets pgbranch.timeline in postgresql.conf): a child
// inherits its parent's rows with its data, and its own statements are the rows naming its
// own timeline (a reset drops them with the rest of the branch's data). Rows keep `id` order.
// Not captured (event triggers never see them): DML (UPDATE backfills), roles, databases,
// tablespaces, and the installer's own statements (it sets pgbranch.capture = off).
namespace pgbranch::compute {

// The version of the objects above; a database whose schema comment names another version is
// installed again (every statement is idempotent).
inline constexpr char kDdlCaptureVersion[] = "pgbranch DDL capture v1";

// Installs the capture in the database `conn` is connected to, unless this version is there
// already (one catalog query then: no commit on a wake). Needs a superuser connection to a
// primary.
absl::Status EnsureDdlCapture(PGconn* conn);

}  // namespace pgbranch::compute
