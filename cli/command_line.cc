#include "cli/command_line.h"

#include <pplx/threadpool.h>

#include <cstdlib>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "cli/flags.h"
#include "cli/kube_target.h"
#include "cli/version.h"
#include "operator/model/duration.h"

namespace pgbranch::cli {
namespace {

constexpr char kUsage[] = R"(pgbranch: Git-style branches of PostgreSQL

usage: pgbranch [--state-dir D | --kube [--context C] [-n NS]] [-o table|json] COMMAND ...
       pgbranch COMMAND --help | pgbranch help COMMAND | pgbranch --version

local mode (state in --state-dir, else $PGBRANCH_HOME, else /var/lib/pgbranch):
  local up [--proxy-port P]      start pageserver, controller and proxy in the background
  local down                     suspend every compute and stop them
  local status                   what runs, where

resources (the same YAML as the Kubernetes CRDs, apiVersion pgbranch.io/v1alpha1):
  apply -f FILE|-                create or update Branch and Endpoint objects; prints
                                 created, configured or unchanged for each
  branch create NAME [--parent P] [--lsn L | --at RFC3339]
                [--ttl D | --expire-time RFC3339 | --no-expiry] [--protected]
                [--no-endpoint] [--suspend-timeout D] [--wait=false]
                                 a new branch (and a read-write endpoint of the same name);
                                 fails if NAME exists
  branch update NAME [--protected | --no-protected]
                [--ttl D | --expire-time RFC3339 | --no-expiry]
  branch list [--tree] | get NAME
                                 -o json for scripts; get shows endpoints and LSNs
  branch delete NAME             refused for protected branches and branches with children
  branch reset NAME              reset to the parent's head; connection strings keep working
  branch schema-diff NAME [--against OTHER] [--two-way] [--exit-code]
                                 schema changes, object by object (default: three-way
                                 against the parent at the branch point)
  branch promote NAME [--dry-run] [--file FILE.sql] [--check FILE.sql]...
                [--check-command CMD] [--allow-protected]
                [--restore-point-ttl D | --keep-restore-point]
                                 apply NAME's migration (the DDL run on it, or --file) to its
                                 parent: conflict check, rehearsal on a throwaway copy of the
                                 parent with your checks, restore point, then the parent
  branch restore NAME --to RESTORE_POINT [--keep-current-as KEPT] [--allow-protected]
                                 NAME's data back to its restore point (a child branch never
                                 written to, as promote takes); connection strings keep
                                 working; NAME's state before is kept as branch KEPT
  endpoint create NAME --branch B [--type read-write|read-only] [--lsn L | --at RFC3339]
                [--suspend-timeout D] [--wait=false]
  endpoint list | get NAME | delete NAME
  endpoint suspend NAME | start NAME
                                 stop the compute now | start it and wait until it runs
  connstr ENDPOINT               a postgresql:// URI to paste into psql

Kubernetes (the same commands on the cluster's Branch and Endpoint resources; used when
local mode is not running and a kubeconfig exists, or when asked; docs/cli-kubernetes.md):
  --kube                         the current kubeconfig context, even if local mode runs
  --context NAME                 this context of the kubeconfig (implies --kube)
  --kubeconfig FILE              this kubeconfig (default: $KUBECONFIG, else ~/.kube/config)
  -n, --namespace NS             the namespace (default: the context's, else default)
  --proxy-address HOST:PORT      connection strings through this address of the pgbranch
                                 proxy (a port-forward) instead of the Secret's host
  as a kubectl plugin: kubectl pgbranch branch create dev --parent main

durations: 90s, 15m, 1h30m, 7d
LSNs: as `branch get` shows them, 0/1A2B3C8 or the decimal number (pageserver LSNs, not
      PostgreSQL WAL positions; see docs/sizes-and-lsns.md)
)";

CLI::Validator DurationValidator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        absl::StatusOr<absl::Duration> d = control::ParseDuration(value);
        if (d.ok()) return "";
        return absl::StrCat("\"", value, "\" is not a duration (like 90s, 15m, 1h30m or 7d)");
      },
      "", "DURATION");
}

