#include "operator/model/json.h"

#include "absl/strings/str_cat.h"
#include "operator/model/duration.h"
#include "operator/model/manifest.h"

namespace pgbranch::control {
namespace {

using web::json::value;

value Str(const std::string& s) { return value::string(s); }

value StringMap(const std::map<std::string, std::string>& m) {
  value out = value::object();
  for (const auto& [k, v] : m) out[k] = Str(v);
  return out;
}

// The manifest part of metadata (what a user writes).
value ManifestMeta(const ObjectMeta& m) {
  value out = value::object();
  out["name"] = Str(m.name);
  out["namespace"] = Str(m.namespace_);
  if (!m.labels.empty()) out["labels"] = StringMap(m.labels);
  if (!m.annotations.empty()) out["annotations"] = StringMap(m.annotations);
  return out;
}

value FullMeta(const ObjectMeta& m) {
  value out = ManifestMeta(m);
  if (!m.uid.empty()) out["uid"] = Str(m.uid);
  out["generation"] = value::number(m.generation);
  if (m.creation_timestamp != absl::InfinitePast()) {
    out["creationTimestamp"] = Str(Rfc3339(m.creation_timestamp));
  }
  if (m.deletion_timestamp) out["deletionTimestamp"] = Str(Rfc3339(*m.deletion_timestamp));
  return out;
}

void ReadMetaExtras(const value& v, ObjectMeta* m) {
  if (!v.has_field("metadata")) return;
  const value& meta = v.at("metadata");
  m->uid = JsonString(meta, "uid");
  m->generation = JsonInt(meta, "generation");
  if (auto t = ParseRfc3339(JsonString(meta, "creationTimestamp")); t.ok()) {
    m->creation_timestamp = *t;
  }
  if (auto t = ParseRfc3339(JsonString(meta, "deletionTimestamp")); t.ok()) {
    m->deletion_timestamp = *t;
  }
}

value Conditions(const std::vector<Condition>& cs) {
  value out = value::array();
  size_t i = 0;
  for (const Condition& c : cs) {
    value j = value::object();
    j["type"] = Str(c.type);
    j["status"] = Str(c.status);
    j["reason"] = Str(c.reason);
    j["message"] = Str(c.message);
    j["lastTransitionTime"] = Str(Rfc3339(c.last_transition_time));
    j["observedGeneration"] = value::number(c.observed_generation);
    out[i++] = j;
  }
  return out;
}

std::vector<Condition> ReadConditions(const value& status) {
  std::vector<Condition> out;
  if (!status.has_field("conditions") || !status.at("conditions").is_array()) return out;
  for (const value& j : status.at("conditions").as_array()) {
    Condition c;
    c.type = JsonString(j, "type");
    c.status = JsonString(j, "status");
    c.reason = JsonString(j, "reason");
    c.message = JsonString(j, "message");
    if (auto t = ParseRfc3339(JsonString(j, "lastTransitionTime")); t.ok()) {
      c.last_transition_time = *t;
    }
    c.observed_generation = JsonInt(j, "observedGeneration");
    out.push_back(std::move(c));
  }
  return out;
}

std::optional<absl::Time> OptionalTime(const value& v, const std::string& key) {
  auto t = ParseRfc3339(JsonString(v, key));
  if (!t.ok()) return std::nullopt;
  return *t;
}

value BranchSpecJson(const BranchSpec& s) {
  value out = value::object();
  if (!s.parent.empty()) out["parent"] = Str(s.parent);
  if (s.lsn) out["lsn"] = value::number(static_cast<uint64_t>(*s.lsn));
  if (s.timestamp) out["timestamp"] = Str(Rfc3339(*s.timestamp));
  if (s.ttl) out["ttl"] = Str(DurationToString(*s.ttl));
  if (s.expire_time) out["expireTime"] = Str(Rfc3339(*s.expire_time));
  if (s.no_expiry) out["noExpiry"] = value::boolean(true);
  if (s.protected_) out["protected"] = value::boolean(true);
  if (s.reset_generation) out["resetGeneration"] = value::number(s.reset_generation);
  if (s.history_window || s.history_bytes) {
    value r = value::object();
    if (s.history_window) r["historyWindow"] = Str(DurationToString(*s.history_window));
    if (s.history_bytes) r["historyBytes"] = value::number(static_cast<uint64_t>(*s.history_bytes));
    out["retention"] = r;
  }
  return out;
}

value EndpointSpecJson(const EndpointSpec& s) {
  value out = value::object();
  out["branch"] = Str(s.branch);
  out["type"] = Str(s.type == EndpointType::kReadOnly ? "ReadOnly" : "ReadWrite");
  if (s.lsn) out["lsn"] = value::number(static_cast<uint64_t>(*s.lsn));
  if (s.timestamp) out["timestamp"] = Str(Rfc3339(*s.timestamp));
  out["suspendTimeout"] = Str(DurationToString(s.suspend_timeout));
  if (!s.cpu.empty() || !s.memory.empty()) {
    value r = value::object();
    if (!s.cpu.empty()) r["cpu"] = Str(s.cpu);
    if (!s.memory.empty()) r["memory"] = Str(s.memory);
    out["resources"] = r;
  }
  if (!s.image.empty()) out["image"] = Str(s.image);
  if (!s.postgres_parameters.empty()) out["postgresParameters"] = StringMap(s.postgres_parameters);
  return out;
}

value Manifest(const char* kind, const value& meta, const value& spec) {
  value out = value::object();
  out["apiVersion"] = Str(kApiVersion);
  out["kind"] = Str(kind);
  out["metadata"] = meta;
  out["spec"] = spec;
  return out;
}

// Re-validates the manifest part of a stored object with the manifest parser.
absl::StatusOr<Resource> ParseStored(const value& v) {
  value manifest = value::object();
  manifest["apiVersion"] = v.has_field("apiVersion") ? v.at("apiVersion") : Str("");
  manifest["kind"] = v.has_field("kind") ? v.at("kind") : Str("");
  value meta = value::object();
  if (v.has_field("metadata")) {
    const value& m = v.at("metadata");
    for (const char* key : {"name", "namespace", "labels", "annotations"}) {
      if (m.has_field(key)) meta[key] = m.at(key);
    }
  }
  manifest["metadata"] = meta;
  manifest["spec"] = v.has_field("spec") ? v.at("spec") : value::object();
  auto parsed = ParseManifests(manifest.serialize());
  if (!parsed.ok()) return parsed.status();
  if (parsed->size() != 1) return absl::InvalidArgumentError("expected one object");
  return std::move(parsed->front());
}

}  // namespace

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
}

