#include "cli/schema_objects.h"

#include <map>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pgbranch::cli {
namespace {

constexpr char kHeader[] = "-- Name: ";

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out = absl::StrSplit(text, '\n');
  if (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

// Parses "-- Name: N; Type: T; Schema: S; Owner: O" into `o`; false if the line is not one.
bool ParseHeader(const std::string& line, SchemaObject* o) {
  if (!absl::StartsWith(line, kHeader)) return false;
  std::string rest = line.substr(sizeof(kHeader) - 1);
  size_t t = rest.find("; Type: ");
  size_t s = rest.find("; Schema: ", t == std::string::npos ? 0 : t);
  if (t == std::string::npos || s == std::string::npos) return false;
  o->name = rest.substr(0, t);
  o->type = rest.substr(t + 8, s - t - 8);
  std::string schema = rest.substr(s + 10);
  size_t owner = schema.find("; ");
  o->schema = owner == std::string::npos ? schema : schema.substr(0, owner);
  return true;
}

void Finish(SchemaObject* o, std::vector<std::string>* body, std::vector<SchemaObject>* out) {
  // Drop the comment frame and blank lines around the statements.
  while (!body->empty() && (body->back().empty() || body->back() == "--")) body->pop_back();
  size_t first = 0;
  while (first < body->size() && ((*body)[first].empty() || (*body)[first] == "--")) ++first;
  std::string sql;
  for (size_t i = first; i < body->size(); ++i) absl::StrAppend(&sql, (*body)[i], "\n");
  o->sql = std::move(sql);
  out->push_back(std::move(*o));
  body->clear();
}

// The columns of a CREATE TABLE (name -> definition line) and everything else, so that two
// sides adding different columns to one table do not conflict.
struct TableParts {
  std::map<std::string, std::string> columns;
  std::string rest;
};

TableParts SplitTable(const std::string& sql) {
  TableParts p;
  bool inside = false;
  for (const std::string& line : Lines(sql)) {
    if (!inside && absl::StartsWith(line, "CREATE ") && absl::EndsWith(line, "(")) {
      inside = true;
      absl::StrAppend(&p.rest, line, "\n");
      continue;
    }
    if (inside && absl::StartsWith(line, ")")) inside = false;
    if (!inside) {
      absl::StrAppend(&p.rest, line, "\n");
      continue;
    }
    std::string def(absl::StripAsciiWhitespace(line));
    if (absl::EndsWith(def, ",")) def.pop_back();
    std::string name = def.substr(0, def.find(' '));
    p.columns[name] = def;
  }
  return p;
}

// What changed from `from` to `to`: column names and "" for the rest of the statement.
std::set<std::string> ChangedParts(const TableParts& from, const TableParts& to) {
  std::set<std::string> out;
  for (const auto& [name, def] : from.columns) {
    auto it = to.columns.find(name);
    if (it == to.columns.end() || it->second != def) out.insert(name);
  }
  for (const auto& [name, def] : to.columns) {
    if (!from.columns.count(name)) out.insert(name);
  }
  if (from.rest != to.rest) out.insert("");
  return out;
}

std::string PartOf(const TableParts& t, const std::string& part) {
  if (part.empty()) return t.rest;
  auto it = t.columns.find(part);
  return it == t.columns.end() ? std::string("\x1f(absent)") : it->second;
}

// Both sides changed one object: a conflict unless the changes are disjoint columns of a table,
// or the same change.
bool Conflicts(const std::string& type, const std::string& base, const std::string& ours,
               const std::string& theirs) {
  if (ours == theirs) return false;
  if (type != "TABLE") return true;
  TableParts b = SplitTable(base), o = SplitTable(ours), t = SplitTable(theirs);
  std::set<std::string> mine = ChangedParts(b, o), parent = ChangedParts(b, t);
  for (const std::string& part : mine) {
    if (parent.count(part) && PartOf(o, part) != PartOf(t, part)) return true;
  }
  return false;
}

using ObjectMap = std::map<std::string, const SchemaObject*>;

ObjectMap ByKey(const std::vector<SchemaObject>& objects) {
  ObjectMap m;
  for (const SchemaObject& o : objects) m[o.Key()] = &o;
  return m;
}

// Keys of all inputs, in the order they first appear (the branch's dump order first).
std::vector<const SchemaObject*> Union(
    std::initializer_list<const std::vector<SchemaObject>*> inputs) {
  std::vector<const SchemaObject*> out;
  std::set<std::string> seen;
  for (const auto* objects : inputs) {
    for (const SchemaObject& o : *objects) {
      if (seen.insert(o.Key()).second) out.push_back(&o);
    }
  }
  return out;
}

std::optional<std::string> SqlOf(const ObjectMap& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) return std::nullopt;
  return it->second->sql;
}

std::string ChangeKind(const std::optional<std::string>& from,
                       const std::optional<std::string>& to) {
  if (!from) return "added";
  if (!to) return "dropped";
  return "changed";
}

}  // namespace

