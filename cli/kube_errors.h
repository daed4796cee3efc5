#pragma once

#include <string>

#include "absl/status/status.h"

// Errors of the Kubernetes API reworded for a person who typed a pgbranch command: what went
// wrong in their terms and what to do next. Codes stay what the commands expect of the local
// controller (NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT with the field attached,
// FAILED_PRECONDITION for refusals).
namespace pgbranch::cli {

// One request: `verb` as RBAC names it (get, list, create, update, patch, delete), `resource`
// as RBAC names it (branches.pgbranch.io, secrets), `kind` for messages (branch, endpoint,
// secret), `name` ("" for a list).
struct KubeCall {
  std::string verb;
  std::string resource;
  std::string kind;
  std::string name;
};

// `where`: the cluster as the user knows it ("context \"dev\" (https://10.0.0.1:6443)").
absl::Status KubeError(const absl::Status& error, const KubeCall& call, const std::string& ns,
                       const std::string& where);

// Whether a NOT_FOUND message means the resource type is unknown to the API server (CRDs not
// installed: "404 page not found" for an unknown group, "the server could not find the
// requested resource" for an unknown resource of a known group).
bool IsMissingResourceType(const absl::Status& error);

// "branch \"x\" not found in namespace ns".
absl::Status NotFoundIn(const std::string& kind, const std::string& name, const std::string& ns);

}  // namespace pgbranch::cli
