// pgbranch: the CLI (DESIGN.md section 5). Local mode today; the same commands will drive the
// Kubernetes API when pointed at a cluster. The commands and flags: cli/command_line.cc.
#include "cli/command_line.h"

int main(int argc, char** argv) {
  pgbranch::cli::CommandLine command_line;
  if (std::optional<int> exit_code = command_line.Parse(argc, argv)) return *exit_code;
  return command_line.Run();
}