// An RFC 3339 time in the future (when a branch expires).
CLI::Validator FutureTimeValidator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        absl::Time t;
        std::string error;
        if (!absl::ParseTime(absl::RFC3339_full, value, &t, &error)) {
          return absl::StrCat("\"", value,
                              "\" is not an RFC 3339 time (like 2026-11-21T10:42:00Z): ", error);
        }
        if (t <= absl::Now()) {
          return absl::StrCat(value, " is in the past; give a time in the future, or --ttl D");
        }
        return "";
      },
      "", "FUTURE");
}

CLI::Option* Name(CLI::App* cmd, std::string* out, const std::string& what) {
  return cmd->add_option("NAME", *out, what)->required();
}

}  // namespace

CommandLine::CommandLine() : app_("", "pgbranch") {
  ConfigureApp(app_);
  app_.fallthrough();  // --state-dir and -o may come after the command too
  app_.set_version_flag("--version", "pgbranch " + Version(), "print the version and exit");
  app_.add_option("--state-dir", state_dir_,
                  "state directory (default: $PGBRANCH_HOME, else /var/lib/pgbranch)")
      ->type_name("D");
  app_.add_option("-o,--output", output_, "table (default) or json")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"table", "json"}));
  app_.add_flag("--kube", kube_.kube,
                "use the current kubeconfig context, even if local mode runs");
  app_.add_option("--context", kube_.context, "this kubeconfig context (implies --kube)")
      ->type_name("NAME");
  app_.add_option("--kubeconfig", kube_.kubeconfig, "this kubeconfig file (implies --kube)")
      ->type_name("FILE");
  app_.add_option("-n,--namespace", kube_.ns,
                  "Kubernetes namespace (implies --kube; default: the context's)")
      ->type_name("NS");
  app_.add_option("--proxy-address", proxy_address_,
                  "Kubernetes: connection strings through this address of the pgbranch proxy")
      ->type_name("HOST:PORT");
  DefineLocal();
  DefineBranch();
  DefineEndpoint();
  DefineOthers();
  // The top-level help is the hand-written overview (the README quotes it); every command's
  // own help comes from its definition below.
  usage_ = kUsage;
  app_.formatter_fn([this](const CLI::App*, std::string, CLI::AppFormatMode) { return usage_; });
  FinishCommands(&app_);
}

CLI::App* CommandLine::Command(CLI::App* parent, const std::string& name, const std::string& help,
                               Action action) {
  CLI::App* cmd = parent->add_subcommand(name, help);
  actions_[cmd] = std::move(action);
  return cmd;
}

void CommandLine::DefineLocal() {
  CLI::App* local = app_.add_subcommand("local", "run pgbranch on this machine");
  CLI::App* up = Command(local, "up", "start pageserver, controller and proxy in the background",
                         [this](const CliContext& ctx) { return LocalUp(ctx, local_up_); });
  up->add_option("--proxy-port", local_up_.proxy_port,
                 "the proxy's main port (default 55432; 0: the kernel picks one)")
      ->type_name("P")
      ->check(CLI::Range(0, 65535));
  up->add_flag("--test-clock", local_up_.test_clock,
               "let `pgbranch debug advance-clock` move the controller's clock (tests)");
  up->add_flag("!--no-tls", local_up_.tls,
               "the proxy speaks plain TCP (default: TLS with a CA of this state directory)");
  Command(local, "down", "suspend every compute and stop the daemons",
          [](const CliContext& ctx) { return LocalDown(ctx); });
  Command(local, "status", "what runs, where",
          [](const CliContext& ctx) { return LocalStatus(ctx); });
  // The controller process that `local up` starts.
  CLI::App* controller =
      Command(local, "controller", "run the local controller (internal)",
              [this](const CliContext& ctx) { return RunLocalController(ctx, local_controller_); });
  controller->group("");
  controller->add_option("--pageserver", local_controller_.pageserver, "host:port")->required();
  controller->add_flag("--test-clock", local_controller_.test_clock, "accept advance-clock");
  controller->add_option("--log-level", local_controller_.log_level, "debug, info or warning")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}));
}

