#include "operator/kube/kube_object.h"

#include "absl/strings/str_cat.h"

namespace pgbranch::kube {

using web::json::value;

std::string StringField(const value& obj, const std::string& field) {
  if (!obj.is_object() || !obj.has_field(field)) return "";
  const value& v = obj.at(field);
  return v.is_string() ? v.as_string() : "";
}

int64_t IntField(const value& obj, const std::string& field, int64_t fallback) {
  if (!obj.is_object() || !obj.has_field(field)) return fallback;
  const value& v = obj.at(field);
  return v.is_number() ? v.as_number().to_int64() : fallback;
}

std::string MetaString(const value& obj, const std::string& field) {
  if (!obj.is_object() || !obj.has_field("metadata")) return "";
  return StringField(obj.at("metadata"), field);
}

std::map<std::string, std::string> LabelsOf(const value& obj) {
  std::map<std::string, std::string> out;
  if (!obj.is_object() || !obj.has_field("metadata")) return out;
  const value& meta = obj.at("metadata");
  if (!meta.is_object() || !meta.has_field("labels") || !meta.at("labels").is_object()) {
    return out;
  }
  for (const auto& [k, v] : meta.at("labels").as_object()) {
    if (v.is_string()) out[k] = v.as_string();
  }
  return out;
}

std::string ObjectKey(const std::string& ns, const std::string& name) {
  return ns.empty() ? name : absl::StrCat(ns, "/", name);
}

std::string ObjectKey(const value& obj) { return ObjectKey(NamespaceOf(obj), NameOf(obj)); }

std::string FormatKubeTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::string FormatKubeMicroTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseKubeTime(const std::string& text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return absl::InvalidArgumentError(absl::StrCat("bad time \"", text, "\": ", err));
  }
  return t;
}

}  // namespace pgbranch::kube
