// `pgbranch branch schema-diff`: compares branches' schemas object by object (pg_dump
// --schema-only of each through its endpoint, which wakes a suspended one). Against the parent
// it is three-way: the parent's schema at the branch point comes from a short-lived read-only
// endpoint at the branch's parent LSN, so a change on the branch, a change on the parent since
// (drift) and a conflict are told apart — drift is never shown as the branch dropping something.
#include "cli/schema_diff.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/connection_info.h"
#include "cli/resource_commands.h"
#include "cli/resource_util.h"
#include "cli/schema_objects.h"
#include "common/status_macros.h"
#include "operator/model/json.h"
#include "operator/model/resources.h"

namespace pgbranch::cli {
namespace {

using control::JsonBool;
using control::JsonInt;
using control::JsonString;
using web::json::value;

constexpr char kPgDump[] = "/usr/lib/postgresql/15/bin/pg_dump";

// Runs a shell command; returns its exit code and fills `out` with its stdout.
int Capture(const std::string& command, std::string* out) {
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out->append(buf, n);
  int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The endpoint to read a branch's schema from: its read-write one, else any.
absl::StatusOr<value> EndpointOf(const ApiClient& client, const std::string& branch) {
  PGB_ASSIGN_OR_RETURN(value list, client.Get("/v1/endpoints"));
  std::optional<value> found;
  for (const auto& e : list.at("items").as_array()) {
    if (JsonString(e.at("spec"), "branch") != branch) continue;
    if (e.at("metadata").has_field("deletionTimestamp")) continue;
    bool rw = JsonString(e.at("spec"), "type") == "ReadWrite";
    if (!found || rw) found = e;
    if (rw) break;
  }
  if (!found) {
    return absl::FailedPreconditionError(
        absl::StrCat("branch \"", branch,
                     "\" has no endpoint to read its schema from; create one: "
                     "pgbranch endpoint create ",
                     branch, " --branch ", branch));
  }
  return *found;
}

absl::StatusOr<std::string> DumpSchema(const std::string& uri, const std::string& path) {
  std::string err_path = path + ".err";
  // The DDL capture's schema is pgbranch's, not the user's (compute/ddl_capture.h).
  std::string cmd = absl::StrCat(kPgDump,
                                 " --schema-only --no-owner --no-privileges "
                                 "--exclude-schema=pgbranch -f '",
                                 path, "' '", uri, "' 2>'", err_path, "'");
  std::string ignored;
  int rc = Capture(cmd, &ignored);
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  if (rc != 0) {
    std::ifstream e(err_path);
    std::stringstream eb;
    eb << e.rdbuf();
    ::unlink(err_path.c_str());  // the temporary directory must be empty to go away
    return absl::UnavailableError(absl::StrCat("pg_dump failed: ", eb.str()));
  }
  ::unlink(err_path.c_str());
  // Drop the lines that name the server/pg_dump versions (never differ) and pg_dump's random
  // \restrict keys (always differ): noise in a schema comparison.
  std::string out;
  std::istringstream lines(buf.str());
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("-- Dumped ", 0) == 0 || line.rfind("\\restrict ", 0) == 0 ||
        line.rfind("\\unrestrict ", 0) == 0) {
      continue;
    }
    out += line + "\n";
  }
  std::ofstream(path, std::ios::trunc) << out;
  return out;
}

absl::StatusOr<std::vector<SchemaObject>> SchemaOf(const CliContext& ctx, const value& endpoint,
                                                   const std::string& dir,
                                                   const std::string& file) {
  PGB_ASSIGN_OR_RETURN(ConnectionInfo c, EndpointConnection(ctx, endpoint));
  std::string path = dir + "/" + file;
  auto text = DumpSchema(c.uri, path);
  ::unlink(path.c_str());
  if (!text.ok()) return text.status();
  std::vector<SchemaObject> objects = ParseSchemaDump(*text);
  // Its event triggers belong to no schema: --exclude-schema keeps them.
  objects.erase(std::remove_if(objects.begin(), objects.end(),
                               [](const SchemaObject& o) {
                                 return o.type == "EVENT TRIGGER" &&
                                        o.name.rfind("pgbranch_capture_", 0) == 0;
                               }),
                objects.end());
  return objects;
}

// A read-only endpoint on `parent` at `lsn`, deleted when this goes out of scope.
class BranchPointEndpoint {
 public:
  BranchPointEndpoint(const ApiClient& client, std::string name)
      : client_(client), name_(std::move(name)) {}
  ~BranchPointEndpoint() {
    if (created_) (void)client_.Delete("/v1/endpoints/" + name_);
  }
  absl::StatusOr<value> Start(const std::string& parent, uint64_t lsn) {
    value spec = value::object();
    spec["branch"] = value::string(parent);
    spec["type"] = value::string("ReadOnly");
    spec["lsn"] = value::number(lsn);
    PGB_RETURN_IF_ERROR(
        client_.Post("/v1/apply", Manifest("Endpoint", name_, std::move(spec)).serialize())
            .status());
    created_ = true;
    return WaitEndpointRunning(client_, name_);
  }

