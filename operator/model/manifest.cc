#include "operator/model/manifest.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "operator/model/duration.h"
#include "operator/model/field_error.h"

namespace pgbranch::control {
namespace {

// Collects validation errors for one document, each prefixed with its field path.
// The status names the first error's field (the one a person fixes first); its detail lists
// the others too, each with its path.
class Errors {
 public:
  explicit Errors(std::string where) : where_(std::move(where)) {}
  void Add(const std::string& path, const std::string& message) {
    errors_.push_back({path, message});
  }
  bool empty() const { return errors_.empty(); }
  absl::Status ToStatus() const {
    std::string detail = errors_[0].second;
    for (size_t i = 1; i < errors_.size(); ++i) {
      absl::StrAppend(&detail, "; ", errors_[i].first, ": ", errors_[i].second);
    }
    return FieldError(absl::StatusCode::kInvalidArgument, where_, errors_[0].first, detail);
  }

 private:
  std::string where_;
  std::vector<std::pair<std::string, std::string>> errors_;  // path, message
};

void CheckKnownFields(const YAML::Node& map, const std::string& path,
                      const std::set<std::string>& known, Errors* errors) {
  if (!map.IsMap()) return;
  for (const auto& kv : map) {
    std::string key = kv.first.as<std::string>();
    if (!known.count(key)) {
      errors->Add(absl::StrCat(path, ".", key),
                  absl::StrCat("unknown field (known: ", absl::StrJoin(known, ", "), ")"));
    }
  }
}

std::optional<std::string> GetString(const YAML::Node& n, const std::string& path, Errors* errors) {
  if (!n) return std::nullopt;
  if (!n.IsScalar()) {
    errors->Add(path, "must be a string");
    return std::nullopt;
  }
  return n.as<std::string>();
}

std::optional<uint64_t> GetUint(const YAML::Node& n, const std::string& path, Errors* errors) {
  if (!n) return std::nullopt;
  try {
    return n.as<uint64_t>();
  } catch (const std::exception&) {
    errors->Add(path, "must be a non-negative integer");
    return std::nullopt;
  }
}

std::optional<bool> GetBool(const YAML::Node& n, const std::string& path, Errors* errors) {
  if (!n) return std::nullopt;
  try {
    return n.as<bool>();
  } catch (const std::exception&) {
    errors->Add(path, "must be true or false");
    return std::nullopt;
  }
}

std::optional<absl::Time> GetTime(const YAML::Node& n, const std::string& path, Errors* errors) {
  auto s = GetString(n, path, errors);
  if (!s) return std::nullopt;
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, *s, &t, &err)) {
    errors->Add(path,
                absl::StrCat("'", *s, "' is not an RFC 3339 time (like 2026-11-21T10:42:00Z)"));
    return std::nullopt;
  }
  return t;
}

std::optional<absl::Duration> GetDuration(const YAML::Node& n, const std::string& path,
                                          Errors* errors) {
  auto s = GetString(n, path, errors);
  if (!s) return std::nullopt;
  auto d = ParseDuration(*s);
  if (!d.ok()) {
    errors->Add(path, std::string(d.status().message()));
    return std::nullopt;
  }
  return *d;
}

std::map<std::string, std::string> GetStringMap(const YAML::Node& n, const std::string& path,
                                                Errors* errors) {
  std::map<std::string, std::string> out;
  if (!n) return out;
  if (!n.IsMap()) {
    errors->Add(path, "must be a map of strings");
    return out;
  }
  for (const auto& kv : n) out[kv.first.as<std::string>()] = kv.second.as<std::string>();
  return out;
}

ObjectMeta ParseMeta(const YAML::Node& doc, Errors* errors) {
  ObjectMeta m;
  YAML::Node meta = doc["metadata"];
  if (!meta || !meta.IsMap()) {
    errors->Add("metadata", "required: give at least metadata.name");
    return m;
  }
  CheckKnownFields(meta, "metadata", {"name", "namespace", "labels", "annotations"}, errors);
  m.name = GetString(meta["name"], "metadata.name", errors).value_or("");
  if (auto ns = GetString(meta["namespace"], "metadata.namespace", errors)) m.namespace_ = *ns;
  absl::Status s = ValidateName("metadata.name", m.name);
  if (!s.ok()) errors->Add("metadata.name", std::string(s.message()));
  m.labels = GetStringMap(meta["labels"], "metadata.labels", errors);
  m.annotations = GetStringMap(meta["annotations"], "metadata.annotations", errors);
  return m;
}