std::string Rfc3339Seconds(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseRfc3339(const std::string& text) {
  absl::Time t;
  std::string err;
  if (text.empty() || !absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not an RFC 3339 time"));
  }
  return t;
}

std::string JsonString(const value& v, const std::string& key) {
  if (!v.is_object() || !v.has_field(key) || !v.at(key).is_string()) return "";
  return v.at(key).as_string();
}

int64_t JsonInt(const value& v, const std::string& key) {
  if (!v.is_object() || !v.has_field(key) || !v.at(key).is_number()) return 0;
  return v.at(key).as_number().to_int64();
}

bool JsonBool(const value& v, const std::string& key) {
  if (!v.is_object() || !v.has_field(key) || !v.at(key).is_boolean()) return false;
  return v.at(key).as_bool();
}

value ToJson(const Branch& b) {
  value out = Manifest("Branch", FullMeta(b.metadata), BranchSpecJson(b.spec));
  const BranchStatus& s = b.status;
  value st = value::object();
  st["phase"] = Str(s.phase);
  st["tenantID"] = Str(s.tenant_id);
  st["timelineID"] = Str(s.timeline_id);
  st["parentTimelineID"] = Str(s.parent_timeline_id);
  st["parentLSN"] = value::number(static_cast<uint64_t>(s.parent_lsn));
  st["headLSN"] = value::number(static_cast<uint64_t>(s.head_lsn));
  st["logicalSize"] = value::number(s.logical_size);
  st["divergedBytes"] = value::number(static_cast<uint64_t>(s.diverged_bytes));
  if (s.expire_time) st["expireTime"] = Str(Rfc3339(*s.expire_time));
  st["observedResetGeneration"] = value::number(s.observed_reset_generation);
  if (s.last_reset_time) st["lastResetTime"] = Str(Rfc3339(*s.last_reset_time));
  st["conditions"] = Conditions(s.conditions);
  st["observedGeneration"] = value::number(s.observed_generation);
  out["status"] = st;
  return out;
}

value ToJson(const Endpoint& e) {
  value out = Manifest("Endpoint", FullMeta(e.metadata), EndpointSpecJson(e.spec));
  const EndpointStatus& s = e.status;
  value st = value::object();
  st["phase"] = Str(s.phase);
  st["host"] = Str(s.host);
  st["port"] = value::number(s.port);
  st["timelineID"] = Str(s.timeline_id);
  st["secretName"] = Str(s.secret_name);
  if (s.last_active) st["lastActive"] = Str(Rfc3339(*s.last_active));
  if (!s.message.empty()) st["message"] = Str(s.message);
  st["restarts"] = value::number(s.restarts);
  st["conditions"] = Conditions(s.conditions);
  st["observedGeneration"] = value::number(s.observed_generation);
  out["status"] = st;
  return out;
}

absl::StatusOr<Branch> BranchFromJson(const value& v) {
  auto r = ParseStored(v);
  if (!r.ok()) return r.status();
  if (!std::holds_alternative<Branch>(*r)) return absl::InvalidArgumentError("not a Branch");
  Branch b = std::get<Branch>(std::move(*r));
  ReadMetaExtras(v, &b.metadata);
  if (!v.has_field("status")) return b;
  const value& st = v.at("status");
  BranchStatus& s = b.status;
  s.phase = JsonString(st, "phase");
  s.tenant_id = JsonString(st, "tenantID");
  s.timeline_id = JsonString(st, "timelineID");
  s.parent_timeline_id = JsonString(st, "parentTimelineID");
  s.parent_lsn = static_cast<uint64_t>(JsonInt(st, "parentLSN"));
  s.head_lsn = static_cast<uint64_t>(JsonInt(st, "headLSN"));
  s.logical_size = JsonInt(st, "logicalSize");
  s.diverged_bytes = static_cast<uint64_t>(JsonInt(st, "divergedBytes"));
  s.expire_time = OptionalTime(st, "expireTime");
  s.observed_reset_generation = JsonInt(st, "observedResetGeneration");
  s.last_reset_time = OptionalTime(st, "lastResetTime");
  s.conditions = ReadConditions(st);
  s.observed_generation = JsonInt(st, "observedGeneration");
  return b;
}

absl::StatusOr<Endpoint> EndpointFromJson(const value& v) {
  auto r = ParseStored(v);
  if (!r.ok()) return r.status();
  if (!std::holds_alternative<Endpoint>(*r)) return absl::InvalidArgumentError("not an Endpoint");
  Endpoint e = std::get<Endpoint>(std::move(*r));
  ReadMetaExtras(v, &e.metadata);
  if (!v.has_field("status")) return e;
  const value& st = v.at("status");
  EndpointStatus& s = e.status;
  s.phase = JsonString(st, "phase");
  s.host = JsonString(st, "host");
  s.port = static_cast<int>(JsonInt(st, "port"));
  s.timeline_id = JsonString(st, "timelineID");
  s.secret_name = JsonString(st, "secretName");
  s.last_active = OptionalTime(st, "lastActive");
  s.message = JsonString(st, "message");
  s.restarts = JsonInt(st, "restarts");
  s.conditions = ReadConditions(st);
  s.observed_generation = JsonInt(st, "observedGeneration");
  return e;
}

}  // namespace pgbranch::control