 private:
  const ApiClient& client_;
  const std::string name_;
  bool created_ = false;
};

std::string BaseEndpointName(const std::string& branch) {
  std::random_device rd;
  std::string suffix = absl::StrFormat("-base-%04x", rd() & 0xffff);
  return branch.substr(0, 63 - suffix.size()) + suffix;
}

const char* SideName(ChangeSide side) {
  switch (side) {
    case ChangeSide::kBranch:
      return "branch";
    case ChangeSide::kParent:
      return "parent";
    case ChangeSide::kBoth:
      return "both";
  }
  return "";
}

std::string Indent(const std::string& text) {
  std::string out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) absl::StrAppend(&out, "    ", line, "\n");
  return out;
}

// The diff of one object from `from` to `to` (either may be absent).
std::string ObjectDiff(const std::optional<std::string>& from,
                       const std::optional<std::string>& to) {
  return LineDiff(from.value_or(""), to.value_or(""));
}

void PrintChange(const SchemaChange& c, const std::string& ours, const std::string& theirs,
                 bool three_way) {
  std::cout << "== " << c.label << ": " << c.change;
  if (c.side == ChangeSide::kBoth) std::cout << (c.conflict ? " (CONFLICT)" : " (compatible)");
  std::cout << "\n";
  if (!three_way) {
    std::cout << Indent(ObjectDiff(c.theirs, c.ours));
  } else if (c.side == ChangeSide::kBranch) {
    std::cout << Indent(ObjectDiff(c.base, c.ours));
  } else if (c.side == ChangeSide::kParent) {
    std::cout << Indent(ObjectDiff(c.base, c.theirs));
  } else {
    std::cout << "  on " << ours << ":\n"
              << Indent(ObjectDiff(c.base, c.ours)) << "  on " << theirs << ":\n"
              << Indent(ObjectDiff(c.base, c.theirs));
  }
}

value ChangeJson(const SchemaChange& c, bool three_way) {
  value v = value::object();
  v["object"] = value::string(c.label);
  v["type"] = value::string(c.type);
  v["change"] = value::string(c.change);
  v["side"] = value::string(SideName(c.side));
  v["conflict"] = value::boolean(c.conflict);
  auto opt = [](const std::optional<std::string>& s) {
    return s ? value::string(*s) : value::null();
  };
  if (three_way) v["base"] = opt(c.base);
  v["ours"] = opt(c.ours);
  v["theirs"] = opt(c.theirs);
  return v;
}

}  // namespace

absl::StatusOr<web::json::value> ReadableEndpoint(const ApiClient& client,
                                                  const std::string& branch) {
  return EndpointOf(client, branch);
}

absl::StatusOr<std::vector<SchemaObject>> ReadSchema(const CliContext& ctx,
                                                     const web::json::value& endpoint) {
  char dir_template[] = "/tmp/pgbranch-schema.XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) return absl::InternalError("mkdtemp failed");
  const std::string dir = dir_template;
  auto objects = SchemaOf(ctx, endpoint, dir, "schema");
  ::rmdir(dir.c_str());
  return objects;
}

