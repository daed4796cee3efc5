#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "compute/child_process.h"

// A pagefs started ahead of its mount: `pagefs --spare DIR <blanks>`, exec'd, dynamically linked
// and through its static initialisation, blocked reading its descriptor 3 (one end of a socket
// pair).
//
// A spare compute agent (compute/main.cc, --spare-under) starts one while it waits for its
// configuration, so that a new branch's mount does not wait for pagefs's exec and the linking of
// gRPC, protobuf and libfuse (~5-10 ms of a start on 2 vCPUs). The mount hands it its log file
// and arguments (Hand) and closes the socket; pagefs then runs exactly as if started with them.
// A spare that is never handed anything reads the end of its socket when the agent closes it or
// dies, and exits 0 (and its parent-death signal is SIGTERM besides).
//
// Invariant: after Hand (whatever its outcome) the spare is used up: an error means the spare was
// stopped and the caller starts pagefs itself.
namespace pgbranch::compute {

class SparePagefs {
 public:
  // Starts `bin --spare DIR` (output to /dev/null until it is handed a log). DIR, the spare
  // agent's, only names the process's owner on its command line (local mode finds the processes
  // of a state directory by their command lines).
  static absl::StatusOr<SparePagefs> Start(const std::string& bin, const std::string& dir);
  // Bytes of blanks the spare's command line holds for the arguments it will be handed.
  static constexpr size_t kCommandLineRoom = 4096;

  SparePagefs(SparePagefs&& other) noexcept;
  SparePagefs& operator=(SparePagefs&& other) noexcept;
  SparePagefs(const SparePagefs&) = delete;
  SparePagefs& operator=(const SparePagefs&) = delete;
  // Closes the socket (the spare exits) and reaps it.
  ~SparePagefs();

  const std::string& bin() const { return bin_; }

  // Sends LOG and `args` (argv without argv[0]) and closes the socket: the process, from now on
  // a pagefs running with those arguments and appending its output to `log`.
  absl::StatusOr<ChildProcess> Hand(const std::string& log, const std::vector<std::string>& args);

 private:
  SparePagefs() = default;
  void Close();

  std::string bin_;
  int fd_ = -1;
  ChildProcess child_;
};

}  // namespace pgbranch::compute
