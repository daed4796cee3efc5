#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/api_client.h"
#include "common/cpprest.h"

// What the resource commands share: manifests, list items, waiting for phases, time columns.
namespace pgbranch::cli {

// A manifest of `kind` named `name` with `spec` (apiVersion pgbranch.io/v1alpha1).
web::json::value Manifest(const std::string& kind, const std::string& name, web::json::value spec);
// The "items" of a list reply.
std::vector<web::json::value> ItemsOf(const web::json::value& list);
// The message of the object's Ready condition ("" if none).
std::string ReadyMessage(const web::json::value& status);
// "5m" since the object's creation; "in 2h" until an RFC 3339 time ("never", "expired").
std::string Age(const web::json::value& object);
std::string Until(const std::string& rfc3339);

// Waits until the branch satisfies `done`. A Failed phase ends the wait with ABORTED and the
// branch's reason.
absl::StatusOr<web::json::value> WaitBranch(
    const ApiClient& client, const std::string& name,
    const std::function<bool(const web::json::value&)>& done, const std::string& what);
// Waits until the endpoint runs and the proxy routes it. Failed ends the wait with ABORTED.
absl::StatusOr<web::json::value> WaitEndpointRunning(const ApiClient& client,
                                                     const std::string& name);
// Waits (at most 30 s) until the proxy listens on the endpoint's port, whatever its phase:
// from then on its connection string works (a client is held until the compute runs).
absl::StatusOr<web::json::value> WaitEndpointRouted(const ApiClient& client,
                                                    const std::string& name);
// Waits until GET `path` is 404.
absl::Status WaitGone(const ApiClient& client, const std::string& path, const std::string& what);

}  // namespace pgbranch::cli
