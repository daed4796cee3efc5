#include "cli/version.h"

namespace pgbranch::cli {

std::string Version() {
  std::string v = PGBRANCH_VERSION;
  std::string git = PGBRANCH_GIT_DESCRIBE;
  return git.empty() ? v : v + " (git " + git + ")";
}

}  // namespace pgbranch::cli