void CommandLine::DefineBranch() {
  CLI::App* branch = app_.add_subcommand("branch", "branches: copy-on-write copies of a database");

  BranchCreateOptions& c = branch_create_;
  CLI::App* create =
      Command(branch, "create",
              "create a branch, and a read-write endpoint of the same name; fails if NAME exists "
              "(`pgbranch apply` or `branch update` change an existing branch)",
              [this](const CliContext& ctx) { return BranchCreate(ctx, branch_create_); });
  Name(create, &c.name, "the new branch's name");
  CLI::Option* parent =
      create->add_option("--parent", c.parent, "branch from P (default: a new, empty database)")
          ->type_name("P");
  CLI::Option* lsn =
      create
          ->add_option("--lsn", c.lsn,
                       "branch P as of this LSN of P (as `branch get P` shows it): 0/1A2B3C8 or "
                       "the decimal number")
          ->type_name("L")
          ->transform(LsnValidator())
          ->needs(parent);
  create->add_option("--at", c.at, "branch P as of this time, RFC 3339 (2026-11-21T10:42:00Z)")
      ->type_name("RFC3339")
      ->check(Rfc3339Validator())
      ->needs(parent)
      ->excludes(lsn);
  CLI::Option* ttl = create->add_option("--ttl", c.ttl, "delete the branch D after its creation")
                         ->type_name("D")
                         ->check(DurationValidator());
  CLI::Option* expire =
      create->add_option("--expire-time", c.expire_time, "delete the branch at this RFC 3339 time")
          ->type_name("RFC3339")
          ->check(FutureTimeValidator())
          ->excludes(ttl);
  create->add_flag("--no-expiry", c.no_expiry, "the branch never expires (the default)")
      ->excludes(ttl)
      ->excludes(expire);
  create->add_flag("--protected", c.protected_, "refuse delete and reset");
  CLI::Option* no_endpoint =
      create->add_flag("--no-endpoint", c.no_endpoint, "create no endpoint (no compute)");
  create
      ->add_option("--suspend-timeout", c.suspend_timeout,
                   "suspend the endpoint's compute after D without clients (default 5m; 0s: "
                   "never)")
      ->type_name("D")
      ->check(DurationValidator())
      ->excludes(no_endpoint);
  create->add_flag("--wait,!--no-wait", c.wait,
                   "wait until the branch is ready and its endpoint runs (default; --wait=false: "
                   "return once created, with a connection string that works at once: the "
                   "proxy holds the first client until the endpoint runs)");

  Command(branch, "list", "the branches (--tree: children under their parents)",
          [this](const CliContext& ctx) { return BranchList(ctx, tree_); })
      ->add_flag("--tree", tree_, "show the hierarchy, children under their parents");
  Name(Command(branch, "get", "a branch: LSNs, sizes, its endpoints and connection string",
               [this](const CliContext& ctx) { return BranchGet(ctx, name_); }),
       &name_, "the branch");
  Name(Command(branch, "delete",
               "delete a branch with its endpoints (refused for protected branches and branches "
               "with children)",
               [this](const CliContext& ctx) { return BranchDelete(ctx, name_); }),
       &name_, "the branch");
  Name(Command(branch, "reset",
               "reset a branch to its parent's head; connection strings keep working",
               [this](const CliContext& ctx) { return BranchReset(ctx, name_); }),
       &name_, "the branch");

  BranchUpdateOptions& u = branch_update_;
  CLI::App* update =
      Command(branch, "update", "change an existing branch's protection or expiration",
              [this](const CliContext& ctx) {
                if (update_protected_) branch_update_.protected_ = true;
                if (update_no_protected_) branch_update_.protected_ = false;
                return BranchUpdate(ctx, branch_update_);
              });
  Name(update, &u.name, "the branch");
  CLI::Option* prot = update->add_flag("--protected", update_protected_, "refuse delete and reset");
  update->add_flag("--no-protected", update_no_protected_, "allow delete and reset again")
      ->excludes(prot);
  CLI::Option* uttl = update->add_option("--ttl", u.ttl, "expire D after the branch's creation")
                          ->type_name("D")
                          ->check(DurationValidator());
  CLI::Option* uexpire =
      update->add_option("--expire-time", u.expire_time, "expire at this RFC 3339 time")
          ->type_name("RFC3339")
          ->check(FutureTimeValidator())
          ->excludes(uttl);
  update->add_flag("--no-expiry", u.no_expiry, "never expire")->excludes(uttl)->excludes(uexpire);
  update->callback([this] {
    if (!update_protected_ && !update_no_protected_ && branch_update_.ttl.empty() &&
        branch_update_.expire_time.empty() && !branch_update_.no_expiry) {
      throw CLI::ValidationError(
          "nothing to change: give --protected, --no-protected, --ttl, --expire-time or "
          "--no-expiry");
    }
  });

  SchemaDiffOptions& d = schema_diff_;
  CLI::App* diff = Command(
      branch, "schema-diff",
      "schema changes, object by object; by default three-way against the parent at the branch "
      "point (changes on the branch, drift on the parent since, conflicts)",
      [this](const CliContext& ctx) -> absl::Status {
        absl::StatusOr<bool> differs = SchemaDiff(ctx, schema_diff_);
        if (!differs.ok()) return differs.status();
        if (*differs && schema_diff_.exit_code) exit_code_ = 1;
        return absl::OkStatus();
      });
  Name(diff, &d.branch, "the branch");
  diff->add_option("--against", d.against, "compare two-way with OTHER's current schema")
      ->type_name("OTHER");
  diff->add_flag("--two-way", d.two_way, "against the parent's current schema only");
  diff->add_flag("--exit-code", d.exit_code, "exit 1 when there are differences (CI gates)");

  PromoteOptions& p = promote_;
  CLI::App* promote = Command(
      branch, "promote",
      "apply a branch's migration (the DDL run on it since it branched, or --file) to its parent: "
      "checked for conflicts, rehearsed on a throwaway copy of the parent with your checks, then "
      "applied after a restore point (docs/promotion.md)",
      [this](const CliContext& ctx) { return BranchPromote(ctx, promote_); });
  Name(promote, &p.branch, "the branch whose changes go to its parent");
  promote->add_flag("--dry-run", p.dry_run, "rehearse only: the parent is not touched");
  promote
      ->add_option("--file", p.file,
                   "promote this SQL script instead of the captured DDL (for data changes such "
                   "as backfills, which are not captured)")
      ->type_name("FILE.sql");
  promote
      ->add_option("--check", p.checks,
                   "a SQL file run on the rehearsal after the migration; it fails on an error or "
                   "when its last query returns false (repeatable)")
      ->type_name("FILE.sql");
  promote
      ->add_option("--check-command", p.check_command,
                   "a shell command run after the migration with the rehearsal's connection "
                   "string in PGBRANCH_REHEARSAL_URI and DATABASE_URL; fails on a non-zero exit")
      ->type_name("CMD");
  CLI::Option* allow =
      promote->add_flag("--allow-protected", p.allow_protected, "promote into a protected parent");
  CLI::Option* rp_ttl = promote
                            ->add_option("--restore-point-ttl", p.restore_point_ttl,
                                         "the parent's restore point expires after D (default 7d)")
                            ->type_name("D")
                            ->check(DurationValidator());
  promote
      ->add_flag("--keep-restore-point", p.keep_restore_point,
                 "the restore point is protected and never expires (delete it by hand)")
      ->excludes(rp_ttl);
  RestoreOptions& r = restore_;
  CLI::App* restore = Command(
      branch, "restore",
      "reset a branch's data to a restore point of it (a child branch never written to, such as "
      "the one `branch promote` takes); its endpoints and connection strings stay; its state "
      "before is kept as a branch (docs/promotion.md)",
      [this](const CliContext& ctx) { return BranchRestore(ctx, restore_); });
  Name(restore, &r.parent, "the branch to restore");
  restore->add_option("--to", r.to, "the restore point")->type_name("RESTORE_POINT")->required();
  restore
      ->add_option("--keep-current-as", r.keep_current_as,
                   "the branch that keeps the state before the restore (default "
                   "NAME-before-restore-YYYYMMDD-HHMMSS)")
      ->type_name("KEPT");
  restore->add_flag("--allow-protected", r.allow_protected, "restore a protected branch");
  promote->callback([this, allow] {
    if (promote_.dry_run && allow->count() > 0) {
      throw CLI::ValidationError(
          "--allow-protected has no use with --dry-run (it changes nothing)");
    }
  });
}

