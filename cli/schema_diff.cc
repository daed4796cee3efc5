// `pgbranch branch schema-diff NAME [--against OTHER]`: a unified diff of two branches' schemas
// (pg_dump --schema-only of each, through the proxy, which wakes suspended endpoints), by default
// against the parent — what Neon's and Lakebase's schema diff show.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cli/resource_commands.h"
#include "common/status_macros.h"
#include "operator/model/json.h"

namespace pgbranch::cli {
namespace {

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

absl::StatusOr<int> EndpointPortOf(const ApiClient& client, const std::string& branch) {
  PGB_ASSIGN_OR_RETURN(value list, client.Get("/v1/endpoints"));
  int port = 0;
  for (const auto& e : list.at("items").as_array()) {
    if (JsonString(e.at("spec"), "branch") != branch) continue;
    if (e.at("metadata").has_field("deletionTimestamp")) continue;
    bool rw = JsonString(e.at("spec"), "type") == "ReadWrite";
    if (port == 0 || rw) port = static_cast<int>(JsonInt(e.at("status"), "port"));
    if (rw) break;
  }
  if (port == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("branch \"", branch,
                     "\" has no endpoint to read its schema from; create one: "
                     "pgbranch endpoint create ",
                     branch, " --branch ", branch));
  }
  return port;
}

absl::StatusOr<std::string> DumpSchema(const std::string& password, int port,
                                       const std::string& path) {
  std::string err_path = path + ".err";
  std::string cmd = absl::StrCat(kPgDump, " --schema-only --no-owner --no-privileges -f '", path,
                                 "' '", ConnectionUri(password, port), "' 2>'", err_path, "'");
  std::string ignored;
  int rc = Capture(cmd, &ignored);
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  if (rc != 0) {
    std::ifstream e(err_path);
    std::stringstream eb;
    eb << e.rdbuf();
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

}  // namespace

absl::Status RunSchemaDiff(const CliContext& ctx, pagectl::Args& args) {
  std::string name = args.Positional(2);
  std::optional<std::string> against = args.Flag("against");
  PGB_RETURN_IF_ERROR(args.CheckAllUsed(3));
  if (name.empty()) {
    return pagectl::UsageError("usage: pgbranch branch schema-diff NAME [--against OTHER]");
  }
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_ASSIGN_OR_RETURN(value b, client.Get("/v1/branches/" + name));
  std::string other = against.value_or(JsonString(b.at("spec"), "parent"));
  if (other.empty()) {
    return pagectl::UsageError(absl::StrCat(
        "branch \"", name, "\" is a root branch: name one to compare with, --against OTHER"));
  }
  PGB_RETURN_IF_ERROR(client.Get("/v1/branches/" + other).status());
  PGB_ASSIGN_OR_RETURN(int port_a, EndpointPortOf(client, other));
  PGB_ASSIGN_OR_RETURN(int port_b, EndpointPortOf(client, name));
  PGB_ASSIGN_OR_RETURN(std::string pw, ctx.Password());
  char dir_template[] = "/tmp/pgbranch-schema-diff.XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) return absl::InternalError("mkdtemp failed");
  std::string dir = dir_template;
  std::string file_a = dir + "/a.sql", file_b = dir + "/b.sql";
  PGB_RETURN_IF_ERROR(DumpSchema(pw, port_a, file_a).status());
  PGB_RETURN_IF_ERROR(DumpSchema(pw, port_b, file_b).status());
  std::string diff;
  int rc = Capture(absl::StrCat("diff -u --label '", other, "' --label '", name, "' '", file_a,
                                "' '", file_b, "'"),
                   &diff);
  ::unlink(file_a.c_str());
  ::unlink(file_b.c_str());
  ::rmdir(dir.c_str());
  if (rc != 0 && rc != 1) return absl::InternalError("diff failed");
  if (ctx.json()) {
    value v = value::object();
    v["branch"] = value::string(name);
    v["against"] = value::string(other);
    v["identical"] = value::boolean(rc == 0);
    v["diff"] = value::string(diff);
    PrintJson(v);
  } else if (rc == 0) {
    std::cout << "no schema differences between " << name << " and " << other << "\n";
  } else {
    std::cout << diff;
  }
  return absl::OkStatus();
}

}  // namespace pgbranch::cli
