// pgbranch: the CLI (DESIGN.md section 5). Local mode today; the same commands will drive the
// Kubernetes API when pointed at a cluster. The commands and flags: cli/command_line.cc.
#include <cstdio>
#include <cstdlib>

#include "cli/command_line.h"

int main(int argc, char** argv) {
  int code;
  {
    pgbranch::cli::CommandLine command_line;
    std::optional<int> parsed = command_line.Parse(argc, argv);
    code = parsed ? *parsed : command_line.Run();
  }
  // Leaves without running the exit handlers. cpprestsdk joins its thread pool in a static
  // destructor, while a pool thread may still be freeing an HTTP client's TLS context in
  // OpenSSL, whose own exit handler (registered earlier, so run earlier) has torn down the locks
  // it needs: the process then never exits (seen as `pgbranch branch list` hanging against an
  // unreachable API server). Everything the command wrote is flushed here; files it wrote were
  // closed when their scopes ended.
  std::fflush(nullptr);
  std::_Exit(code);
}