void CommandLine::DefineEndpoint() {
  CLI::App* endpoint =
      app_.add_subcommand("endpoint", "endpoints: a branch's PostgreSQL, started on demand");
  EndpointCreateOptions& e = endpoint_create_;
  CLI::App* create =
      Command(endpoint, "create",
              "create an endpoint and wait until it runs; fails if NAME exists. A branch has one "
              "read-write endpoint; read-only ones are unlimited",
              [this](const CliContext& ctx) { return EndpointCreate(ctx, endpoint_create_); });
  Name(create, &e.name, "the new endpoint's name");
  create->add_option("--branch", e.branch, "the branch it serves")->type_name("B")->required();
  create->add_option("--type", e.type, "read-write (the default; one per branch) or read-only")
      ->type_name("TYPE")
      ->check(CLI::IsMember({"read-write", "read-only"}));
  CLI::Option* lsn =
      create->add_option("--lsn", e.lsn, "read-only at this LSN: 0/1A2B3C8 or the decimal number")
          ->type_name("L")
          ->transform(LsnValidator());
  create->add_option("--at", e.at, "read-only as of this RFC 3339 time")
      ->type_name("RFC3339")
      ->check(Rfc3339Validator())
      ->excludes(lsn);
  create
      ->add_option("--suspend-timeout", e.suspend_timeout,
                   "suspend the compute after D without clients (default 5m; 0s: never)")
      ->type_name("D")
      ->check(DurationValidator());
  create->add_flag("--wait,!--no-wait", e.wait,
                   "wait until the endpoint runs (default; --wait=false: return once created)");
  create->callback([this] {
    if ((endpoint_create_.lsn || !endpoint_create_.at.empty()) &&
        endpoint_create_.type != "read-only") {
      throw CLI::ValidationError(
          "--lsn and --at need --type read-only (a read-write endpoint writes at the head)");
    }
  });

  Command(endpoint, "list", "the endpoints",
          [](const CliContext& ctx) { return EndpointList(ctx); });
  Name(Command(endpoint, "get", "an endpoint",
               [this](const CliContext& ctx) { return EndpointGet(ctx, name_); }),
       &name_, "the endpoint");
  Name(Command(endpoint, "delete", "delete an endpoint (its branch stays)",
               [this](const CliContext& ctx) { return EndpointDelete(ctx, name_); }),
       &name_, "the endpoint");
  Name(Command(endpoint, "suspend", "stop the endpoint's compute now; the next connection wakes it",
               [this](const CliContext& ctx) { return EndpointSuspend(ctx, name_); }),
       &name_, "the endpoint");
  Name(Command(endpoint, "start",
               "start the endpoint's compute and wait until it runs; prints the connection "
               "string",
               [this](const CliContext& ctx) { return EndpointStart(ctx, name_); }),
       &name_, "the endpoint");
}

