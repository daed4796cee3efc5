// pagectl: the pageserver's admin CLI (tenants, timelines, import/export of a directory tree).

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/flags.h"
#include "cli/version.h"
#include "common/status_macros.h"
#include "pageserver/pagectl/admin_commands.h"
#include "pageserver/pagectl/client.h"
#include "pageserver/pagectl/command_context.h"
#include "pageserver/pagectl/data_commands.h"
#include "pageserver/pagectl/tenant_commands.h"
#include "pageserver/pagectl/timeline_commands.h"
#include "pageserver/pagectl/token_commands.h"

namespace pgbranch::pagectl {
namespace {

constexpr char kDefaultAddress[] = "127.0.0.1:6400";

absl::StatusOr<std::string> ReadFileContents(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", what, " ", path));
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

struct GlobalFlags {
  std::string pageserver, token_file, tls_ca;
  uint64_t timeout = 120;
  std::string output = "table";
  bool quiet = false;
};

absl::StatusOr<ClientOptions> MakeClientOptions(const GlobalFlags& g) {
  ClientOptions options;
  const char* env_address = std::getenv("PGBRANCH_PAGESERVER");
  options.address = !g.pageserver.empty()                            ? g.pageserver
                    : env_address != nullptr && *env_address != '\0' ? env_address
                                                                     : kDefaultAddress;
  if (!g.token_file.empty()) {
    PGB_ASSIGN_OR_RETURN(std::string token, ReadFileContents(g.token_file, "token file"));
    options.token = std::string(absl::StripAsciiWhitespace(token));
  } else if (const char* token = std::getenv("PGBRANCH_TOKEN")) {
    options.token = std::string(absl::StripAsciiWhitespace(token));
  }
  if (!g.tls_ca.empty()) {
    PGB_ASSIGN_OR_RETURN(options.tls_ca_pem, ReadFileContents(g.tls_ca, "CA file"));
  }
  options.timeout = absl::Seconds(static_cast<int64_t>(g.timeout));
  return options;
}

// Every command and flag (CLI11, cli/flags.h): the command line is validated before anything
// runs. Returns the command to run, keyed by its path ("timeline create").
class PagectlCommandLine {
 public:
  PagectlCommandLine() : app_("", "pagectl") {
    cli::ConfigureApp(app_);
    app_.description("the pageserver's admin CLI: tenants, timelines, import/export of a tree");
    app_.fallthrough();
    app_.set_version_flag("--version", "pagectl " + cli::Version(), "print the version and exit");
    app_.add_option("--pageserver", g_.pageserver,
                    "host:port (default: $PGBRANCH_PAGESERVER, else 127.0.0.1:6400)")
        ->type_name("ADDR");
    app_.add_option("--token-file", g_.token_file, "bearer token (default: $PGBRANCH_TOKEN)")
        ->type_name("F");
    app_.add_option("--tls-ca", g_.tls_ca, "connect with TLS, trusting this CA")->type_name("F");
    app_.add_option("--timeout", g_.timeout, "per-call deadline in seconds (default 120)")
        ->type_name("SECONDS")
        ->check(CLI::PositiveNumber);
    app_.add_option("-o,--output", g_.output, "output of read commands: table (default) or json")
        ->type_name("FORMAT")
        ->check(CLI::IsMember({"table", "json"}));
    app_.add_flag("-q,--quiet", g_.quiet, "no progress output");

    CLI::App* tenant = app_.add_subcommand("tenant", "tenants");
    CLI::App* tc = tenant->add_subcommand("create", "create a tenant");
    tc->add_option("--id", o_.id, "its ID (default: generated)")->type_name("ID");
    tc->add_option("--root-timeline", o_.root_timeline, "its root timeline's ID")->type_name("ID");
    tenant->add_subcommand("list", "the tenants");
    tenant->add_subcommand("delete", "delete a tenant")
        ->add_option("ID", o_.target, "the tenant")
        ->required();

    CLI::App* timeline = app_.add_subcommand("timeline", "a tenant's timelines");
    CLI::App* create = timeline->add_subcommand("create", "create a timeline");
    Tenant(create);
    create->add_option("--id", o_.id, "its ID (default: generated)")->type_name("ID");
    CLI::Option* parent =
        create->add_option("--parent", o_.parent, "branch from timeline P at its head")
            ->type_name("P");
    CLI::Option* lsn = create->add_option("--lsn", o_.lsn, "branch P at this LSN")
                           ->type_name("L")
                           ->transform(cli::LsnValidator())
                           ->needs(parent);
    At(create, "branch P as of this RFC 3339 time")->needs(parent)->excludes(lsn);
    Retention(create);
    Tenant(timeline->add_subcommand("list", "the tenant's timelines"));
    for (const char* verb : {"info", "delete", "reset", "retention"}) {
      CLI::App* cmd = timeline->add_subcommand(
          verb, std::string(verb == std::string("info")     ? "a timeline's details"
                            : verb == std::string("delete") ? "delete a timeline"
                            : verb == std::string("reset")
                                ? "reset a timeline to its parent's head"
                                : "set how much history a timeline keeps readable"));
      Tenant(cmd);
      cmd->add_option("ID", o_.target, "the timeline")->required();
    }
    timeline->get_subcommand("reset")
        ->add_option("--backup", o_.backup, "keep the old state as timeline ID")
        ->type_name("ID");
    CLI::App* retention = timeline->get_subcommand("retention");
    Retention(retention);
    retention->callback([this] {
      if (!o_.history_seconds && !o_.history_bytes) {
        throw CLI::ValidationError("give --history-seconds and/or --history-bytes");
      }
    });

    CLI::App* lsn_at =
        app_.add_subcommand("lsn-at", "the LSN that was the timeline's head at a time");
    Tenant(lsn_at);
    Timeline(lsn_at);
    std::string* at_text = &at_text_;
    lsn_at->add_option("TIMESTAMP", *at_text, "RFC 3339, like 2026-11-21T10:42:00Z")
        ->required()
        ->check(cli::Rfc3339Validator());
    CLI::App* import =
        app_.add_subcommand("import", "import a directory tree into an empty timeline");
    Tenant(import);
    Timeline(import);
    import->add_option("DIR", o_.target, "the tree")->required();
    CLI::App* export_ =
        app_.add_subcommand("export", "export a timeline into an empty or new directory");
    Tenant(export_);
    Timeline(export_);
    export_->add_option("--lsn", o_.lsn, "as of this LSN (default: the head)")
        ->type_name("L")
        ->transform(cli::LsnValidator());
    export_->add_option("DIR", o_.target, "where")->required();
    app_.add_subcommand("maintenance", "a checkpoint (and GC) now")
        ->add_flag("--gc", o_.gc, "garbage-collect too");

    CLI::App* token = app_.add_subcommand("token", "signed pageserver tokens");
    CLI::App* mint = token->add_subcommand(
        "mint", "print a token signed with the pageserver's --token-signing-key-file");
    mint->add_option("--signing-key-file", o_.signing_key_file, "the signing key")
        ->type_name("F")
        ->required();
    mint->add_option("--scope", o_.token_scope, "admin or tenant (default tenant)")
        ->type_name("SCOPE")
        ->check(CLI::IsMember({"admin", "tenant"}));
    mint->add_option("--tenant", o_.tenant, "the tenant a tenant token grants")->type_name("T");
    mint->add_option("--timeline", o_.timeline, "limit a tenant token to one timeline")
        ->type_name("X");
    mint->add_option("--ttl", ttl_text_, "expires after D (e.g. 1h, 720h; default: never)")
        ->type_name("D")
        ->check(CLI::Validator(
            [](std::string& v) -> std::string {
              absl::Duration d;
              if (!absl::ParseDuration(v, &d) || d <= absl::ZeroDuration()) {
                return "--ttl: '" + v + "' is not a positive duration like 30m, 1h or 720h";
              }
              return "";
            },
            "DURATION"));
  }

  std::optional<int> Parse(int argc, char** argv) {
    std::optional<int> exit_code = cli::ParseCommandLine(app_, argc, argv);
    if (!exit_code && !at_text_.empty()) {
      absl::Time t;
      std::string error;
      if (absl::ParseTime(absl::RFC3339_full, at_text_, &t, &error)) {
        o_.at_micros = absl::ToUnixMicros(t);
      }
    }
    if (!exit_code && !ttl_text_.empty()) {
      absl::Duration d;
      if (absl::ParseDuration(ttl_text_, &d)) o_.token_ttl = d;
    }
    return exit_code;
  }
  // "timeline create", "lsn-at", ...
  std::string Chosen() const {
    std::string path = cli::CommandPath(cli::SelectedCommand(app_));
    return path.substr(std::string("pagectl").size() + 1);
  }
  const GlobalFlags& global() const { return g_; }
  const CommandOptions& options() const { return o_; }

 private:
  void Tenant(CLI::App* cmd) {
    cmd->add_option("--tenant", o_.tenant, "the tenant")->type_name("T")->required();
  }
  void Timeline(CLI::App* cmd) {
    cmd->add_option("--timeline", o_.timeline, "the timeline")->type_name("X")->required();
  }
  CLI::Option* At(CLI::App* cmd, const std::string& help) {
    return cmd->add_option("--at", at_text_, help)
        ->type_name("RFC3339")
        ->check(cli::Rfc3339Validator());
  }
  void Retention(CLI::App* cmd) {
    cmd->add_option("--history-seconds", o_.history_seconds, "keep N seconds readable")
        ->type_name("N");
    cmd->add_option("--history-bytes", o_.history_bytes, "keep N bytes of history readable")
        ->type_name("N");
  }

  CLI::App app_;
  GlobalFlags g_;
  CommandOptions o_;
  std::string at_text_;
  std::string ttl_text_;
};

absl::Status Dispatch(const CommandContext& ctx, const std::string& command) {
  std::string group = command.substr(0, command.find(' '));
  std::string verb = command.find(' ') == std::string::npos ? "" : command.substr(group.size() + 1);
  if (group == "tenant") return RunTenantCommand(ctx, verb);
  if (group == "timeline") return RunTimelineCommand(ctx, verb);
  if (group == "lsn-at") return RunLsnAtCommand(ctx);
  if (group == "import") return RunImportCommand(ctx);
  if (group == "export") return RunExportCommand(ctx);
  if (group == "maintenance") return RunMaintenanceCommand(ctx);
  if (group == "token") return RunTokenCommand(ctx, verb);
  return absl::InvalidArgumentError(absl::StrCat("unknown command \"", command, "\""));
}

int Run(int argc, char** argv) {
  PagectlCommandLine command_line;
  if (std::optional<int> exit_code = command_line.Parse(argc, argv)) return *exit_code;
  absl::StatusOr<ClientOptions> options = MakeClientOptions(command_line.global());
  absl::Status status = options.status();
  std::string address;
  if (status.ok()) {
    address = options->address;
    std::unique_ptr<Client> client = Client::Connect(*options);
    CommandContext ctx;
    ctx.options = &command_line.options();
    ctx.client = client.get();
    ctx.format =
        command_line.global().output == "json" ? OutputFormat::kJson : OutputFormat::kTable;
    ctx.quiet = command_line.global().quiet;
    ctx.out = &std::cout;
    status = Dispatch(ctx, command_line.Chosen());
  }
  std::cout.flush();
  if (status.ok()) return 0;
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
