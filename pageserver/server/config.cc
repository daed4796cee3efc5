#include "pageserver/server/config.h"

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace pgbranch::pageserver {
namespace {

absl::Status ApplyYaml(const std::string& path, ServerConfig* c) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config file ", path, ": ", e.what()));
  }
  try {
    if (!root.IsMap()) return absl::InvalidArgumentError(absl::StrCat(path, ": expected a map"));
    for (const auto& kv : root) {
      std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "listen") {
        c->listen = v.as<std::string>();
      } else if (key == "listen_unix") {
        c->listen_unix = v.as<std::string>();
      } else if (key == "commit_socket") {
        c->commit_socket = v.as<std::string>();
      } else if (key == "metrics_listen") {
        c->metrics_listen = v.as<std::string>();
      } else if (key == "data_dir") {
        c->data_dir = v.as<std::string>();
      } else if (key == "log_level") {
        c->log_level = v.as<std::string>();
      } else if (key == "retention") {
        if (v["history_seconds"])
          c->retention.history_seconds = v["history_seconds"].as<uint64_t>();
        if (v["history_bytes"]) c->retention.history_bytes = v["history_bytes"].as<uint64_t>();
      } else if (key == "auth") {
        if (v["token_file"]) c->token_file = v["token_file"].as<std::string>();
        if (v["signing_key_file"]) c->signing_key_file = v["signing_key_file"].as<std::string>();
      } else if (key == "tls") {
        if (v["cert_file"]) c->tls_cert_file = v["cert_file"].as<std::string>();
        if (v["key_file"]) c->tls_key_file = v["key_file"].as<std::string>();
      } else if (key == "maintenance") {
        if (v["memtable_flush_mb"]) c->memtable_flush_mb = v["memtable_flush_mb"].as<uint64_t>();
        if (v["gc_interval_seconds"]) c->gc_interval_seconds = v["gc_interval_seconds"].as<int>();
      } else {
        return absl::InvalidArgumentError(absl::StrCat(path, ": unknown key '", key, "'"));
      }
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config file ", path, ": ", e.what()));
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status ParseNumber(const std::string& flag, const std::string& s, T* out) {
  if (!absl::SimpleAtoi(s, out)) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": '", s, "' is not a number"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string ServerUsage() {
  return "usage: pgbranch-pageserver --data-dir DIR [--listen ADDR] [--listen-unix PATH]\n"
         "         [--commit-socket PATH] [--metrics-listen ADDR]\n"
         "         [--config FILE] [--token-file FILE] [--token-signing-key-file FILE]\n"
         "         [--tls-cert FILE --tls-key FILE]\n"
         "         [--history-seconds N] [--history-bytes N] [--memtable-flush-mb N]\n"
         "         [--gc-interval-seconds N] [--port-file FILE] [--log-level LEVEL]\n";
}

absl::StatusOr<ServerConfig> ParseServerConfig(const std::vector<std::string>& args) {
  ServerConfig c;
  // The YAML file first, so flags win wherever they appear.
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--config") {
      absl::Status s = ApplyYaml(args[i + 1], &c);
      if (!s.ok()) return s;
    }
  }
  std::map<std::string, std::function<absl::Status(const std::string&)>> flags = {
      {"--config", [](const std::string&) { return absl::OkStatus(); }},
      {"--listen",
       [&](const std::string& v) {
         c.listen = v;
         return absl::OkStatus();
       }},
      {"--listen-unix",
       [&](const std::string& v) {
         c.listen_unix = v;
         return absl::OkStatus();
       }},
      {"--commit-socket",
       [&](const std::string& v) {
         c.commit_socket = v;
         return absl::OkStatus();
       }},
      {"--metrics-listen",
       [&](const std::string& v) {
         c.metrics_listen = v;
         return absl::OkStatus();
       }},
      {"--data-dir",
       [&](const std::string& v) {
         c.data_dir = v;
         return absl::OkStatus();
       }},
      {"--token-file",
       [&](const std::string& v) {
         c.token_file = v;
         return absl::OkStatus();
       }},
      {"--token-signing-key-file",
       [&](const std::string& v) {
         c.signing_key_file = v;
         return absl::OkStatus();
       }},
      {"--tls-cert",
       [&](const std::string& v) {
         c.tls_cert_file = v;
         return absl::OkStatus();
       }},
      {"--tls-key",
       [&](const std::string& v) {
         c.tls_key_file = v;
         return absl::OkStatus();
       }},
      {"--port-file",
       [&](const std::string& v) {
         c.port_file = v;
         return absl::OkStatus();
       }},
      {"--log-level",
       [&](const std::string& v) {
         c.log_level = v;
         return absl::OkStatus();
       }},
      {"--history-seconds",
       [&](const std::string& v) {
         return ParseNumber("--history-seconds", v, &c.retention.history_seconds);
       }},
      {"--history-bytes",
       [&](const std::string& v) {
         return ParseNumber("--history-bytes", v, &c.retention.history_bytes);
       }},
      {"--memtable-flush-mb",
       [&](const std::string& v) {
         return ParseNumber("--memtable-flush-mb", v, &c.memtable_flush_mb);
       }},
      {"--gc-interval-seconds",
       [&](const std::string& v) {
         return ParseNumber("--gc-interval-seconds", v, &c.gc_interval_seconds);
       }},
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") return absl::NotFoundError(ServerUsage());
    std::string name = a, value;
    bool inline_value = false;
    if (auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      inline_value = true;
    }
    auto it = flags.find(name);
    if (it == flags.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag '", a, "'\n", ServerUsage()));
    }
    if (!inline_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("flag ", name, " needs a value"));
      }
      value = args[++i];
    }
    absl::Status s = it->second(value);
    if (!s.ok()) return s;
  }
  if (c.data_dir.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--data-dir (or data_dir in the config file) is required\n", ServerUsage()));
  }
  if (!c.listen_unix.empty() && c.listen_unix[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen-unix (listen_unix) must be an absolute path, not '", c.listen_unix, "'"));
  }
  if (!c.commit_socket.empty() && c.commit_socket[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "--commit-socket (commit_socket) must be an absolute path, not '", c.commit_socket, "'"));
  }
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both --tls-cert and --tls-key");
  }
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warning" &&
      c.log_level != "error") {
    return absl::InvalidArgumentError(
        absl::StrCat("--log-level must be debug, info, warning or error, not '", c.log_level, "'"));
  }
  return c;
}

}  // namespace pgbranch::pageserver
