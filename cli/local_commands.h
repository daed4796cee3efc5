#pragma once

#include <string>

#include "absl/status/status.h"
#include "cli/cli_context.h"

// `pgbranch local up|down|status` and the hidden `pgbranch local controller` (the controller
// process that `local up` starts). Flags are parsed by the caller (cli/main.cc).
namespace pgbranch::cli {

struct LocalUpOptions {
  int proxy_port = 55432;
  bool test_clock = false;  // the controller accepts `pgbranch debug advance-clock`
  bool tls = true;          // --no-tls: the proxy speaks plain TCP (connection strings follow)
};

struct LocalControllerOptions {
  std::string pageserver;  // host:port
  bool test_clock = false;
  std::string log_level = "info";  // debug | info | warning
};

absl::Status LocalUp(const CliContext& ctx, const LocalUpOptions& options);
absl::Status LocalDown(const CliContext& ctx);
absl::Status LocalStatus(const CliContext& ctx);
// Runs the controller in this process until SIGTERM/SIGINT.
absl::Status RunLocalController(const CliContext& ctx, const LocalControllerOptions& options);

}  // namespace pgbranch::cli
