#pragma once

#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "operator/model/resources.h"

namespace pgbranch::control {

using Resource = std::variant<Branch, Endpoint>;

// Parses one or more YAML documents ("---"-separated) of kind Branch or Endpoint and validates
// them as the CRD schema and CEL rules do. Errors name the document, the field path and what to
// write instead, e.g. `Branch "dev": spec.ttl: give exactly one of ttl, expireTime and noExpiry`.
absl::StatusOr<std::vector<Resource>> ParseManifests(const std::string& yaml);

// Kubernetes object names: a DNS-1123 label (lower-case alphanumerics and '-', at most 63).
absl::Status ValidateName(const std::string& what, const std::string& name);

}  // namespace pgbranch::control
