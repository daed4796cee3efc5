// `endpoint create | list | get | delete | suspend | start`.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "cli/api_errors.h"
#include "cli/connection_info.h"
#include "cli/resource_commands.h"
#include "cli/resource_util.h"
#include "common/status_macros.h"
#include "operator/model/duration.h"
#include "operator/model/json.h"
#include "operator/model/resources.h"
#include "pageserver/pagectl/output.h"

namespace pgbranch::cli {
namespace {

using control::JsonInt;
using control::JsonString;
using web::json::value;

void PrintEndpointTable(const std::vector<value>& items) {
  pagectl::Table t(
      {"NAME", "BRANCH", "TYPE", "PHASE", "PORT", "SUSPEND AFTER", "LAST ACTIVE", "AGE"});
  for (const value& e : items) {
    const value& spec = e.at("spec");
    const value& st = e.at("status");
    std::string suspend = JsonString(spec, "suspendTimeout");
    auto lt = control::ParseRfc3339(JsonString(st, "lastActive"));
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

// Prints how to connect to a running endpoint (-o json: the endpoint and its connection).
absl::Status PrintRunning(const CliContext& ctx, const value& e, const std::string& what) {
  PGB_ASSIGN_OR_RETURN(ConnectionInfo c, EndpointConnection(ctx, e));
  if (ctx.json()) {
    value v = value::object();
    v["endpoint"] = e;
    v["connection"] = ConnectionJson(c);
    PrintJson(v);
    return absl::OkStatus();
  }
  std::cout << what << "; connect with:\n  psql '" << c.uri << "'\n";
  return absl::OkStatus();
}

}  // namespace

absl::Status EndpointCreate(const CliContext& ctx, const EndpointCreateOptions& o) {
  value spec = value::object();
  spec["branch"] = value::string(o.branch);
  if (o.type == "read-only") spec["type"] = value::string("ReadOnly");
  if (o.lsn) spec["lsn"] = value::number(*o.lsn);
  if (!o.at.empty()) spec["timestamp"] = value::string(o.at);
  if (!o.suspend_timeout.empty()) spec["suspendTimeout"] = value::string(o.suspend_timeout);
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  absl::StatusOr<value> reply =
      client.Post("/v1/create", Manifest("Endpoint", o.name, spec).serialize());
  if (!reply.ok()) return WithFlagNames(reply.status());
  if (!o.wait) {
    if (ctx.json()) {
      PrintJson(*reply);
    } else {
      std::cout << "endpoint \"" << o.name << "\" created; not waiting for it to run "
                << "(`pgbranch endpoint get " << o.name << "` shows its phase)\n";
    }
    return absl::OkStatus();
  }
  absl::StatusOr<value> e = WaitEndpointRunning(client, o.name);
  if (absl::IsAborted(e.status())) {
    // It failed: take it away again, nothing half-made stays behind.
    absl::Status deleted = client.Delete("/v1/endpoints/" + o.name).status();
    if (deleted.ok()) {
      deleted = WaitGone(client, "/v1/endpoints/" + o.name,
                         absl::StrCat("endpoint \"", o.name, "\" to be deleted"));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        e.status().message(), "\n  ",
        deleted.ok() ? absl::StrCat("deleted endpoint \"", o.name, "\" again: nothing is left")
                     : absl::StrCat("deleting it failed too (", deleted.message(),
                                    "); remove it with `pgbranch endpoint delete ", o.name, "`")));
  }
  if (!e.ok()) return e.status();
  const absl::Duration took = absl::Now() - o.started;
  return PrintRunning(
      ctx, *e,
      absl::StrCat("endpoint \"", o.name, "\" is running on branch ", o.branch, " (created in ",
                   absl::FormatDuration(absl::Trunc(took, absl::Milliseconds(1))), ")"));
}

absl::Status EndpointList(const CliContext& ctx) {
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_ASSIGN_OR_RETURN(value v, client.Get("/v1/endpoints"));
  if (ctx.json()) {
    PrintJson(v);
  } else {
    PrintEndpointTable(ItemsOf(v));
  }
  return absl::OkStatus();
}

absl::Status EndpointGet(const CliContext& ctx, const std::string& name) {
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_ASSIGN_OR_RETURN(value e, client.Get("/v1/endpoints/" + name));
  if (ctx.json()) {
    PrintJson(e);
    return absl::OkStatus();
  }
  PrintEndpointTable({e});
  std::string msg = JsonString(e.at("status"), "message");
  if (!msg.empty()) std::cout << "\nlast failure: " << msg << "\n";
  return absl::OkStatus();
}

absl::Status EndpointDelete(const CliContext& ctx, const std::string& name) {
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_ASSIGN_OR_RETURN(value e, client.Delete("/v1/endpoints/" + name));
  PGB_RETURN_IF_ERROR(WaitGone(client, "/v1/endpoints/" + name,
                               absl::StrCat("endpoint \"", name, "\" to be deleted")));
  if (ctx.json()) {
    value v = value::object();
    v["deleted"] = value::object();
    v["deleted"]["kind"] = value::string("Endpoint");
    v["deleted"]["name"] = value::string(name);
    PrintJson(v);
    return absl::OkStatus();
  }
  std::cout << "endpoint \"" << name << "\" deleted\n";
  return absl::OkStatus();
}

absl::Status EndpointSuspend(const CliContext& ctx, const std::string& name) {
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_RETURN_IF_ERROR(client.Post("/v1/endpoints/" + name + "/suspend").status());
  value last;
  PGB_RETURN_IF_ERROR(WaitFor(
      [&]() -> absl::StatusOr<bool> {
        PGB_ASSIGN_OR_RETURN(last, client.Get("/v1/endpoints/" + name));
        return JsonString(last.at("status"), "phase") == control::kPhaseSuspended;
      },
      absl::Seconds(120), absl::StrCat("endpoint \"", name, "\" to suspend"),
      client.PollInterval()));
  if (ctx.json()) {
    PrintJson(last);
    return absl::OkStatus();
  }
  std::cout << "endpoint \"" << name
            << "\" suspended; the next connection (or `pgbranch endpoint start " << name
            << "`) wakes it\n";
  return absl::OkStatus();
}

absl::Status EndpointStart(const CliContext& ctx, const std::string& name) {
  const absl::Time started = absl::Now();
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_RETURN_IF_ERROR(client.Post("/v1/endpoints/" + name + "/start").status());
  PGB_ASSIGN_OR_RETURN(value e, WaitEndpointRunning(client, name));
  return PrintRunning(
      ctx, e,
      absl::StrCat("endpoint \"", name, "\" is running (started in ",
                   absl::FormatDuration(absl::Trunc(absl::Now() - started, absl::Milliseconds(1))),
                   ")"));
}

}  // namespace pgbranch::cli
