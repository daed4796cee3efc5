#include "cli/resource_commands.h"

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cli/connection_info.h"
#include "common/status_macros.h"
#include "operator/model/duration.h"
#include "operator/model/json.h"
#include "operator/model/resources.h"
#include "pageserver/pagectl/output.h"

namespace pgbranch::cli {
namespace {

using control::JsonBool;
using control::JsonInt;
using control::JsonString;
using web::json::value;

std::string Age(const value& obj) {
  auto t = control::ParseRfc3339(JsonString(obj.at("metadata"), "creationTimestamp"));
  if (!t.ok()) return "-";
  absl::Duration d = absl::Now() - *t;
  if (d < absl::Minutes(2)) return absl::StrCat(absl::ToInt64Seconds(d), "s");
  if (d < absl::Hours(2)) return absl::StrCat(absl::ToInt64Minutes(d), "m");
  if (d < absl::Hours(48)) return absl::StrCat(absl::ToInt64Hours(d), "h");
  return absl::StrCat(absl::ToInt64Hours(d) / 24, "d");
}

std::string Until(const std::string& rfc3339) {
  auto t = control::ParseRfc3339(rfc3339);
  if (!t.ok()) return "never";
  absl::Duration d = *t - absl::Now();
  if (d <= absl::ZeroDuration()) return "expired";
  return absl::StrCat("in ", control::DurationToString(absl::Seconds(absl::ToInt64Seconds(d))));
}

std::string ReadyMessage(const value& status) {
  if (!status.has_field("conditions") || !status.at("conditions").is_array()) return "";
  for (const auto& c : status.at("conditions").as_array()) {
    if (JsonString(c, "type") == "Ready") return JsonString(c, "message");
  }
  return "";
}

// Waits until the branch's status satisfies `done`; a Failed phase ends the wait with its reason.
absl::StatusOr<value> WaitBranch(const ApiClient& client, const std::string& name,
                                 const std::function<bool(const value&)>& done,
                                 const std::string& what) {
  value last;
  absl::Status s = WaitFor(
      [&]() -> absl::StatusOr<bool> {
        PGB_ASSIGN_OR_RETURN(last, client.Get("/v1/branches/" + name));
        const value& st = last.at("status");
        if (JsonString(st, "phase") == control::kPhaseFailed) {
          return absl::FailedPreconditionError(
              absl::StrCat("branch \"", name, "\" failed: ", ReadyMessage(st)));
        }
        return done(last);
      },
      absl::Seconds(120), what);
  if (!s.ok()) return s;
  return last;
}

absl::StatusOr<value> WaitEndpointRunning(const ApiClient& client, const std::string& name) {
  value last;
  const absl::Time start = absl::Now();
  bool told = false;
  absl::Status s = WaitFor(
      [&]() -> absl::StatusOr<bool> {
        PGB_ASSIGN_OR_RETURN(last, client.Get("/v1/endpoints/" + name));
        const value& st = last.at("status");
        std::string phase = JsonString(st, "phase");
        // Progress for people: a new database runs initdb, which takes a few seconds.
        if (!told && absl::Now() - start > absl::Milliseconds(1500)) {
          told = true;
          std::cerr << "waiting for endpoint \"" << name << "\" to start (" << phase
                    << "; a new database runs initdb first)..." << std::endl;
        }
        if (phase == control::kPhaseFailed) {
          return absl::FailedPreconditionError(
              absl::StrCat("endpoint \"", name, "\" failed to start: ", JsonString(st, "message"),
                           "\n  (it is retried automatically and on the next connection)"));
        }
        return phase == control::kPhaseRunning && JsonBool(st, "routed");
      },
      absl::Seconds(120), absl::StrCat("endpoint \"", name, "\" to run"));
  if (!s.ok()) return s;
  return last;
}

absl::Status PrintConnstr(const CliContext& ctx, const value& endpoint, bool json) {
  PGB_ASSIGN_OR_RETURN(ConnectionInfo c, EndpointConnection(ctx, endpoint));
  if (json) {
    PrintJson(ConnectionJson(c));
  } else {
    std::cout << c.uri << "\n";
  }
  return absl::OkStatus();
}

value Manifest(const std::string& kind, const std::string& name, value spec) {
  value m = value::object();
  m["apiVersion"] = value::string(control::kApiVersion);
  m["kind"] = value::string(kind);
  m["metadata"] = value::object();
  m["metadata"]["name"] = value::string(name);
  m["spec"] = std::move(spec);
  return m;
}

absl::StatusOr<value> CreateEndpoint(const CliContext& ctx, const ApiClient& client,
                                     const std::string& name, const std::string& branch,
                                     pagectl::Args& args) {
  value spec = value::object();
  spec["branch"] = value::string(branch);
  std::string type = args.Flag("type").value_or("read-write");
  if (type == "read-only" || type == "ReadOnly") {
    spec["type"] = value::string("ReadOnly");
  } else if (type != "read-write" && type != "ReadWrite") {
    return pagectl::UsageError("--type takes read-write or read-only");
  }
  if (auto lsn = args.Flag("lsn")) {
    PGB_ASSIGN_OR_RETURN(uint64_t l, args.Uint("lsn", 0));
    spec["lsn"] = value::number(l);
  }
  if (auto at = args.Flag("at")) spec["timestamp"] = value::string(*at);
  if (auto t = args.Flag("suspend-timeout")) spec["suspendTimeout"] = value::string(*t);
  PGB_RETURN_IF_ERROR(
      client.Post("/v1/apply", Manifest("Endpoint", name, spec).serialize()).status());
  return WaitEndpointRunning(client, name);
}

void PrintBranchTable(const std::vector<value>& items) {
  pagectl::Table t(
      {"NAME", "PARENT", "PHASE", "PROTECTED", "EXPIRES", "LOGICAL SIZE", "DIVERGED", "AGE"});
  for (const value& b : items) {
    const value& spec = b.at("spec");
    const value& st = b.at("status");
    t.AddRow({JsonString(b.at("metadata"), "name"),
              JsonString(spec, "parent").empty() ? "-" : JsonString(spec, "parent"),
              JsonString(st, "phase"), JsonBool(spec, "protected") ? "yes" : "no",
              Until(JsonString(st, "expireTime")),
              pagectl::HumanBytes(static_cast<uint64_t>(JsonInt(st, "logicalSize"))),
              pagectl::HumanBytes(static_cast<uint64_t>(JsonInt(st, "divergedBytes"))), Age(b)});
  }
  t.Print(std::cout);
}

void PrintEndpointTable(const std::vector<value>& items) {
  pagectl::Table t(
      {"NAME", "BRANCH", "TYPE", "PHASE", "PORT", "SUSPEND AFTER", "LAST ACTIVE", "AGE"});
  for (const value& e : items) {
    const value& spec = e.at("spec");
    const value& st = e.at("status");
    std::string suspend = JsonString(spec, "suspendTimeout");
    std::string last = JsonString(st, "lastActive");
    auto lt = control::ParseRfc3339(last);
    t.AddRow({JsonString(e.at("metadata"), "name"), JsonString(spec, "branch"),
              JsonString(spec, "type"), JsonString(st, "phase"),
              std::to_string(JsonInt(st, "port")), suspend == "0s" ? "never" : suspend,
              lt.ok() ? absl::StrCat(control::DurationToString(
                                         absl::Seconds(absl::ToInt64Seconds(absl::Now() - *lt))),
                                     " ago")
                      : "-",
              Age(e)});
  }
  t.Print(std::cout);
}

std::vector<value> ItemsOf(const value& list) {
  std::vector<value> out;
  if (list.has_field("items")) {
    for (const auto& v : list.at("items").as_array()) out.push_back(v);
  }
  return out;
}

absl::Status BranchCreate(const CliContext& ctx, pagectl::Args& args) {
  std::string name = args.Positional(2);
  if (name.empty()) return pagectl::UsageError("usage: pgbranch branch create NAME [--parent P]");
  value spec = value::object();
  if (auto p = args.Flag("parent")) spec["parent"] = value::string(*p);
  if (args.Has("lsn")) {
    PGB_ASSIGN_OR_RETURN(uint64_t l, args.Uint("lsn", 0));
    spec["lsn"] = value::number(l);
  }
  if (auto at = args.Flag("at")) spec["timestamp"] = value::string(*at);
  int expirations = 0;
  if (auto ttl = args.Flag("ttl")) {
    spec["ttl"] = value::string(*ttl);
    ++expirations;
  }
  if (auto t = args.Flag("expire-time")) {
    spec["expireTime"] = value::string(*t);
    ++expirations;
  }
  if (args.Bool("no-expiry")) ++expirations;
  if (expirations > 1) {
    return pagectl::UsageError("give at most one of --ttl, --expire-time and --no-expiry");
  }
  // Without an expiration flag a branch does not expire (the manifest must say which).
  if (!spec.has_field("ttl") && !spec.has_field("expireTime"))
    spec["noExpiry"] = value::boolean(true);
  if (args.Bool("protected")) spec["protected"] = value::boolean(true);
  bool endpoint = !args.Bool("no-endpoint");
  std::optional<std::string> suspend = args.Flag("suspend-timeout");
  PGB_RETURN_IF_ERROR(args.CheckAllUsed(3));
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  absl::Time start = absl::Now();
  // Branch and endpoint in one apply: the endpoint starts as soon as the timeline exists.
  std::string manifests = Manifest("Branch", name, spec).serialize();
  if (endpoint) {
    value espec = value::object();
    espec["branch"] = value::string(name);
    if (suspend) espec["suspendTimeout"] = value::string(*suspend);
    manifests += "\n---\n" + Manifest("Endpoint", name, espec).serialize();
  }
  PGB_RETURN_IF_ERROR(client.Post("/v1/apply", manifests).status());
  PGB_ASSIGN_OR_RETURN(value b, WaitBranch(
                                    client, name,
                                    [](const value& v) {
                                      return JsonString(v.at("status"), "phase") ==
                                             control::kPhaseReady;
                                    },
                                    absl::StrCat("branch \"", name, "\" to be ready")));
  absl::Duration took = absl::Now() - start;
  const value& st = b.at("status");
  value ep;
  if (endpoint) {
    PGB_ASSIGN_OR_RETURN(ep, WaitEndpointRunning(client, name));
  }
  if (ctx.json()) {
    value v = value::object();
    v["branch"] = b;
    if (endpoint) v["endpoint"] = ep;
    PrintJson(v);
    return absl::OkStatus();
  }
  std::string parent = JsonString(b.at("spec"), "parent");
  std::cout << "branch \"" << name << "\" created"
            << (parent.empty()
                    ? std::string(" (a new database)")
                    : absl::StrCat(" from ", parent, " at LSN ", JsonInt(st, "parentLSN")))
            << " in " << absl::FormatDuration(absl::Trunc(took, absl::Milliseconds(1))) << "\n";
  if (endpoint) {
    PGB_ASSIGN_OR_RETURN(ConnectionInfo c, EndpointConnection(ctx, ep));
    std::cout << "endpoint \"" << name << "\" is running; connect with:\n  psql '" << c.uri
              << "'\n";
  }
  return absl::OkStatus();
}

absl::Status BranchGetOrList(const CliContext& ctx, pagectl::Args& args, bool list) {
  std::string name = args.Positional(2);
  PGB_RETURN_IF_ERROR(args.CheckAllUsed(list ? 2 : 3));
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  if (list) {
    PGB_ASSIGN_OR_RETURN(value v, client.Get("/v1/branches"));
    if (ctx.json()) {
      PrintJson(v);
    } else {
      PrintBranchTable(ItemsOf(v));
    }
    return absl::OkStatus();
  }
  if (name.empty()) return pagectl::UsageError("usage: pgbranch branch get NAME");
  PGB_ASSIGN_OR_RETURN(value b, client.Get("/v1/branches/" + name));
  if (ctx.json()) {
    PrintJson(b);
    return absl::OkStatus();
  }
  const value& spec = b.at("spec");
  const value& st = b.at("status");
  std::cout << "name             " << name << "\n"
            << "parent           "
            << (JsonString(spec, "parent").empty() ? "-" : JsonString(spec, "parent")) << "\n"
            << "phase            " << JsonString(st, "phase") << "  " << ReadyMessage(st) << "\n"
            << "timeline         " << JsonString(st, "tenantID") << "/"
            << JsonString(st, "timelineID") << "\n"
            << "parent LSN       " << JsonInt(st, "parentLSN") << "\n"
            << "head LSN         " << JsonInt(st, "headLSN") << "\n"
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
  return absl::OkStatus();
}

absl::Status BranchDelete(const CliContext& ctx, pagectl::Args& args) {
  std::string name = args.Positional(2);
  PGB_RETURN_IF_ERROR(args.CheckAllUsed(3));
  if (name.empty()) return pagectl::UsageError("usage: pgbranch branch delete NAME");
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_RETURN_IF_ERROR(client.Delete("/v1/branches/" + name).status());
  PGB_RETURN_IF_ERROR(WaitFor(
      [&]() -> absl::StatusOr<bool> {
        auto b = client.Get("/v1/branches/" + name);
        if (absl::IsNotFound(b.status())) return true;
        if (!b.ok()) return b.status();
        return false;
      },
      absl::Seconds(120), absl::StrCat("branch \"", name, "\" to be deleted")));
  std::cout << "branch \"" << name << "\" deleted, with its endpoints\n";
  return absl::OkStatus();
}

absl::Status BranchReset(const CliContext& ctx, pagectl::Args& args) {
  std::string name = args.Positional(2);
  PGB_RETURN_IF_ERROR(args.CheckAllUsed(3));
  if (name.empty()) return pagectl::UsageError("usage: pgbranch branch reset NAME");
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_ASSIGN_OR_RETURN(value req, client.Post("/v1/branches/" + name + "/reset"));
  int64_t want = JsonInt(req.at("spec"), "resetGeneration");
  PGB_ASSIGN_OR_RETURN(value b, WaitBranch(
                                    client, name,
                                    [&](const value& v) {
                                      const value& st = v.at("status");
                                      return JsonInt(st, "observedResetGeneration") >= want &&
                                             JsonString(st, "phase") == control::kPhaseReady;
                                    },
                                    absl::StrCat("branch \"", name, "\" to be reset")));
  if (ctx.json()) {
    PrintJson(b);
    return absl::OkStatus();
  }
  std::cout << "branch \"" << name << "\" reset to the head of "
            << JsonString(b.at("spec"), "parent") << " (LSN "
            << JsonInt(b.at("status"), "parentLSN")
            << "); its endpoints keep their connection strings and wake on the next connection\n";
  return absl::OkStatus();
}

}  // namespace

absl::Status RunApply(const CliContext& ctx, pagectl::Args& args) {
  PGB_ASSIGN_OR_RETURN(std::string file, args.RequiredFlag("f"));
  PGB_RETURN_IF_ERROR(args.CheckAllUsed(1));
  std::stringstream buf;
  if (file == "-") {
    buf << std::cin.rdbuf();
  } else {
    std::ifstream in(file);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", file));
    buf << in.rdbuf();
  }
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_ASSIGN_OR_RETURN(value v, client.Post("/v1/apply", buf.str()));
  if (ctx.json()) {
    PrintJson(v);
    return absl::OkStatus();
  }
  for (const value& item : ItemsOf(v)) {
    std::string kind = JsonString(item, "kind");
    for (auto& c : kind) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::cout << kind << "/" << JsonString(item.at("metadata"), "name")
              << (JsonInt(item.at("metadata"), "generation") == 1 ? " created" : " configured")
              << "\n";
  }
  return absl::OkStatus();
}

absl::Status RunBranchCommand(const CliContext& ctx, pagectl::Args& args) {
  std::string verb = args.Positional(1);
  if (verb == "create") return BranchCreate(ctx, args);
  if (verb == "list") return BranchGetOrList(ctx, args, true);
  if (verb == "get") return BranchGetOrList(ctx, args, false);
  if (verb == "delete") return BranchDelete(ctx, args);
  if (verb == "reset") return BranchReset(ctx, args);
  if (verb == "schema-diff") return RunSchemaDiff(ctx, args);
  return pagectl::UsageError("usage: pgbranch branch create|list|get|delete|reset|schema-diff ...");
}

absl::Status RunEndpointCommand(const CliContext& ctx, pagectl::Args& args) {
  std::string verb = args.Positional(1);
  std::string name = args.Positional(2);
  if (verb == "create") {
    PGB_ASSIGN_OR_RETURN(std::string branch, args.RequiredFlag("branch"));
    if (name.empty()) return pagectl::UsageError("usage: pgbranch endpoint create NAME --branch B");
    PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
    absl::StatusOr<value> e = CreateEndpoint(ctx, client, name, branch, args);
    PGB_RETURN_IF_ERROR(args.CheckAllUsed(3));
    if (!e.ok()) return e.status();
    if (ctx.json()) {
      PrintJson(*e);
      return absl::OkStatus();
    }
    PGB_ASSIGN_OR_RETURN(ConnectionInfo c, EndpointConnection(ctx, *e));
    std::cout << "endpoint \"" << name << "\" is running on branch " << branch
              << "; connect with:\n  psql '" << c.uri << "'\n";
    return absl::OkStatus();
  }
  PGB_RETURN_IF_ERROR(args.CheckAllUsed(verb == "list" ? 2 : 3));
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  if (verb == "list") {
    PGB_ASSIGN_OR_RETURN(value v, client.Get("/v1/endpoints"));
    if (ctx.json()) {
      PrintJson(v);
    } else {
      PrintEndpointTable(ItemsOf(v));
    }
    return absl::OkStatus();
  }
  if (name.empty()) return pagectl::UsageError("usage: pgbranch endpoint get|delete NAME");
  if (verb == "get") {
    PGB_ASSIGN_OR_RETURN(value e, client.Get("/v1/endpoints/" + name));
    if (ctx.json()) {
      PrintJson(e);
    } else {
      PrintEndpointTable({e});
      std::string msg = JsonString(e.at("status"), "message");
      if (!msg.empty()) std::cout << "\nlast failure: " << msg << "\n";
    }
    return absl::OkStatus();
  }
  if (verb == "delete") {
    PGB_RETURN_IF_ERROR(client.Delete("/v1/endpoints/" + name).status());
    PGB_RETURN_IF_ERROR(WaitFor(
        [&]() -> absl::StatusOr<bool> {
          auto e = client.Get("/v1/endpoints/" + name);
          if (absl::IsNotFound(e.status())) return true;
          if (!e.ok()) return e.status();
          return false;
        },
        absl::Seconds(120), absl::StrCat("endpoint \"", name, "\" to be deleted")));
    std::cout << "endpoint \"" << name << "\" deleted\n";
    return absl::OkStatus();
  }
  return pagectl::UsageError("usage: pgbranch endpoint create|list|get|delete ...");
}

absl::Status RunConnstr(const CliContext& ctx, pagectl::Args& args) {
  std::string name = args.Positional(1);
  PGB_RETURN_IF_ERROR(args.CheckAllUsed(2));
  if (name.empty()) return pagectl::UsageError("usage: pgbranch connstr ENDPOINT");
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_ASSIGN_OR_RETURN(value e, client.Get("/v1/endpoints/" + name));
  return PrintConnstr(ctx, e, ctx.json());
}

absl::Status RunDebugCommand(const CliContext& ctx, pagectl::Args& args) {
  if (args.Positional(1) != "advance-clock" || args.Positional(2).empty()) {
    return pagectl::UsageError("usage: pgbranch debug advance-clock DURATION");
  }
  std::string by = args.Positional(2);
  PGB_RETURN_IF_ERROR(args.CheckAllUsed(3));
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_RETURN_IF_ERROR(client.Post("/v1/debug/advance-clock?by=" + by).status());
  std::cout << "test clock advanced by " << by << "\n";
  return absl::OkStatus();
}

}  // namespace pgbranch::cli
