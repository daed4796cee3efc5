// pagectl: the pageserver's admin CLI (tenants, timelines, import/export of a directory tree).

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "pageserver/pagectl/admin_commands.h"
#include "pageserver/pagectl/args.h"
#include "pageserver/pagectl/client.h"
#include "pageserver/pagectl/command_context.h"
#include "pageserver/pagectl/data_commands.h"
#include "pageserver/pagectl/tenant_commands.h"
#include "pageserver/pagectl/timeline_commands.h"

namespace pgbranch::pagectl {
namespace {

constexpr char kDefaultAddress[] = "127.0.0.1:6400";

constexpr char kUsageLine[] =
    "usage: pagectl [--pageserver ADDR] [--token-file F] [-o table|json] [-q] COMMAND ...\n"
    "       (pagectl --help lists the commands)\n";

constexpr char kUsage[] = R"(usage: pagectl [global flags] COMMAND ...

Commands:
  tenant create [--id ID] [--root-timeline ID]
  tenant list
  tenant delete ID
  timeline create --tenant T [--id ID] [--parent P [--lsn L | --at RFC3339]]
                  [--history-seconds N] [--history-bytes N]
  timeline list --tenant T
  timeline info --tenant T ID
  timeline delete --tenant T ID
  timeline reset --tenant T ID [--backup ID]
  timeline retention --tenant T ID [--history-seconds N] [--history-bytes N]
  lsn-at --tenant T --timeline X TIMESTAMP
  import --tenant T --timeline X DIR       (into an empty timeline)
  export --tenant T --timeline X [--lsn L] DIR   (into an empty or new directory)
  maintenance [--gc]

Global flags:
  --pageserver ADDR   host:port (default: $PGBRANCH_PAGESERVER, else 127.0.0.1:6400)
  --token-file F      bearer token (default: $PGBRANCH_TOKEN)
  --tls-ca F          connect with TLS, trusting this CA
  --timeout SECONDS   per-call deadline (default 120)
  -o table|json       output format of read commands (default table)
  -q                  no progress output
)";

absl::StatusOr<std::string> ReadFileContents(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", what, " ", path));
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

absl::StatusOr<ClientOptions> ParseClientOptions(Args& args) {
  ClientOptions options;
  const char* env_address = std::getenv("PGBRANCH_PAGESERVER");
  options.address =
      args.Flag("pageserver")
          .value_or(env_address != nullptr && *env_address != '\0' ? env_address : kDefaultAddress);
  if (std::optional<std::string> file = args.Flag("token-file")) {
    PGB_ASSIGN_OR_RETURN(std::string token, ReadFileContents(*file, "token file"));
    options.token = std::string(absl::StripAsciiWhitespace(token));
  } else if (const char* token = std::getenv("PGBRANCH_TOKEN")) {
    options.token = std::string(absl::StripAsciiWhitespace(token));
  }
  if (std::optional<std::string> file = args.Flag("tls-ca")) {
    PGB_ASSIGN_OR_RETURN(options.tls_ca_pem, ReadFileContents(*file, "CA file"));
  }
  PGB_ASSIGN_OR_RETURN(uint64_t timeout, args.Uint("timeout", 120));
  if (timeout == 0) return UsageError("--timeout must be positive");
  options.timeout = absl::Seconds(static_cast<int64_t>(timeout));
  return options;
}

absl::StatusOr<OutputFormat> ParseFormat(Args& args) {
  std::string format = args.Flag("o").value_or("table");
  if (format == "table") return OutputFormat::kTable;
  if (format == "json") return OutputFormat::kJson;
  return UsageError(absl::StrCat("-o wants table or json, not \"", format, "\""));
}

absl::Status Dispatch(const CommandContext& ctx) {
  std::string command = ctx.args->Positional(0);
  if (command == "tenant") return RunTenantCommand(ctx);
  if (command == "timeline") return RunTimelineCommand(ctx);
  if (command == "lsn-at") return RunLsnAtCommand(ctx);
  if (command == "import") return RunImportCommand(ctx);
  if (command == "export") return RunExportCommand(ctx);
  if (command == "maintenance") return RunMaintenanceCommand(ctx);
  if (command.empty()) return UsageError("no command given");
  return UsageError(absl::StrCat("unknown command \"", command, "\""));
}

int Run(int argc, char** argv) {
  absl::StatusOr<Args> args = Args::Parse(argc, argv);
  absl::Status status = args.status();
  std::string address;
  if (status.ok()) {
    if (args->Bool("help") || args->Bool("h")) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (args->positional().empty()) {
      std::fputs(kUsage, stderr);
      return 2;
    }
    absl::StatusOr<ClientOptions> options = ParseClientOptions(*args);
    absl::StatusOr<OutputFormat> format = ParseFormat(*args);
    status = options.ok() ? format.status() : options.status();
    if (status.ok()) {
      address = options->address;
      std::unique_ptr<Client> client = Client::Connect(*options);
      CommandContext ctx;
      ctx.args = &*args;
      ctx.client = client.get();
      ctx.format = *format;
      ctx.quiet = args->Bool("q") || args->Bool("quiet");
      ctx.out = &std::cout;
      status = Dispatch(ctx);
    }
  }
  std::cout.flush();
  if (status.ok()) return 0;
  if (IsUsageError(status)) {
    std::fprintf(stderr, "error: %s\n%s", std::string(status.message()).c_str(), kUsageLine);
    return 2;
  }
  std::string message(status.message());
  if (status.code() == absl::StatusCode::kUnavailable && !address.empty()) {
    message = absl::StrCat(message, " (pageserver ", address, ")");
  }
  std::fprintf(stderr, "error: %s (%s)\n", message.c_str(),
               absl::StatusCodeToString(status.code()).c_str());
  return 1;
}

}  // namespace
}  // namespace pgbranch::pagectl

int main(int argc, char** argv) { return pgbranch::pagectl::Run(argc, argv); }