absl::StatusOr<Branch> ParseBranch(const YAML::Node& doc, const std::string& where) {
  Errors errors(where);
  Branch b;
  b.metadata = ParseMeta(doc, &errors);
  YAML::Node spec = doc["spec"];
  if (!spec || !spec.IsMap()) {
    errors.Add("spec", "required: give at least an expiration (ttl, expireTime or noExpiry)");
    return errors.ToStatus();
  }
  CheckKnownFields(spec, "spec",
                   {"parent", "lsn", "timestamp", "ttl", "expireTime", "noExpiry", "protected",
                    "resetGeneration", "retention"},
                   &errors);
  BranchSpec& s = b.spec;
  s.parent = GetString(spec["parent"], "spec.parent", &errors).value_or("");
  if (!s.parent.empty()) {
    absl::Status st = ValidateName("spec.parent", s.parent);
    if (!st.ok()) errors.Add("spec.parent", std::string(st.message()));
    if (s.parent == b.metadata.name) errors.Add("spec.parent", "a branch cannot be its own parent");
  }
  s.lsn = GetUint(spec["lsn"], "spec.lsn", &errors);
  s.timestamp = GetTime(spec["timestamp"], "spec.timestamp", &errors);
  if (s.lsn && s.timestamp) errors.Add("spec.lsn", "give lsn or timestamp, not both");
  if ((s.lsn || s.timestamp) && s.parent.empty()) {
    errors.Add(s.lsn ? "spec.lsn" : "spec.timestamp",
               "a start point needs spec.parent (a root branch starts empty)");
  }
  s.ttl = GetDuration(spec["ttl"], "spec.ttl", &errors);
  s.expire_time = GetTime(spec["expireTime"], "spec.expireTime", &errors);
  s.no_expiry = GetBool(spec["noExpiry"], "spec.noExpiry", &errors).value_or(false);
  int expirations = (spec["ttl"] ? 1 : 0) + (spec["expireTime"] ? 1 : 0) + (s.no_expiry ? 1 : 0);
  if (expirations != 1) {
    errors.Add("spec", "give exactly one of ttl, expireTime and noExpiry: true");
  }
  if (s.ttl && *s.ttl <= absl::ZeroDuration()) errors.Add("spec.ttl", "must be positive");
  s.protected_ = GetBool(spec["protected"], "spec.protected", &errors).value_or(false);
  if (s.protected_ && (s.ttl || s.expire_time)) {
    errors.Add("spec.protected", "a protected branch cannot expire: use noExpiry: true");
  }
  if (auto r = GetUint(spec["resetGeneration"], "spec.resetGeneration", &errors)) {
    s.reset_generation = static_cast<int64_t>(*r);
  }
  // A root's resetGeneration counts its restores (`branch restore`, which records them in
  // annotations; local mode only: the CRD's rule still refuses it).
  if (s.reset_generation > 0 && s.parent.empty() &&
      !b.metadata.annotations.count(kAnnotationRestoreGeneration)) {
    errors.Add("spec.resetGeneration", "only a branch with a parent can be reset");
  }
  if (YAML::Node r = spec["retention"]) {
    CheckKnownFields(r, "spec.retention", {"historyWindow", "historyBytes"}, &errors);
    s.history_window = GetDuration(r["historyWindow"], "spec.retention.historyWindow", &errors);
    s.history_bytes = GetUint(r["historyBytes"], "spec.retention.historyBytes", &errors);
  }
  if (!errors.empty()) return errors.ToStatus();
  return b;
}

