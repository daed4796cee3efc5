#include "cli/resource_util.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "cli/cli_context.h"
#include "common/status_macros.h"
#include "operator/model/duration.h"
#include "operator/model/json.h"
#include "operator/model/resources.h"

namespace pgbranch::cli {

using control::JsonBool;
using control::JsonString;
using web::json::value;

value Manifest(const std::string& kind, const std::string& name, value spec) {
  value m = value::object();
  m["apiVersion"] = value::string(control::kApiVersion);
  m["kind"] = value::string(kind);
  m["metadata"] = value::object();
  m["metadata"]["name"] = value::string(name);
  m["spec"] = std::move(spec);
  return m;
}

std::vector<value> ItemsOf(const value& list) {
  std::vector<value> out;
  if (list.has_field("items") && list.at("items").is_array()) {
    for (const auto& v : list.at("items").as_array()) out.push_back(v);
  }
  return out;
}

std::string ReadyMessage(const value& status) {
  if (!status.has_field("conditions") || !status.at("conditions").is_array()) return "";
  for (const auto& c : status.at("conditions").as_array()) {
    if (JsonString(c, "type") == "Ready") return JsonString(c, "message");
  }
  return "";
}

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

absl::StatusOr<value> WaitBranch(const ApiClient& client, const std::string& name,
                                 const std::function<bool(const value&)>& done,
                                 const std::string& what) {
  value last;
  absl::Status s = WaitFor(
      [&]() -> absl::StatusOr<bool> {
        // A local controller holds the answer until the branch is Ready or Failed (2 s at most).
        PGB_ASSIGN_OR_RETURN(last, client.GetWhen("/v1/branches/" + name, "ready"));
        const value& st = last.at("status");
        if (JsonString(st, "phase") == control::kPhaseFailed) {
          return absl::AbortedError(
              absl::StrCat("branch \"", name, "\" failed: ", ReadyMessage(st)));
        }
        return done(last);
      },
      absl::Seconds(120), what, client.PollInterval());
  if (!s.ok()) return s;
  return last;
}

absl::StatusOr<value> WaitEndpointRunning(const ApiClient& client, const std::string& name) {
  value last;
  const absl::Time start = absl::Now();
  bool told = false;
  absl::Status s = WaitFor(
      [&]() -> absl::StatusOr<bool> {
        // Held by a local controller until Running and routed, or Failed (2 s at most).
        PGB_ASSIGN_OR_RETURN(last, client.GetWhen("/v1/endpoints/" + name, "running"));
        const value& st = last.at("status");
        std::string phase = JsonString(st, "phase");
        // Progress for people: a new database runs initdb, which takes a few seconds.
        if (!told && absl::Now() - start > absl::Milliseconds(1500)) {
          told = true;
          // Only a root branch's first start runs initdb; a child starts from its parent's data.
          std::string branch = JsonString(last.at("spec"), "branch");
          auto b = client.Get("/v1/branches/" + branch);
          bool root = b.ok() && JsonString(b->at("spec"), "parent").empty();
          std::cerr << "waiting for endpoint \"" << name << "\" to start (" << phase
                    << (root ? "; a new database runs initdb first" : "") << ")..." << std::endl;
        }
        if (phase == control::kPhaseFailed) {
          std::string why = JsonString(st, "message");
          if (why.empty()) why = ReadyMessage(st);
          return absl::AbortedError(absl::StrCat("endpoint \"", name, "\" failed to start: ", why));
        }
        return phase == control::kPhaseRunning && JsonBool(st, "routed");
      },
      // A compute pod on a busy node (Kubernetes) may take minutes to start.
      absl::Seconds(300), absl::StrCat("endpoint \"", name, "\" to run"), client.PollInterval());
  if (!s.ok()) return s;
  return last;
}

absl::StatusOr<value> WaitEndpointRouted(const ApiClient& client, const std::string& name) {
  value last;
  absl::Status s = WaitFor(
      [&]() -> absl::StatusOr<bool> {
        PGB_ASSIGN_OR_RETURN(last, client.Get("/v1/endpoints/" + name));
        return JsonBool(last.at("status"), "routed");
      },
      absl::Seconds(30), absl::StrCat("the proxy to route endpoint \"", name, "\""),
      client.PollInterval());
  if (!s.ok()) return s;
  return last;
}

absl::Status WaitGone(const ApiClient& client, const std::string& path, const std::string& what) {
  return WaitFor(
      [&]() -> absl::StatusOr<bool> {
        auto v = client.Get(path);
        if (absl::IsNotFound(v.status())) return true;
        if (!v.ok()) return v.status();
        return false;
      },
      // Deleting a branch stops its computes first (Kubernetes: pods terminating).
      absl::Seconds(300), what, client.PollInterval());
}

}  // namespace pgbranch::cli
