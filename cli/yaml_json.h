#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/cpprest.h"

// YAML documents as JSON values, for sending manifests to the Kubernetes API as the user wrote
// them (no defaults added, no fields dropped). Plain scalars are typed as YAML 1.2's core
// schema does: true/false -> boolean, null/~ -> null, integers and decimals -> numbers;
// quoted scalars stay strings. Empty documents are skipped.
namespace pgbranch::cli {

absl::StatusOr<std::vector<web::json::value>> YamlDocumentsToJson(const std::string& text);

}  // namespace pgbranch::cli
