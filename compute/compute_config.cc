#include "compute/compute_config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pgbranch::compute {
namespace {

// Settings the agent writes itself: letting a user override them would break the contract with
// the controller (ports, paths) or the branches' crash consistency (fsync, full_page_writes,
// the recovery settings of postgres_conf.cc).
const std::set<std::string, std::less<>>& ManagedParameters() {
  static const auto* names = new std::set<std::string, std::less<>>{
      "config_file",
      "data_directory",
      "hba_file",
      "ident_file",
      "external_pid_file",
      "listen_addresses",
      "port",
      "unix_socket_directories",
      "unix_socket_group",
      "unix_socket_permissions",
      "fsync",
      "full_page_writes",
      "hot_standby",
      "logging_collector",
      "log_destination",
      "recovery_init_sync_method",
      "restart_after_crash",
  };
  return *names;
}

bool IsValidGucName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  if (!absl::ascii_isalpha(name[0]) && name[0] != '_') return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.') return false;
  }
  return true;
}

absl::Status KeyError(std::string_view key, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("config key ", std::string(key), ": ", std::string(what)));
}

absl::StatusOr<std::string> Scalar(const YAML::Node& node, std::string_view key) {
  if (!node.IsScalar()) return KeyError(key, "must be a string");
  return node.Scalar();
}

absl::StatusOr<int> Int(const YAML::Node& node, std::string_view key, int min, int max) {
  if (!node.IsScalar()) return KeyError(key, "must be a number");
  int v = 0;
  if (!absl::SimpleAtoi(node.Scalar(), &v) || v < min || v > max) {
    return KeyError(key, absl::StrCat("must be a whole number in ", min, "..", max, ", not '",
                                      node.Scalar(), "'"));
  }
  return v;
}

absl::Status Require(const std::string& value, std::string_view key) {
  if (value.empty()) return KeyError(key, "is required");
  return absl::OkStatus();
}