absl::StatusOr<Endpoint> ParseEndpoint(const YAML::Node& doc, const std::string& where) {
  Errors errors(where);
  Endpoint e;
  e.metadata = ParseMeta(doc, &errors);
  YAML::Node spec = doc["spec"];
  if (!spec || !spec.IsMap()) {
    errors.Add("spec", "required: give at least spec.branch");
    return errors.ToStatus();
  }
  CheckKnownFields(spec, "spec",
                   {"branch", "type", "lsn", "timestamp", "suspendTimeout", "resources", "image",
                    "postgresParameters"},
                   &errors);
  EndpointSpec& s = e.spec;
  s.branch = GetString(spec["branch"], "spec.branch", &errors).value_or("");
  if (s.branch.empty()) {
    errors.Add("spec.branch", "required: the Branch this endpoint serves");
  } else if (absl::Status st = ValidateName("spec.branch", s.branch); !st.ok()) {
    errors.Add("spec.branch", std::string(st.message()));
  }
  std::string type = GetString(spec["type"], "spec.type", &errors).value_or("ReadWrite");
  if (type == "ReadWrite") {
    s.type = EndpointType::kReadWrite;
  } else if (type == "ReadOnly") {
    s.type = EndpointType::kReadOnly;
  } else {
    errors.Add("spec.type", absl::StrCat("'", type, "' is not ReadWrite or ReadOnly"));
  }
  s.lsn = GetUint(spec["lsn"], "spec.lsn", &errors);
  s.timestamp = GetTime(spec["timestamp"], "spec.timestamp", &errors);
  if ((s.lsn || s.timestamp) && s.type != EndpointType::kReadOnly) {
    errors.Add(s.lsn ? "spec.lsn" : "spec.timestamp",
               "only a ReadOnly endpoint serves a past point; set type: ReadOnly");
  }
  if (s.lsn && s.timestamp) errors.Add("spec.lsn", "give lsn or timestamp, not both");
  if (auto d = GetDuration(spec["suspendTimeout"], "spec.suspendTimeout", &errors)) {
    s.suspend_timeout = *d;
  }
  if (YAML::Node r = spec["resources"]) {
    CheckKnownFields(r, "spec.resources", {"cpu", "memory"}, &errors);
    s.cpu = GetString(r["cpu"], "spec.resources.cpu", &errors).value_or("");
    s.memory = GetString(r["memory"], "spec.resources.memory", &errors).value_or("");
  }
  s.image = GetString(spec["image"], "spec.image", &errors).value_or("");
  s.postgres_parameters =
      GetStringMap(spec["postgresParameters"], "spec.postgresParameters", &errors);
  if (!errors.empty()) return errors.ToStatus();
  return e;
}

}  // namespace

absl::Status ValidateName(const std::string& what, const std::string& name) {
  bool ok = !name.empty() && name.size() <= 63 &&
            std::isalnum(static_cast<unsigned char>(name.front())) &&
            std::isalnum(static_cast<unsigned char>(name.back()));
  for (char c : name) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", name,
                     "' is not a valid name: use at most 63 lower-case letters, digits and '-', "
                     "starting and ending with a letter or digit"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Resource>> ParseManifests(const std::string& yaml) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(yaml);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not valid YAML: ", e.what()));
  }
  std::vector<Resource> out;
  int index = 0;
  for (const YAML::Node& doc : docs) {
    ++index;
    if (!doc || doc.IsNull()) continue;
    std::string where = absl::StrCat("document ", index);
    try {
      if (!doc.IsMap()) return absl::InvalidArgumentError(absl::StrCat(where, ": not a map"));
      std::string api = doc["apiVersion"] ? doc["apiVersion"].as<std::string>() : "";
      std::string kind = doc["kind"] ? doc["kind"].as<std::string>() : "";
      if (doc["metadata"] && doc["metadata"]["name"]) {
        where = absl::StrCat(kind.empty() ? "object" : kind, " \"",
                             doc["metadata"]["name"].as<std::string>(), "\"");
      }
      if (api != kApiVersion) {
        const std::string detail = absl::StrCat("must be ", kApiVersion, ", not '", api, "'");
        return MakeError(absl::StatusCode::kInvalidArgument,
                         absl::StrCat(where, ": apiVersion ", detail), "apiVersion", detail);
      }
      if (kind == "Branch") {
        auto b = ParseBranch(doc, where);
        if (!b.ok()) return b.status();
        out.push_back(std::move(*b));
      } else if (kind == "Endpoint") {
        auto e = ParseEndpoint(doc, where);
        if (!e.ok()) return e.status();
        out.push_back(std::move(*e));
      } else {
        const std::string detail = absl::StrCat("must be Branch or Endpoint, not '", kind, "'");
        return MakeError(absl::StatusCode::kInvalidArgument, absl::StrCat(where, ": kind ", detail),
                         "kind", detail);
      }
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", e.what()));
    }
  }
  return out;
}

}  // namespace pgbranch::control