void CommandLine::DefineOthers() {
  Command(&app_, "apply",
          "create or update Branch and Endpoint objects from YAML or JSON manifests",
          [this](const CliContext& ctx) { return RunApply(ctx, apply_file_); })
      ->add_option("-f,--filename", apply_file_, "the manifests; - reads standard input")
      ->type_name("FILE")
      ->required();
  Command(&app_, "connstr", "an endpoint's postgresql:// URI (-o json: its parts)",
          [this](const CliContext& ctx) { return RunConnstr(ctx, name_); })
      ->add_option("ENDPOINT", name_, "the endpoint")
      ->required();
  CLI::App* debug = app_.add_subcommand("debug", "test helpers");
  debug->group("");
  Command(debug, "advance-clock", "move the test clock (local up --test-clock) forward",
          [this](const CliContext& ctx) { return AdvanceClock(ctx, advance_by_); })
      ->add_option("DURATION", advance_by_, "how far")
      ->required()
      ->check(DurationValidator());
  CLI::App* help = Command(&app_, "help", "help on a command: pgbranch help branch create",
                           [this](const CliContext&) { return Help(); });
  // Parse() reads the words after `help` itself: they name commands, they do not run them.
  help->add_option("COMMAND", help_words_, "a command, like: branch create");
}

absl::Status CommandLine::Help() {
  const CLI::App* cmd = &app_;
  for (const std::string& word : help_words_) {
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : cmd->get_subcommands({})) {
      if (sub->get_name() == word) next = sub;
    }
    if (next == nullptr) {
      exit_code_ = 2;
      return absl::InvalidArgumentError(absl::StrCat("no command \"", word, "\" in `",
                                                     CommandPath(cmd), "`; see `pgbranch --help`"));
    }
    cmd = next;
  }
  std::cout << HelpText(cmd);
  return absl::OkStatus();
}