// Role and database names are used as SQL identifiers (quoted) and in connection strings.
absl::Status ValidateSqlName(const std::string& value, std::string_view key) {
  if (value.empty() || value.size() > 63) return KeyError(key, "must be 1..63 characters");
  for (char c : value) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-') {
      return KeyError(key, absl::StrCat("'", value, "': use letters, digits, '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

absl::Status Validate(const ComputeConfig& c) {
  for (auto [value, key] :
       {std::pair{&c.pageserver, "pageserver"}, std::pair{&c.tenant, "tenant"},
        std::pair{&c.timeline, "timeline"}, std::pair{&c.workdir, "workdir"},
        std::pair{&c.pagefs_bin, "pagefs_bin"}, std::pair{&c.pg_bin_dir, "pg_bin_dir"}}) {
    if (absl::Status s = Require(*value, key); !s.ok()) return s;
  }
  if (c.workdir[0] != '/') return KeyError("workdir", "must be an absolute path");
  // Any length: PostgreSQL's socket moves to a short directory when workdir/run would not fit
  // sockaddr_un (ComputeLayout::SocketDirFor). PATH_MAX still bounds it.
  if (c.workdir.size() > 1024) return KeyError("workdir", "must be at most 1024 characters");
  if (c.pg_port == 0) return KeyError("pg_port", "is required");
  if (absl::Status s = ValidateSqlName(c.role, "role"); !s.ok()) return s;
  if (absl::Status s = ValidateSqlName(c.database, "database"); !s.ok()) return s;
  if (c.mode == ComputeMode::kReadWrite && c.password_file.empty()) {
    return KeyError("password_file", "is required for a read-write endpoint");
  }
  for (const auto& [name, value] : c.parameters) {
    if (!IsValidGucName(name)) {
      return KeyError("parameters",
                      absl::StrCat("'", name, "' is not a PostgreSQL parameter name"));
    }
    if (IsManagedParameter(name)) {
      return KeyError("parameters",
                      absl::StrCat(name, " is managed by pgbranch-compute and cannot be set"));
    }
    if (value.find('\n') != std::string::npos || value.find('\0') != std::string::npos) {
      return KeyError("parameters", absl::StrCat(name, ": the value must be a single line"));
    }
  }
  static const std::set<std::string> kLevels = {"debug", "info", "warning", "error"};
  if (!kLevels.count(c.log_level)) {
    return KeyError("log_level", "must be one of debug, info, warning, error");
  }
  return absl::OkStatus();
}

absl::Status Apply(const std::string& key, const YAML::Node& v, ComputeConfig* c, bool* known) {
  *known = true;
  auto str = [&](std::string* out) -> absl::Status {
    if (v.IsNull()) {
      out->clear();
      return absl::OkStatus();
    }
    absl::StatusOr<std::string> s = Scalar(v, key);
    if (!s.ok()) return s.status();
    *out = *s;
    return absl::OkStatus();
  };
  auto num = [&](int* out, int min, int max) -> absl::Status {
    absl::StatusOr<int> n = Int(v, key, min, max);
    if (!n.ok()) return n.status();
    *out = *n;
    return absl::OkStatus();
  };
  if (key == "endpoint") return str(&c->endpoint);
  if (key == "branch") return str(&c->branch);
  if (key == "pageserver") return str(&c->pageserver);
  if (key == "tenant") return str(&c->tenant);
  if (key == "timeline") return str(&c->timeline);
  if (key == "token_file") return str(&c->token_file);
  if (key == "workdir") return str(&c->workdir);
  if (key == "status_listen") return str(&c->status_listen);
  if (key == "listen_address") return str(&c->listen_address);
  if (key == "status_port_file") return str(&c->status_port_file);
  if (key == "pg_bin_dir") return str(&c->pg_bin_dir);
  if (key == "pagefs_bin") return str(&c->pagefs_bin);
  if (key == "role") return str(&c->role);
  if (key == "database") return str(&c->database);
  if (key == "password_file") return str(&c->password_file);
  if (key == "pagefs_metrics_listen") return str(&c->pagefs_metrics_listen);
  if (key == "commit_channel") return str(&c->commit_channel);
  if (key == "log_level") return str(&c->log_level);
  if (key == "pg_port") return num(&c->pg_port, 1, 65535);
  if (key == "stop_timeout_seconds") return num(&c->stop_timeout_seconds, 1, 3600);
  if (key == "start_timeout_seconds") return num(&c->start_timeout_seconds, 1, 86400);
  if (key == "mode") {
    std::string m;
    if (absl::Status s = str(&m); !s.ok()) return s;
    std::string lower = absl::AsciiStrToLower(m);
    if (lower == "read-write" || lower == "readwrite") {
      c->mode = ComputeMode::kReadWrite;
    } else if (lower == "read-only" || lower == "readonly") {
      c->mode = ComputeMode::kReadOnly;
    } else {
      return KeyError(key, absl::StrCat("'", m, "': use read-write or read-only"));
    }
    return absl::OkStatus();
  }
  if (key == "parameters") {
    if (v.IsNull()) return absl::OkStatus();
    if (!v.IsMap()) return KeyError(key, "must be a map of parameter names to values");
    for (const auto& kv : v) {
      std::string name = kv.first.Scalar();
      if (!kv.second.IsScalar()) {
        return KeyError(key, absl::StrCat(name, ": the value must be a string or a number"));
      }
      c->parameters[name] = kv.second.Scalar();
    }
    return absl::OkStatus();
  }
  *known = false;
  return absl::OkStatus();
}

}  // namespace

bool IsManagedParameter(std::string_view name) {
  return ManagedParameters().count(absl::AsciiStrToLower(std::string(name))) > 0;
}

const char* ModeName(ComputeMode mode) {
  return mode == ComputeMode::kReadOnly ? "read-only" : "read-write";
}

absl::StatusOr<ComputeConfig> ParseComputeConfig(std::string_view text, std::string* unknown_keys) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config is not valid YAML/JSON: ", e.what()));
  }
  if (!root.IsMap()) return absl::InvalidArgumentError("config must be a YAML/JSON map");
  ComputeConfig c;
  std::vector<std::string> unknown;
  try {
    for (const auto& kv : root) {
      std::string key = kv.first.Scalar();
      bool known = false;
      absl::Status s = Apply(key, kv.second, &c, &known);
      if (!s.ok()) return s;
      if (!known) unknown.push_back(key);
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", e.what()));
  }
  if (unknown_keys != nullptr) *unknown_keys = absl::StrJoin(unknown, ",");
  if (c.branch.empty()) c.branch = c.timeline;
  if (c.endpoint.empty()) c.endpoint = c.branch;
  if (absl::Status s = Validate(c); !s.ok()) return s;
  return c;
}

absl::StatusOr<ComputeConfig> LoadComputeConfig(const std::string& path,
                                                std::string* unknown_keys) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the config file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  absl::StatusOr<ComputeConfig> c = ParseComputeConfig(ss.str(), unknown_keys);
  if (!c.ok()) {
    return absl::Status(c.status().code(), absl::StrCat(path, ": ", c.status().message()));
  }
  return c;
}

}  // namespace pgbranch::compute
