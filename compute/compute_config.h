#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

// The compute agent's configuration: the file `pgbranch-compute --config FILE` reads (YAML or
// JSON), written by the local controller or the operator. docs/local-mode-internals.md is the
// contract; keys not listed there are optional extensions with defaults.
namespace pgbranch::compute {

enum class ComputeMode { kReadWrite, kReadOnly };

struct ComputeConfig {
  // Names only, for logs and metrics (default: the timeline's id).
  std::string endpoint;
  std::string branch;

  std::string pageserver;  // host:port
  std::string tenant;
  std::string timeline;
  std::string token_file;  // optional: bearer token for the pageserver (passed to pagefs)

  ComputeMode mode = ComputeMode::kReadWrite;
  std::string workdir;  // absolute; see ComputeLayout for what lives in it
  int pg_port = 0;      // PostgreSQL listens on listen_address:pg_port
  // Where PostgreSQL listens. Local mode: loopback. A compute pod: "*", so the in-cluster proxy
  // reaches it on the pod's address; clients from other hosts then log in with SCRAM.
  std::string listen_address = "127.0.0.1";
  std::string status_listen = "127.0.0.1:0";
  std::string status_port_file;  // optional: receives the bound HTTP port
  std::string pg_bin_dir = "/usr/lib/postgresql/15/bin";
  std::string pagefs_bin;

  std::string role = "app";
  std::string database = "app";
  std::string password_file;  // required in read-write mode

  // PostgreSQL parameters (spec.postgresParameters). Keys are validated GUC names; values are
  // written quoted. Keys the agent manages itself (ports, paths, fsync...) are rejected.
  std::map<std::string, std::string> parameters;

  int stop_timeout_seconds = 20;  // fast shutdown budget before SIGQUIT
  // Extensions (not in the contract's sample; defaults suit local mode):
  int start_timeout_seconds = 600;    // mount + initdb + recovery before giving up
  std::string pagefs_metrics_listen;  // optional: pagefs --metrics-listen
  std::string commit_channel;         // optional: pagefs --commit-channel (unix:PATH)
  std::string log_level = "info";     // debug|info|warning|error
};

// Parses and validates a configuration. Errors name the key and what is wrong with it.
// Unknown keys are ignored (reported in `*unknown_keys` when given), so an older agent keeps
// working with a newer controller.
absl::StatusOr<ComputeConfig> ParseComputeConfig(std::string_view text,
                                                 std::string* unknown_keys = nullptr);

// Reads FILE and parses it; errors name the file.
absl::StatusOr<ComputeConfig> LoadComputeConfig(const std::string& path,
                                                std::string* unknown_keys = nullptr);

// Whether `name` is a PostgreSQL parameter name the agent manages itself (and so refuses in
// `parameters`).
bool IsManagedParameter(std::string_view name);

const char* ModeName(ComputeMode mode);

}  // namespace pgbranch::compute
