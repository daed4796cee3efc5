// `branch list [--tree]` and `branch get NAME`.
#include <iostream>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "cli/connection_info.h"
#include "cli/lsn.h"
#include "cli/resource_commands.h"
#include "cli/resource_util.h"
#include "common/status_macros.h"
#include "operator/model/json.h"
#include "pageserver/pagectl/output.h"

namespace pgbranch::cli {
namespace {

using control::JsonBool;
using control::JsonInt;
using control::JsonString;
using web::json::value;

std::string NameOf(const value& obj) { return JsonString(obj.at("metadata"), "name"); }

// "0/1A2B3C8 (27443144)": PostgreSQL's X/Y spelling and the number the JSON shows; --lsn takes
// either. (pgbranch LSNs number commits at the pageserver, not WAL positions.)
std::string LsnText(const value& status, const char* field) {
  uint64_t lsn = static_cast<uint64_t>(JsonInt(status, field));
  return absl::StrCat(FormatLsn(lsn), " (", lsn, ")");
}

std::vector<std::string> BranchRow(const value& b, const std::string& name_column) {
  const value& spec = b.at("spec");
  const value& st = b.at("status");
  return {name_column,
          JsonString(spec, "parent").empty() ? "-" : JsonString(spec, "parent"),
          JsonString(st, "phase"),
          JsonBool(spec, "protected") ? "yes" : "no",
          Until(JsonString(st, "expireTime")),
          pagectl::HumanBytes(static_cast<uint64_t>(JsonInt(st, "logicalSize"))),
          pagectl::HumanBytes(static_cast<uint64_t>(JsonInt(st, "divergedBytes"))),
          Age(b)};
}

const std::vector<std::string> kBranchColumns = {"NAME",    "PARENT",       "PHASE",    "PROTECTED",
                                                 "EXPIRES", "LOGICAL SIZE", "DIVERGED", "AGE"};

// Adds `b` and its descendants to `t`, children under their parent:
//   main
//   +-- dev
//   |   `-- dev-fix
//   `-- pr-17
// `lead` precedes the name on b's row; `indent` precedes the connectors of b's children.
void AddTreeRows(const value& b, const std::multimap<std::string, value>& children,
                 const std::string& indent, const std::string& lead, pagectl::Table* t) {
  t->AddRow(BranchRow(b, lead + NameOf(b)));
  auto [first, last] = children.equal_range(NameOf(b));
  for (auto it = first; it != last; ++it) {
    bool is_last = std::next(it) == last;
    AddTreeRows(it->second, children, indent + (is_last ? "    " : "|   "),
                indent + (is_last ? "`-- " : "+-- "), t);
  }
}

}  // namespace

absl::Status BranchList(const CliContext& ctx, bool tree) {
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_ASSIGN_OR_RETURN(value v, client.Get("/v1/branches"));
  if (ctx.json()) {
    PrintJson(v);
    return absl::OkStatus();
  }
  std::vector<value> items = ItemsOf(v);
  pagectl::Table t(kBranchColumns);
  if (!tree) {
    for (const value& b : items) t.AddRow(BranchRow(b, NameOf(b)));
    t.Print(std::cout);
    return absl::OkStatus();
  }
  std::map<std::string, const value*> by_name;
  for (const value& b : items) by_name[NameOf(b)] = &b;
  std::multimap<std::string, value> children;  // parent -> child, in name order
  std::vector<const value*> roots;
  for (const value& b : items) {
    std::string parent = JsonString(b.at("spec"), "parent");
    if (parent.empty() || by_name.count(parent) == 0) {
      roots.push_back(&b);
    } else {
      children.emplace(parent, b);
    }
  }
  for (const value* r : roots) AddTreeRows(*r, children, "", "", &t);
  t.Print(std::cout);
  return absl::OkStatus();
}

absl::Status BranchGet(const CliContext& ctx, const std::string& name) {
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_ASSIGN_OR_RETURN(value b, client.Get("/v1/branches/" + name));
  if (ctx.json()) {
    PrintJson(b);
    return absl::OkStatus();
  }
  PGB_ASSIGN_OR_RETURN(value list, client.Get("/v1/endpoints"));
  const value& spec = b.at("spec");
  const value& st = b.at("status");
  std::cout << "name             " << name << "\n"
            << "parent           "
            << (JsonString(spec, "parent").empty() ? "-" : JsonString(spec, "parent")) << "\n"
            << "phase            " << JsonString(st, "phase") << "  " << ReadyMessage(st) << "\n"
            << "timeline         " << JsonString(st, "tenantID") << "/"
            << JsonString(st, "timelineID") << "\n"
            << "parent LSN       " << LsnText(st, "parentLSN") << "\n"
            << "head LSN         " << LsnText(st, "headLSN") << "\n"
            << "logical size     "
            << pagectl::HumanBytes(static_cast<uint64_t>(JsonInt(st, "logicalSize"))) << "\n"
            << "diverged         "
            << pagectl::HumanBytes(static_cast<uint64_t>(JsonInt(st, "divergedBytes"))) << "\n"
            << "protected        " << (JsonBool(spec, "protected") ? "yes" : "no") << "\n"
            << "expires          " << Until(JsonString(st, "expireTime")) << "\n"
            << "created          " << JsonString(b.at("metadata"), "creationTimestamp") << "\n";
  if (!JsonString(st, "lastResetTime").empty()) {
    std::cout << "last reset       " << JsonString(st, "lastResetTime") << "\n";
  }
  pagectl::Table t({"ENDPOINT", "TYPE", "PHASE"});
  std::optional<value> read_write;
  int endpoints = 0;
  for (const value& e : ItemsOf(list)) {
    if (JsonString(e.at("spec"), "branch") != name) continue;
    ++endpoints;
    t.AddRow({NameOf(e), JsonString(e.at("spec"), "type"), JsonString(e.at("status"), "phase")});
    if (JsonString(e.at("spec"), "type") == "ReadWrite") read_write = e;
  }
  std::cout << "\n";
  if (endpoints == 0) {
    std::cout << "no endpoints; create one with `pgbranch endpoint create " << name << " --branch "
              << name << "`\n";
    return absl::OkStatus();
  }
  t.Print(std::cout);
  if (read_write) {
    absl::StatusOr<ConnectionInfo> c = EndpointConnection(ctx, *read_write);
    // Kubernetes: the credentials Secret appears when the compute first starts.
    if (absl::IsFailedPrecondition(c.status())) {
      std::cout << "\nno connection string yet: " << c.status().message() << "\n";
      return absl::OkStatus();
    }
    if (!c.ok()) return c.status();
    std::cout << "\nconnect with:\n  psql '" << c->uri << "'\n";
  }
  return absl::OkStatus();
}

}  // namespace pgbranch::cli
