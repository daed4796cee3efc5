#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

// Command-line parsing shared by pgbranch, pagectl, pagefs and pgbranch-proxy (CLI11), so that
// subcommands, help, validation and errors behave the same in all four:
//   - the whole command line is parsed and validated before a command does anything;
//   - a usage error is one line "TOOL: WHAT" plus "run `TOOL SUBCOMMAND --help`", exit 2;
//   - --help after any subcommand prints that subcommand's help to stdout, exit 0.
namespace pgbranch::cli {

// The house style of a new app: "usage:" help layout; call before adding subcommands (they
// inherit it).
void ConfigureApp(CLI::App& app);

// Gives every subcommand the house's help flag and group names (ParseCommandLine does it too).
void FinishCommands(CLI::App* app);

// Parses argv into `app`. nullopt: run the command. Otherwise the process exit code: 0 after
// printing help or the version, 2 after printing a usage error.
std::optional<int> ParseCommandLine(CLI::App& app, int argc, const char* const* argv);

// The deepest subcommand chosen on the command line (`app` itself if none).
const CLI::App* SelectedCommand(const CLI::App& app);
// "pgbranch branch create": the names from the root down to `app`.
std::string CommandPath(const CLI::App* app);
// The help text of `app` as `TOOL ... --help` prints it.
std::string HelpText(const CLI::App* app);

// Validators for option values; the error names the flag ("--lsn: ...").
CLI::Validator LsnValidator();      // PostgreSQL's X/Y or decimal; converts to decimal
CLI::Validator Rfc3339Validator();  // 2026-11-21T10:42:00Z

}  // namespace pgbranch::cli
