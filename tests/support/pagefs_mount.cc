#include "tests/support/pagefs_mount.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/support/pageserver_process.h"

namespace pgbranch::testing {

PagefsMount::PagefsMount(Options options) : options_(std::move(options)) {}

PagefsMount::~PagefsMount() {
  if (pid_ > 0) {
    if (Unmount() < 0) Kill();
  }
}

bool PagefsMount::IsMounted() const {
  std::ifstream in("/proc/self/mounts");
  std::string dev, dir, type, rest;
  std::string target = std::filesystem::weakly_canonical(options_.mountpoint).string();
  while (in >> dev >> dir >> type) {
    std::getline(in, rest);
    if (dir == target && type == "fuse.pagefs") return true;
  }
  return false;
}

absl::Status PagefsMount::Mount() {
  std::filesystem::create_directories(options_.mountpoint);
  std::vector<std::string> args = {PageserverProcess::BinDir() + "/pagefs",
                                   "--pageserver",
                                   options_.pageserver,
                                   "--tenant",
                                   options_.tenant,
                                   "--timeline",
                                   options_.timeline,
                                   "--foreground",
                                   "--log-level",
                                   "warning"};
  if (options_.read_only) {
    args.push_back("--read-only");
    if (options_.lsn != 0) args.insert(args.end(), {"--lsn", std::to_string(options_.lsn)});
    if (!options_.at.empty()) args.insert(args.end(), {"--at", options_.at});
  }
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  args.push_back(options_.mountpoint);
  pid_ = SpawnChild(args);
  if (pid_ < 0) return absl::InternalError("fork failed");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrCat("pagefs exited before mounting (status ", status, ")"));
    }
    if (IsMounted()) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  Kill();
  return absl::DeadlineExceededError("pagefs did not mount within 30 s");
}

int PagefsMount::Wait() {
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int PagefsMount::Unmount() {
  if (pid_ <= 0) return -1;
  std::string cmd = "fusermount3 -u '" + options_.mountpoint + "' 2>/dev/null";
  for (int i = 0; i < 100; ++i) {
    if (system(cmd.c_str()) == 0) return Wait();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // busy: retry
  }
  return -1;
}

int PagefsMount::Terminate() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  return Wait();
}

void PagefsMount::Kill() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    Wait();
  }
  std::string cmd = "fusermount3 -uz '" + options_.mountpoint + "' 2>/dev/null";
  if (system(cmd.c_str()) != 0) {
    // Nothing was mounted.
  }
}

}  // namespace pgbranch::testing