std::string SchemaObject::Label() const {
  const std::string qualified = schema == "-" ? name : absl::StrCat(schema, ".", name);
  // Constraints, triggers, rules and policies are named "table object" by pg_dump.
  size_t space = name.find(' ');
  if (space != std::string::npos && schema != "-" &&
      (absl::StrContains(type, "CONSTRAINT") || type == "TRIGGER" || type == "RULE" ||
       type == "POLICY")) {
    return absl::StrCat(type, " ", name.substr(space + 1), " ON ", schema, ".",
                        name.substr(0, space));
  }
  return absl::StrCat(type, " ", qualified);
}

std::vector<SchemaObject> ParseSchemaDump(const std::string& dump) {
  std::vector<SchemaObject> out;
  std::optional<SchemaObject> current;
  std::vector<std::string> body;
  for (const std::string& line : Lines(dump)) {
    SchemaObject next;
    if (ParseHeader(line, &next)) {
      // The "--" line before this header belongs to the frame, not to the previous object.
      if (current) Finish(&*current, &body, &out);
      body.clear();
      current = std::move(next);
      continue;
    }
    if (absl::StartsWith(line, "-- PostgreSQL database dump complete")) break;
    if (current) body.push_back(line);
  }
  if (current) Finish(&*current, &body, &out);
  return out;
}

std::vector<SchemaChange> TwoWaySchemaDiff(const std::vector<SchemaObject>& theirs,
                                           const std::vector<SchemaObject>& ours) {
  ObjectMap t = ByKey(theirs), o = ByKey(ours);
  std::vector<SchemaChange> out;
  for (const SchemaObject* obj : Union({&ours, &theirs})) {
    const std::string key = obj->Key();
    std::optional<std::string> a = SqlOf(t, key), b = SqlOf(o, key);
    if (a == b) continue;
    SchemaChange c;
    c.label = obj->Label();
    c.type = obj->type;
    c.change = ChangeKind(a, b);
    c.side = ChangeSide::kBranch;
    c.theirs = a;
    c.ours = b;
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<SchemaChange> ThreeWaySchemaDiff(const std::vector<SchemaObject>& base,
                                             const std::vector<SchemaObject>& ours,
                                             const std::vector<SchemaObject>& theirs) {
  ObjectMap bm = ByKey(base), om = ByKey(ours), tm = ByKey(theirs);
  std::vector<SchemaChange> out;
  for (const SchemaObject* obj : Union({&ours, &theirs, &base})) {
    const std::string key = obj->Key();
    std::optional<std::string> b = SqlOf(bm, key), o = SqlOf(om, key), t = SqlOf(tm, key);
    const bool mine = o != b, parent = t != b;
    if (!mine && !parent) continue;
    SchemaChange c;
    c.label = obj->Label();
    c.type = obj->type;
    c.base = b;
    c.ours = o;
    c.theirs = t;
    if (mine && !parent) {
      c.side = ChangeSide::kBranch;
      c.change = ChangeKind(b, o);
    } else if (parent && !mine) {
      c.side = ChangeSide::kParent;
      c.change = ChangeKind(b, t);
    } else {
      c.side = ChangeSide::kBoth;
      c.change = ChangeKind(b, o);
      c.conflict = !o || !t || !b ? o != t : Conflicts(obj->type, *b, *o, *t);
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::string LineDiff(const std::string& from, const std::string& to) {
  std::vector<std::string> a = Lines(from), b = Lines(to);
  const size_t n = a.size(), m = b.size();
  std::string out;
  if (n * m > 4'000'000) {  // too large for the table below: show both whole
    for (const auto& l : a) absl::StrAppend(&out, "- ", l, "\n");
    for (const auto& l : b) absl::StrAppend(&out, "+ ", l, "\n");
    return out;
  }
  // Lines are equal when they differ only by a trailing comma (a column that stopped being the
  // last one), so adding a column shows as one added line.
  auto same = [](absl::string_view x, absl::string_view y) {
    if (absl::EndsWith(x, ",")) x.remove_suffix(1);
    if (absl::EndsWith(y, ",")) y.remove_suffix(1);
    return x == y;
  };
  // Longest common subsequence, then a walk that prints it with what is removed and added.
  std::vector<std::vector<uint32_t>> lcs(n + 1, std::vector<uint32_t>(m + 1, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      lcs[i][j] = same(a[i], b[j]) ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && same(a[i], b[j])) {
      absl::StrAppend(&out, "  ", b[j++], "\n");
      ++i;
    } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      absl::StrAppend(&out, "- ", a[i++], "\n");
    } else {
      absl::StrAppend(&out, "+ ", b[j++], "\n");
    }
  }
  return out;
}

}  // namespace pgbranch::cli
