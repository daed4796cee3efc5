// pgbranch: the CLI (DESIGN.md section 5). Local mode today; the same commands will drive the
// Kubernetes API when pointed at a cluster.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "cli/cli_context.h"
#include "cli/local_commands.h"
#include "cli/resource_commands.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "pageserver/pagectl/args.h"

namespace {

constexpr char kUsage[] = R"(pgbranch: Git-style branches of PostgreSQL

usage: pgbranch [--state-dir D] [-o table|json] COMMAND ...

local mode (state in --state-dir, else $PGBRANCH_HOME, else /var/lib/pgbranch):
  local up [--proxy-port P]      start pageserver, controller and proxy in the background
  local down                     suspend every compute and stop them
  local status                   what runs, where

resources (the same YAML as the Kubernetes CRDs, apiVersion pgbranch.io/v1alpha1):
  apply -f FILE|-                create or update Branch and Endpoint objects
  branch create NAME [--parent P] [--lsn L | --at RFC3339]
                [--ttl D | --expire-time RFC3339 | --no-expiry] [--protected]
                [--no-endpoint] [--suspend-timeout D]
                                 a branch (and a read-write endpoint of the same name)
  branch list | get NAME         -o json for scripts
  branch delete NAME             refused for protected branches and branches with children
  branch reset NAME              reset to the parent's head; connection strings keep working
  branch schema-diff NAME [--against OTHER]
                                 unified diff of the schemas (default: against the parent)
  endpoint create NAME --branch B [--type read-write|read-only] [--lsn L | --at RFC3339]
                [--suspend-timeout D]
  endpoint list | get NAME | delete NAME
  connstr ENDPOINT               a postgresql:// URI to paste into psql

durations: 90s, 15m, 1h30m, 7d
)";

// Until the CLI moves onto CLI11: `local up|down|status|controller` from pagectl::Args.
absl::Status RunLocalCommand(const pgbranch::cli::CliContext& ctx, pgbranch::pagectl::Args& args) {
  using namespace pgbranch;
  const std::string verb = args.Positional(1);
  if (verb == "up") {
    cli::LocalUpOptions o;
    PGB_ASSIGN_OR_RETURN(uint64_t port, args.Uint("proxy-port", 55432));
    o.proxy_port = static_cast<int>(port);
    o.test_clock = args.Bool("test-clock");
    o.tls = !args.Bool("no-tls");
    PGB_RETURN_IF_ERROR(args.CheckAllUsed(2));
    return cli::LocalUp(ctx, o);
  }
  if (verb == "down" || verb == "status") {
    PGB_RETURN_IF_ERROR(args.CheckAllUsed(2));
    return verb == "down" ? cli::LocalDown(ctx) : cli::LocalStatus(ctx);
  }
  if (verb == "controller") {
    cli::LocalControllerOptions o;
    PGB_ASSIGN_OR_RETURN(o.pageserver, args.RequiredFlag("pageserver"));
    o.test_clock = args.Bool("test-clock");
    o.log_level = args.Flag("log-level").value_or("info");
    PGB_RETURN_IF_ERROR(args.CheckAllUsed(2));
    return cli::RunLocalController(ctx, o);
  }
  return pagectl::UsageError("usage: pgbranch local up|down|status");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace pgbranch;
  auto args = pagectl::Args::Parse(
      argc, argv,
      {"protected", "no-expiry", "no-endpoint", "test-clock", "no-tls", "two-way", "exit-code"});
  if (!args.ok()) {
    std::cerr << "pgbranch: " << args.status().message() << "\n\n" << kUsage;
    return 2;
  }
  if (args->Bool("help") || args->Bool("h") || args->positional().empty()) {
    std::cout << kUsage;
    return args->positional().empty() && !args->Has("help") && !args->Has("h") ? 2 : 0;
  }
  auto ctx = cli::CliContext::FromArgs(*args);
  absl::Status s;
  if (!ctx.ok()) {
    s = ctx.status();
  } else {
    const std::string cmd = args->Positional(0);
    if (cmd == "local") {
      s = RunLocalCommand(*ctx, *args);
    } else if (cmd == "apply") {
      s = cli::RunApply(*ctx, *args);
    } else if (cmd == "branch") {
      s = cli::RunBranchCommand(*ctx, *args);
    } else if (cmd == "endpoint") {
      s = cli::RunEndpointCommand(*ctx, *args);
    } else if (cmd == "connstr") {
      s = cli::RunConnstr(*ctx, *args);
    } else if (cmd == "debug") {
      s = cli::RunDebugCommand(*ctx, *args);
    } else {
      s = pagectl::UsageError(absl::StrCat("unknown command \"", cmd, "\""));
    }
  }
  if (s.ok()) return 0;
  std::cerr << "pgbranch: " << s.message() << "\n";
  if (pagectl::IsUsageError(s)) {
    std::cerr << "run `pgbranch --help` for the commands\n";
    return 2;
  }
  return 1;
}
