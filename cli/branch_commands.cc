// `branch create | update | delete | reset`.
#include <iostream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "cli/api_errors.h"
#include "cli/connection_info.h"
#include "cli/lsn.h"
#include "cli/resource_commands.h"
#include "cli/resource_util.h"
#include "common/status_macros.h"
#include "operator/model/json.h"
#include "operator/model/resources.h"

namespace pgbranch::cli {
namespace {

using control::JsonInt;
using control::JsonString;
using web::json::value;

// A create that did not finish: when the branch Failed, it is deleted again (with its endpoint)
// so that nothing half-made stays behind; otherwise the user learns what is left and how to
// remove it.
absl::Status UndoCreate(const ApiClient& client, const std::string& name, const absl::Status& why) {
  if (!absl::IsAborted(why)) {
    return absl::Status(
        why.code(), absl::StrCat(why.message(), "\n  branch \"", name,
                                 "\" exists but is not ready; watch it with `pgbranch branch "
                                 "get ",
                                 name, "` or remove it with `pgbranch branch delete ", name, "`"));
  }
  absl::Status deleted = client.Delete("/v1/branches/" + name).status();
  if (deleted.ok()) {
    deleted = WaitGone(client, "/v1/branches/" + name,
                       absl::StrCat("branch \"", name, "\" to be deleted"));
  }
  if (!deleted.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(why.message(), "\n  deleting it again failed too: ", deleted.message(),
                     "; remove it with `pgbranch branch delete ", name, "`"));
  }
  return absl::FailedPreconditionError(absl::StrCat(why.message(), "\n  deleted branch \"", name,
                                                    "\" again (with its endpoints): nothing of "
                                                    "this command is left behind"));
}

// The reply's action for one object ("created", "configured", "unchanged").
std::string ActionOf(const value& reply, const std::string& kind, const std::string& name) {
  if (reply.has_field("results") && reply.at("results").is_array()) {
    for (const value& r : reply.at("results").as_array()) {
      if (JsonString(r, "kind") == kind && JsonString(r, "name") == name) {
        return JsonString(r, "action");
      }
    }
  }
  return "configured";
}

}  // namespace

absl::Status BranchCreate(const CliContext& ctx, const BranchCreateOptions& o) {
  value spec = value::object();
  if (!o.parent.empty()) spec["parent"] = value::string(o.parent);
  if (o.lsn) spec["lsn"] = value::number(*o.lsn);
  if (!o.at.empty()) spec["timestamp"] = value::string(o.at);
  if (!o.ttl.empty()) {
    spec["ttl"] = value::string(o.ttl);
  } else if (!o.expire_time.empty()) {
    spec["expireTime"] = value::string(o.expire_time);
  } else {
    // Without an expiration flag a branch does not expire (the manifest must say which).
    spec["noExpiry"] = value::boolean(true);
  }
  if (o.protected_) spec["protected"] = value::boolean(true);
  const bool endpoint = !o.no_endpoint;
  // Branch and endpoint in one request: the endpoint starts as soon as the timeline exists.
  std::string manifests = Manifest("Branch", o.name, spec).serialize();
  if (endpoint) {
    value espec = value::object();
    espec["branch"] = value::string(o.name);
    if (!o.suspend_timeout.empty()) espec["suspendTimeout"] = value::string(o.suspend_timeout);
    manifests += "\n---\n" + Manifest("Endpoint", o.name, espec).serialize();
  }
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  // POST /v1/create: all or nothing, and an existing name is refused (never rewritten).
  absl::StatusOr<value> reply = client.Post("/v1/create", manifests);
  if (!reply.ok()) return WithFlagNames(reply.status());
  if (!o.wait) {
    // Local mode: the connection string works at once once the proxy listens on the
    // endpoint's port (a few ms after the create); it holds a first client until the compute
    // accepts it. (Kubernetes: the credentials Secret appears with the compute.)
    std::optional<ConnectionInfo> c;
    if (endpoint && ctx.kube() == nullptr) {
      PGB_ASSIGN_OR_RETURN(value ep, WaitEndpointRouted(client, o.name));
      PGB_ASSIGN_OR_RETURN(c, EndpointConnection(ctx, ep));
    }
    if (ctx.json()) {
      PrintJson(*reply);
    } else {
      std::cout << "branch \"" << o.name << "\" created" << (endpoint ? " with its endpoint" : "")
                << "; not waiting for it to be ready (`pgbranch branch get " << o.name
                << "` shows its phase)\n";
      if (c) {
        std::cout << "connect now (the proxy holds the connection until the endpoint runs):\n"
                  << "  psql '" << c->uri << "'\n";
      }
    }
    return absl::OkStatus();
  }
  absl::StatusOr<value> b = WaitBranch(
      client, o.name,
      [](const value& v) { return JsonString(v.at("status"), "phase") == control::kPhaseReady; },
      absl::StrCat("branch \"", o.name, "\" to be ready"));
  if (!b.ok()) return UndoCreate(client, o.name, b.status());
  value ep;
  if (endpoint) {
    absl::StatusOr<value> e = WaitEndpointRunning(client, o.name);
    if (!e.ok()) return UndoCreate(client, o.name, e.status());
    ep = *e;
  }
  // What the user waited for: from the start of the command until the endpoint answers.
  const absl::Duration took = absl::Now() - o.started;
  if (ctx.json()) {
    value v = value::object();
    v["branch"] = *b;
    if (endpoint) v["endpoint"] = ep;
    PrintJson(v);
    return absl::OkStatus();
  }
  const value& st = b->at("status");
  std::string parent = JsonString(b->at("spec"), "parent");
  uint64_t parent_lsn = static_cast<uint64_t>(JsonInt(st, "parentLSN"));
  std::cout << "branch \"" << o.name << "\" created"
            << (parent.empty() ? std::string(" (a new database)")
                               : absl::StrCat(" from ", parent, " at LSN ", FormatLsn(parent_lsn)))
            << " in " << absl::FormatDuration(absl::Trunc(took, absl::Milliseconds(1))) << "\n";
  if (endpoint) {
    PGB_ASSIGN_OR_RETURN(ConnectionInfo c, EndpointConnection(ctx, ep));
    std::cout << "endpoint \"" << o.name << "\" is running; connect with:\n  psql '" << c.uri
              << "'\n";
  }
  return absl::OkStatus();
}

