#pragma once

#include <string>
#include <vector>

// The user's checks of a rehearsal: SQL files run on a fresh connection (a check fails when it
// raises an error, or when its last statement returns exactly one value and that value is
// false), and a shell command with the rehearsal's connection string in its environment
// (PGBRANCH_REHEARSAL_URI and DATABASE_URL; it fails on a non-zero exit).
namespace pgbranch::cli {

struct CheckResult {
  std::string name;  // the file, or "command: CMD"
  bool passed = false;
  std::string output;  // why it failed: the server's error, or the command's last lines
};

CheckResult RunSqlCheck(const std::string& uri, const std::string& file);
CheckResult RunCommandCheck(const std::string& uri, const std::string& command);

}  // namespace pgbranch::cli
