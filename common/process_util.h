#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

// Small process and file helpers of local mode.
namespace pgbranch::cli {

// The whole file, or "" if it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

// Starts argv[0] (a path) in a session of its own, stdin from /dev/null (or `stdin_fd` when it
// is not -1), stdout and stderr appended to `log`, no other file descriptors. With `daemon`, a
// second fork makes the program nobody's child (nothing needs to reap it) and the returned pid
// is 0; otherwise the child's pid is returned and the caller reaps it.
absl::StatusOr<pid_t> SpawnDetached(const std::vector<std::string>& argv, const std::string& log,
                                    bool daemon, int stdin_fd = -1);

// Whether `pid` names a live process.
bool ProcessAlive(pid_t pid);

// The pid of the first process whose command line holds `args` consecutively, 0 if none.
pid_t PidWithArgs(const std::vector<std::string>& args);
// PidWithArgs of each entry of `args_list`, in order, from one read of every process's command
// line (a pass over /proc costs a read of each process's cmdline, whatever is looked for).
std::vector<pid_t> PidsWithArgs(const std::vector<std::vector<std::string>>& args_list);

// Every process whose command line (arguments joined by spaces) contains `needle`, except this
// process.
std::vector<pid_t> PidsWithCommandLine(const std::string& needle);

// The command line of `pid`, arguments joined by spaces ("" if it is gone).
std::string CommandLine(pid_t pid);

// Waits up to `seconds` for `pid` to exit; whether it did.
bool WaitProcessGone(pid_t pid, double seconds);

// Mount points (from /proc/mounts, unescaped) that are `dir` or below it.
std::vector<std::string> MountsUnder(const std::string& dir);

}  // namespace pgbranch::cli