absl::StatusOr<SchemaComparison> CompareSchemas(const CliContext& ctx, const SchemaDiffOptions& o) {
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_ASSIGN_OR_RETURN(value b, client.Get("/v1/branches/" + o.branch));
  const std::string parent = JsonString(b.at("spec"), "parent");
  const std::string other = o.against.empty() ? parent : o.against;
  if (other.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "branch \"", o.branch, "\" is a root branch: name one to compare with, --against OTHER"));
  }
  const bool three_way = o.against.empty() && !o.two_way;
  const uint64_t branch_point = static_cast<uint64_t>(JsonInt(b.at("status"), "parentLSN"));
  if (three_way && branch_point == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "branch \"", o.branch, "\" has no branch point yet (phase ",
        JsonString(b.at("status"), "phase"), "); try again when it is Ready, or use --two-way"));
  }
  PGB_RETURN_IF_ERROR(client.Get("/v1/branches/" + other).status());
  PGB_ASSIGN_OR_RETURN(value theirs_ep, EndpointOf(client, other));
  PGB_ASSIGN_OR_RETURN(value ours_ep, EndpointOf(client, o.branch));

  char dir_template[] = "/tmp/pgbranch-schema-diff.XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) return absl::InternalError("mkdtemp failed");
  const std::string dir = dir_template;
  struct RemoveDir {
    std::string dir;
    ~RemoveDir() { ::rmdir(dir.c_str()); }
  } remove_dir{dir};

  SchemaComparison out;
  out.branch = o.branch;
  out.other = other;
  out.three_way = three_way;
  out.branch_point = branch_point;
  PGB_ASSIGN_OR_RETURN(std::vector<SchemaObject> theirs, SchemaOf(ctx, theirs_ep, dir, "theirs"));
  PGB_ASSIGN_OR_RETURN(std::vector<SchemaObject> ours, SchemaOf(ctx, ours_ep, dir, "ours"));
  if (three_way) {
    BranchPointEndpoint base_ep(client, BaseEndpointName(o.branch));
    PGB_ASSIGN_OR_RETURN(value base_obj, base_ep.Start(other, branch_point));
    PGB_ASSIGN_OR_RETURN(std::vector<SchemaObject> base, SchemaOf(ctx, base_obj, dir, "base"));
    out.changes = ThreeWaySchemaDiff(base, ours, theirs);
  } else {
    out.changes = TwoWaySchemaDiff(theirs, ours);
  }
  for (const auto& c : out.changes) out.conflicts += c.conflict ? 1 : 0;
  return out;
}

web::json::value SchemaComparisonJson(const SchemaComparison& d) {
  value v = value::object();
  v["branch"] = value::string(d.branch);
  v["against"] = value::string(d.other);
  v["mode"] = value::string(d.three_way ? "three-way" : "two-way");
  if (d.three_way) v["branchPointLSN"] = value::number(d.branch_point);
  v["identical"] = value::boolean(d.changes.empty());
  v["conflicts"] = value::number(d.conflicts);
  value arr = value::array();
  size_t i = 0;
  for (const auto& c : d.changes) arr[i++] = ChangeJson(c, d.three_way);
  v["changes"] = arr;
  return v;
}

void PrintSchemaComparison(const SchemaComparison& d) {
  const std::string& other = d.other;
  const auto& changes = d.changes;
  if (changes.empty()) {
    std::cout << "no schema differences between " << d.branch << " and " << other
              << (d.three_way ? " (neither changed its schema since the branch point)" : "")
              << "\n";
    return;
  }
  if (!d.three_way) {
    std::cout << "schema of " << d.branch << " against " << other << ": " << changes.size()
              << " object(s) differ (- " << other << ", + " << d.branch << ")\n\n";
    for (const auto& c : changes) PrintChange(c, d.branch, other, false);
    return;
  }
  std::cout << "schema of " << d.branch << " against " << other
            << ", three-way from the branch point (LSN " << d.branch_point << ")\n";
  const struct {
    ChangeSide side;
    std::string title;
  } sections[] = {
      {ChangeSide::kBranch, absl::StrCat("changed on ", d.branch, " since it branched")},
      {ChangeSide::kParent,
       absl::StrCat("changed on ", other, " since the branch point (drift; not ", d.branch,
                    "'s changes)")},
      {ChangeSide::kBoth, absl::StrCat("changed on both (", d.conflicts, " conflict(s))")},
  };
  for (const auto& section : sections) {
    int n = 0;
    for (const auto& c : changes) n += c.side == section.side ? 1 : 0;
    if (n == 0) continue;
    std::cout << "\n" << section.title << ": " << n << " object(s)\n";
    for (const auto& c : changes) {
      if (c.side == section.side) PrintChange(c, d.branch, other, true);
    }
  }
}

absl::StatusOr<bool> SchemaDiff(const CliContext& ctx, const SchemaDiffOptions& o) {
  PGB_ASSIGN_OR_RETURN(SchemaComparison d, CompareSchemas(ctx, o));
  if (ctx.json()) {
    PrintJson(SchemaComparisonJson(d));
  } else {
    PrintSchemaComparison(d);
  }
  return !d.changes.empty();
}

}  // namespace pgbranch::cli
