#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "cli/cli_context.h"
#include "cli/kube_target.h"
#include "cli/local_commands.h"
#include "cli/promote_command.h"
#include "cli/resource_commands.h"
#include "cli/restore_command.h"
#include "cli/schema_diff.h"

// pgbranch's commands and flags (CLI11). Parse() reads and validates the whole command line
// before Run() does anything: an unknown flag or a bad value changes nothing.
namespace pgbranch::cli {

class CommandLine {
 public:
  CommandLine();
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  // nullopt: Run() the chosen command. Otherwise the exit code (help, version, usage error).
  std::optional<int> Parse(int argc, const char* const* argv);
  // Runs the command Parse() chose; prints its error; returns the exit code.
  int Run();

  // For tests: the options Parse() filled in.
  const BranchCreateOptions& branch_create() const { return branch_create_; }
  const EndpointCreateOptions& endpoint_create() const { return endpoint_create_; }
  const BranchUpdateOptions& branch_update() const { return branch_update_; }
  const PromoteOptions& promote() const { return promote_; }
  const RestoreOptions& restore() const { return restore_; }
  // "branch create": the chosen command's path below `pgbranch`.
  std::string Chosen() const;
  const KubeFlags& kube_flags() const { return kube_; }

 private:
  using Action = std::function<absl::Status(const CliContext&)>;

  void DefineLocal();
  void DefineBranch();
  void DefineEndpoint();
  void DefineOthers();
  // A command that runs `action` when chosen.
  // `pgbranch help [COMMAND...]`.
  absl::Status Help();
  CLI::App* Command(CLI::App* parent, const std::string& name, const std::string& help,
                    Action action);
  // Local controller or Kubernetes cluster for `command` (cli/kube_target.h); sets up `ctx`.
  absl::Status ChooseBackendFor(const CLI::App* command, CliContext* ctx);

  CLI::App app_;
  std::string state_dir_;
  std::string output_ = "table";
  std::string usage_;  // the top-level help (`kubectl pgbranch` under the plugin's name)
  KubeFlags kube_;
  std::string proxy_address_;
  std::map<const CLI::App*, Action> actions_;
  int exit_code_ = 0;  // set by a command that exits non-zero without an error (schema-diff)

  // Filled in by Parse().
  std::string name_;  // the NAME of get/delete/reset/suspend/start/connstr
  std::string apply_file_;
  bool tree_ = false;
  std::string advance_by_;
  std::vector<std::string> help_words_;
  LocalUpOptions local_up_;
  LocalControllerOptions local_controller_;
  BranchCreateOptions branch_create_;
  BranchUpdateOptions branch_update_;
  bool update_protected_ = false, update_no_protected_ = false;
  EndpointCreateOptions endpoint_create_;
  SchemaDiffOptions schema_diff_;
  PromoteOptions promote_;
  RestoreOptions restore_;
};

}  // namespace pgbranch::cli
