#pragma once

#include "absl/status/statusor.h"
#include "common/cpprest.h"

// JSON merge patch (RFC 7386) and JSON patch (RFC 6902: add, remove, replace, test, plus move
// and copy) over cpprest JSON values. Pure functions: thread-safe.
namespace pgbranch::kube {

web::json::value ApplyMergePatch(const web::json::value& target, const web::json::value& patch);

// INVALID_ARGUMENT naming the failing operation (a failed `test` says "test failed", as the
// API server's 422 does).
absl::StatusOr<web::json::value> ApplyJsonPatch(const web::json::value& target,
                                                const web::json::value& ops);

}  // namespace pgbranch::kube