std::optional<int> CommandLine::Parse(int argc, const char* const* argv) {
  // Run as kubectl-pgbranch (`kubectl pgbranch ...`): a kubectl plugin, Kubernetes by default.
  if (argc > 0 && absl::StartsWith(std::string(argv[0]).substr(std::string(argv[0]).rfind('/') + 1),
                                   "kubectl-pgbranch")) {
    kube_.plugin = true;
    app_.name("kubectl pgbranch");
    usage_ = absl::StrReplaceAll(kUsage, {{" pgbranch ", " kubectl pgbranch "}});
    usage_ =
        absl::StrReplaceAll(absl::StrCat("kubectl ", usage_), {{"kubectl kubectl", "kubectl"}});
  }
  // `help` is the first word that is no global flag (--state-dir D, -o F) or flag value.
  int first = 1;
  while (first < argc && argv[first][0] == '-') {
    std::string flag = argv[first];
    bool takes_value = (flag == "--state-dir" || flag == "-o" || flag == "--output" ||
                        flag == "--context" || flag == "--kubeconfig" || flag == "-n" ||
                        flag == "--namespace" || flag == "--proxy-address");
    first += takes_value ? 2 : 1;
  }
  if (first < argc && std::string(argv[first]) == "help") {
    help_words_.assign(argv + first + 1, argv + argc);
    absl::Status s = Help();
    if (s.ok()) return 0;
    std::cerr << app_.get_name() << ": " << s.message() << "\n";
    return 2;
  }
  return ParseCommandLine(app_, argc, argv);
}

absl::Status CommandLine::ChooseBackendFor(const CLI::App* command, CliContext* ctx) {
  // `local ...` runs local mode itself, whatever the flags say.
  for (const CLI::App* a = command; a != nullptr; a = a->get_parent()) {
    if (a->get_parent() == &app_ && a->get_name() == "local") return absl::OkStatus();
  }
  const char* home = std::getenv("PGBRANCH_HOME");
  const bool state_dir_named = !state_dir_.empty() || (home != nullptr && *home != '\0');
  absl::StatusOr<BackendChoice> choice = ChooseBackend(kube_, ctx->state_dir(), state_dir_named);
  if (!choice.ok()) return choice.status();
  if (!choice->kube) {
    if (!proxy_address_.empty()) {
      return absl::InvalidArgumentError(
          "--proxy-address is for Kubernetes; local mode prints its own connection strings");
    }
    return absl::OkStatus();
  }
  if (choice->automatic && !ctx->json()) {
    // Said once, so that nobody changes a cluster believing they work locally.
    std::cerr << app_.get_name() << ": local mode is not running (" << ctx->state_dir()
              << "); using Kubernetes: " << choice->kube->where() << ", namespace "
              << choice->kube->ns() << "\n";
  }
  ctx->SetKube(choice->kube);
  ctx->SetProxyAddress(proxy_address_);
  return absl::OkStatus();
}

std::string CommandLine::Chosen() const {
  std::string path = CommandPath(SelectedCommand(app_));
  return path.size() > app_.get_name().size() ? path.substr(app_.get_name().size() + 1) : "";
}

namespace {

// cpprestsdk starts a pool of 40 threads at its first request; a command makes a few requests,
// one at a time, and its process start is on a new branch's path (creating and tearing down 40
// threads was ~a tenth of the CLI's CPU). The local controller (a long-running server in this
// binary) keeps the default.
void SizeHttpThreadPool(const CLI::App* command) {
  const bool controller = command->get_name() == "controller" && command->get_parent() != nullptr &&
                          command->get_parent()->get_name() == "local";
  if (controller) return;
  try {
    crossplat::threadpool::initialize_with_threads(2);
  } catch (const std::exception&) {
    // Already started: keep it.
  }
}

}  // namespace

int CommandLine::Run() {
  auto it = actions_.find(SelectedCommand(app_));
  if (it == actions_.end()) return 2;  // Parse() printed the usage
  SizeHttpThreadPool(it->first);
  absl::Status s;
  if (it->first->get_name() == "help") {
    s = it->second(CliContext());
  } else {
    absl::StatusOr<CliContext> ctx = CliContext::Create(state_dir_, output_ == "json");
    if (ctx.ok()) s = ChooseBackendFor(it->first, &*ctx);
    if (!ctx.ok()) {
      s = ctx.status();
    } else if (s.ok()) {
      s = it->second(*ctx);
    }
  }
  std::cout.flush();
  if (s.ok()) return exit_code_;
  std::cerr << app_.get_name() << ": " << s.message() << "\n";
  return exit_code_ != 0 ? exit_code_ : 1;
}

}  // namespace pgbranch::cli
