#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pageserver/storage/types.h"

namespace pgbranch::pageserver {

// Pageserver settings: built-in defaults, overridden by a YAML file (--config), overridden by
// command-line flags.
//
// YAML keys:
//   listen: 127.0.0.1:6400          metrics_listen: 127.0.0.1:9400
//   listen_unix: /run/pgbranch/pageserver.sock
//   commit_socket: /run/pgbranch/commit.sock
//   data_dir: /var/lib/pgbranch/pageserver
//   retention: {history_seconds: 604800, history_bytes: 0}
//   auth: {token_file: /etc/pgbranch/tokens.yaml, signing_key_file: /etc/pgbranch/signing-key}
//   tls: {cert_file: server.crt, key_file: server.key}
//   maintenance: {memtable_flush_mb: 256, gc_interval_seconds: 60}
//   log_level: info
struct ServerConfig {
  std::string listen = "127.0.0.1:6400";
  // Also serve on this Unix domain socket (absolute path; empty: not). For clients on the same
  // host, e.g. pagefs --pageserver unix:PATH: the commit path of each fsync crosses it twice.
  std::string listen_unix;
  // Also serve the commit channel on this Unix socket (absolute path; empty: not): pagefs
  // --commit-channel unix:PATH sends its pipelined commits there, to a thread per connection
  // blocked in read(), instead of through gRPC (pageserver/server/commit_socket_server.h).
  std::string commit_socket;
  std::string metrics_listen;  // empty: no metrics endpoint
  std::string data_dir;
  std::string token_file;        // static tokens (YAML)
  std::string signing_key_file;  // signed tokens; auth is off when both are empty
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string port_file;  // written with the bound gRPC port once serving
  std::string log_level = "info";
  storage::Retention retention{7 * 24 * 3600, 0};
  uint64_t memtable_flush_mb = 256;
  int gc_interval_seconds = 60;
  uint64_t max_message_mb = 72;
};

// Parses argv (flags override the YAML file named by --config). Errors say which flag or key is
// wrong. `--help` yields a NotFound status carrying the usage text.
absl::StatusOr<ServerConfig> ParseServerConfig(const std::vector<std::string>& args);
std::string ServerUsage();

}  // namespace pgbranch::pageserver