absl::Status BranchUpdate(const CliContext& ctx, const BranchUpdateOptions& o) {
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_ASSIGN_OR_RETURN(value b, client.Get("/v1/branches/" + o.name));
  value spec = b.at("spec");
  if (o.protected_) spec["protected"] = value::boolean(*o.protected_);
  if (!o.ttl.empty() || !o.expire_time.empty() || o.no_expiry) {
    for (const char* k : {"ttl", "expireTime", "noExpiry"}) {
      if (spec.has_field(k)) spec.erase(k);
    }
    if (!o.ttl.empty()) spec["ttl"] = value::string(o.ttl);
    if (!o.expire_time.empty()) spec["expireTime"] = value::string(o.expire_time);
    if (o.no_expiry) spec["noExpiry"] = value::boolean(true);
  }
  value m = Manifest("Branch", o.name, spec);
  for (const char* k : {"labels", "annotations"}) {
    if (b.at("metadata").has_field(k)) m["metadata"][k] = b.at("metadata").at(k);
  }
  absl::StatusOr<value> reply = client.Post("/v1/apply", m.serialize());
  if (!reply.ok()) return WithFlagNames(reply.status());
  if (ctx.json()) {
    PrintJson(*reply);
    return absl::OkStatus();
  }
  std::cout << "branch \"" << o.name << "\" " << ActionOf(*reply, "Branch", o.name) << "\n";
  return absl::OkStatus();
}

absl::Status BranchDelete(const CliContext& ctx, const std::string& name) {
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_RETURN_IF_ERROR(client.Get("/v1/branches/" + name).status());
  // Its endpoints go with it: name them in the output.
  value endpoints = value::array();
  PGB_ASSIGN_OR_RETURN(value list, client.Get("/v1/endpoints"));
  for (const value& e : ItemsOf(list)) {
    if (JsonString(e.at("spec"), "branch") == name) {
      endpoints[endpoints.size()] = value::string(JsonString(e.at("metadata"), "name"));
    }
  }
  PGB_RETURN_IF_ERROR(client.Delete("/v1/branches/" + name).status());
  PGB_RETURN_IF_ERROR(WaitGone(client, "/v1/branches/" + name,
                               absl::StrCat("branch \"", name, "\" to be deleted")));
  if (ctx.json()) {
    value v = value::object();
    v["deleted"] = value::object();
    v["deleted"]["kind"] = value::string("Branch");
    v["deleted"]["name"] = value::string(name);
    v["deleted"]["endpoints"] = endpoints;
    PrintJson(v);
    return absl::OkStatus();
  }
  std::cout << "branch \"" << name << "\" deleted, with its endpoints\n";
  return absl::OkStatus();
}

absl::Status BranchReset(const CliContext& ctx, const std::string& name) {
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
            << FormatLsn(static_cast<uint64_t>(JsonInt(b.at("status"), "parentLSN")))
            << "); its endpoints keep their connection strings and wake on the next connection\n";
  return absl::OkStatus();
}

}  // namespace pgbranch::cli
