#pragma once

#include <string>

#include <vector>
#include "absl/status/statusor.h"

#include "cli/cli_context.h"
#include "cli/schema_objects.h"

// `pgbranch branch schema-diff NAME [--against OTHER] [--two-way] [--exit-code]`.
namespace pgbranch::cli {

struct SchemaDiffOptions {
  std::string branch;
  // Empty: the branch's parent, three-way through the branch point (what changed on the
  // branch, what changed on the parent since — drift — and conflicts). Set: two-way against
  // that branch's current schema.
  std::string against;
  bool two_way = false;    // against the parent, but two-way (the parent's current schema only)
  bool exit_code = false;  // differences make the command exit 1 (CI gates on it)
};

struct SchemaComparison {
  std::string branch;
  std::string other;
  bool three_way = false;
  uint64_t branch_point = 0;
  std::vector<SchemaChange> changes;
  int conflicts = 0;
};

// Compares without printing (`branch promote` refuses on conflicts with it).
absl::StatusOr<SchemaComparison> CompareSchemas(const CliContext& ctx,
                                                const SchemaDiffOptions& options);
void PrintSchemaComparison(const SchemaComparison& comparison);
web::json::value SchemaComparisonJson(const SchemaComparison& comparison);

// The endpoint to read a branch's schema through (its read-write one, else any); an error that
// says how to create one.
absl::StatusOr<web::json::value> ReadableEndpoint(const ApiClient& client,
                                                  const std::string& branch);
// The user's schema through `endpoint` (pg_dump --schema-only; pgbranch's own DDL-capture
// objects left out).
absl::StatusOr<std::vector<SchemaObject>> ReadSchema(const CliContext& ctx,
                                                     const web::json::value& endpoint);

// Prints the comparison (-o json: one document); returns whether there were differences.
absl::StatusOr<bool> SchemaDiff(const CliContext& ctx, const SchemaDiffOptions& options);

}  // namespace pgbranch::cli
