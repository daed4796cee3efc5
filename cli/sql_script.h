#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

// SQL text as PostgreSQL's lexer would cut it into statements: semicolons outside quotes
// ('...', E'...' with backslash escapes, "..."), dollar quotes ($$...$$, $tag$...$tag$) and
// comments (-- to the end of the line, nested /* */), and the BEGIN ... END bodies of
// CREATE [OR REPLACE] FUNCTION|PROCEDURE (SQL-standard bodies: BEGIN ATOMIC ...; ...; END), as
// psql cuts them. No I/O; unit-tested alone.
namespace pgbranch::cli {

// The statements of `sql`, each without its semicolon, surrounding whitespace trimmed; empty
// statements and comment-only pieces are dropped. INVALID_ARGUMENT for an unterminated quote
// or comment, or a psql meta-command (a line starting with a backslash), naming the line.
absl::StatusOr<std::vector<std::string>> SplitSqlStatements(const std::string& sql);

// The first `n` keywords of a statement, upper-cased, comments skipped ("CREATE", "INDEX",
// "CONCURRENTLY", ...); stops at the first token that is not a bare word.
std::vector<std::string> LeadingKeywords(const std::string& statement, size_t n);

// `statement` without the comments and whitespace before its first token (for display).
std::string WithoutLeadingComments(const std::string& statement);

// Statements PostgreSQL refuses inside a transaction block: CREATE/DROP INDEX CONCURRENTLY,
// REINDEX ... CONCURRENTLY, VACUUM, CREATE/DROP DATABASE, CREATE/DROP TABLESPACE,
// ALTER SYSTEM, CREATE/DROP SUBSCRIPTION.
bool IsNonTransactional(const std::string& statement);

// BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, ABORT: a migration file's own transaction
// control (promote runs the statements in its own transaction).
bool IsTransactionControl(const std::string& statement);

}  // namespace pgbranch::cli
