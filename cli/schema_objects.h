#pragma once

#include <optional>
#include <string>
#include <vector>

// A schema as a list of named objects, and two- and three-way comparisons of schemas. Input is
// the text of `pg_dump --schema-only`, whose every object starts with a header comment
//   -- Name: customers; Type: TABLE; Schema: ecommerce; Owner: -
// Objects are compared by (type, schema, name), so every difference names its object, and a
// change on one side is never confused with a change on the other (three-way).
namespace pgbranch::cli {

struct SchemaObject {
  std::string type;    // TABLE, INDEX, FUNCTION, CONSTRAINT, ...
  std::string schema;  // "-" for objects outside a schema (SCHEMA, EXTENSION)
  std::string name;    // as pg_dump names it ("customers customers_pkey" for a constraint)
  std::string sql;     // the statements, trailing blank lines removed

  std::string Key() const { return type + "\x1f" + schema + "\x1f" + name; }
  // "TABLE ecommerce.customers", "CONSTRAINT customers_pkey ON ecommerce.customers".
  std::string Label() const;
};

// Objects in dump order. The preamble (SET statements) belongs to no object and is dropped.
std::vector<SchemaObject> ParseSchemaDump(const std::string& dump);

enum class ChangeSide {
  kBranch,  // changed on the branch (two-way: the branch differs from the other)
  kParent,  // changed on the parent since the branch point (drift)
  kBoth,    // changed on both sides
};

struct SchemaChange {
  std::string label;   // SchemaObject::Label()
  std::string type;    // SchemaObject::type
  std::string change;  // added | dropped | changed (seen from the side that changed it)
  ChangeSide side = ChangeSide::kBranch;
  // Both sides changed the object in ways that overlap (same columns, or the whole object
  // differently); a change made identically on both sides is not a conflict.
  bool conflict = false;
  std::optional<std::string> base;    // three-way only: at the branch point
  std::optional<std::string> ours;    // the branch
  std::optional<std::string> theirs;  // the other branch / the parent now
};

// `ours` (the branch) against `theirs` (another branch, or the parent now).
std::vector<SchemaChange> TwoWaySchemaDiff(const std::vector<SchemaObject>& theirs,
                                           const std::vector<SchemaObject>& ours);

// `base` is the parent at the branch point, `ours` the branch, `theirs` the parent now.
std::vector<SchemaChange> ThreeWaySchemaDiff(const std::vector<SchemaObject>& base,
                                             const std::vector<SchemaObject>& ours,
                                             const std::vector<SchemaObject>& theirs);

// A line diff of two texts for people: every line of both, prefixed "  ", "- " or "+ ".
std::string LineDiff(const std::string& from, const std::string& to);

}  // namespace pgbranch::cli
