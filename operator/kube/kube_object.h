#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/cpprest.h"

// Small accessors for Kubernetes objects held as JSON, and the API's time formats.
// Pure functions: thread-safe.
namespace pgbranch::kube {

// metadata.<field> as a string, "" when absent or not a string.
std::string MetaString(const web::json::value& obj, const std::string& field);
inline std::string NameOf(const web::json::value& o) { return MetaString(o, "name"); }
inline std::string NamespaceOf(const web::json::value& o) { return MetaString(o, "namespace"); }
inline std::string ResourceVersionOf(const web::json::value& o) {
  return MetaString(o, "resourceVersion");
}
inline std::string UidOf(const web::json::value& o) { return MetaString(o, "uid"); }
// metadata.labels (string values only).
std::map<std::string, std::string> LabelsOf(const web::json::value& obj);
// The cache key client-go uses: "namespace/name", or "name" for cluster-scoped objects.
std::string ObjectKey(const web::json::value& obj);
std::string ObjectKey(const std::string& ns, const std::string& name);

// A string field of an object (`obj[field]`), "" when absent.
std::string StringField(const web::json::value& obj, const std::string& field);
// obj[field] as an integer, `fallback` when absent or not a number.
int64_t IntField(const web::json::value& obj, const std::string& field, int64_t fallback = 0);

// metav1.Time: "2006-01-02T15:04:05Z" (second precision, UTC).
std::string FormatKubeTime(absl::Time t);
// metav1.MicroTime: "2006-01-02T15:04:05.000000Z" (what Lease renewTime/acquireTime use).
std::string FormatKubeMicroTime(absl::Time t);
// Parses either format (any RFC 3339 time). INVALID_ARGUMENT when malformed.
absl::StatusOr<absl::Time> ParseKubeTime(const std::string& text);

}  // namespace pgbranch::kube
