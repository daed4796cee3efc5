#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/cpprest.h"
#include "operator/model/resources.h"

// Branch and Endpoint objects in their Kubernetes JSON shape ({apiVersion, kind, metadata, spec,
// status}). ToJson/FromJson round-trip every field, so the local object store persists with them
// and the CLI prints them; the spec is parsed by the same validation as a manifest.
namespace pgbranch::control {

web::json::value ToJson(const Branch& b);
web::json::value ToJson(const Endpoint& e);
absl::StatusOr<Branch> BranchFromJson(const web::json::value& v);
absl::StatusOr<Endpoint> EndpointFromJson(const web::json::value& v);

// RFC 3339 with the precision that is there ("2026-11-21T10:42:00Z", "...00.25Z").
std::string Rfc3339(absl::Time t);
// For messages: UTC, whole seconds ("2026-11-29T21:03:11Z").
std::string Rfc3339Seconds(absl::Time t);
absl::StatusOr<absl::Time> ParseRfc3339(const std::string& text);

// Helpers for reading JSON written by someone else: absent or mistyped fields give the default.
std::string JsonString(const web::json::value& v, const std::string& key);
int64_t JsonInt(const web::json::value& v, const std::string& key);
bool JsonBool(const web::json::value& v, const std::string& key);

}  // namespace pgbranch::control
