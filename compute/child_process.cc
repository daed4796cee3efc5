#include "compute/child_process.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

extern char** environ;

namespace pgbranch::compute {
namespace {

// Closes every descriptor >= 3 so children inherit neither the HTTP listener (which would keep
// its port bound after the agent exits) nor libpq sockets.
// `first`: the lowest descriptor closed.
void CloseInheritedFds(int first) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, static_cast<unsigned>(first), ~0U, 0U) == 0) return;
#endif
  long max = sysconf(_SC_OPEN_MAX);
  for (int fd = first; fd < (max > 0 ? max : 1024); ++fd) close(fd);
}

}  // namespace

ChildProcess::ChildProcess(ChildProcess&& other) noexcept { *this = std::move(other); }

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (running()) {
      Signal(SIGKILL);
      WaitFor(std::chrono::seconds(10));
    }
    pid_ = other.pid_;
    exited_ = other.exited_;
    exit_code_ = other.exit_code_;
    wait_status_ = other.wait_status_;
    other.pid_ = -1;
    other.exited_ = false;
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (running()) {
    Signal(SIGKILL);
    WaitFor(std::chrono::seconds(10));
  }
}

absl::StatusOr<ChildProcess> ChildProcess::Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("empty argv");
  // Everything the child needs, before fork().
  std::vector<std::string> argv_storage = options.argv;
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage = options.env;
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  char** child_env = options.env.empty() ? environ : envp.data();

  int out_fd = -1;
  if (!options.output_path.empty()) {
    out_fd = open(options.output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out_fd < 0) {
      return absl::InternalError(absl::StrCat("open ", options.output_path, ": ", strerror(errno)));
    }
    if (options.user != nullptr && fchown(out_fd, options.user->uid, options.user->gid) != 0) {
      // Not fatal: the descriptor is opened by the agent either way.
    }
  }
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  const OsUser* user = options.user;
  int death_signal = options.parent_death_signal;
  bool new_session = options.new_session;
  pid_t parent = getpid();
  int pass_fd = options.pass_fd;

  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    if (out_fd >= 0) close(out_fd);
    if (devnull >= 0) close(devnull);
    return absl::InternalError(absl::StrCat("fork: ", strerror(err)));
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    if (new_session) {
      setsid();
    } else {
      setpgid(0, 0);
    }
    if (user != nullptr) {
      if (setgroups(user->groups.size(), user->groups.data()) != 0 || setgid(user->gid) != 0 ||
          setuid(user->uid) != 0) {
        _exit(126);
      }
    }
    if (death_signal != 0) {
      prctl(PR_SET_PDEATHSIG, death_signal);
      if (getppid() != parent) _exit(125);
    }
    if (chdir("/") != 0) _exit(124);
    dup2(devnull, 0);
    dup2(out_fd >= 0 ? out_fd : devnull, 1);
    dup2(out_fd >= 0 ? out_fd : devnull, 2);
    if (pass_fd >= 0) {
      // dup2 clears close-on-exec on the copy; a descriptor already 3 keeps its flags.
      if (pass_fd == 3) {
        fcntl(3, F_SETFD, 0);
      } else if (dup2(pass_fd, 3) != 3) {
        _exit(123);
      }
    }
    CloseInheritedFds(pass_fd >= 0 ? 4 : 3);
    // The agent blocks its signals and ignores SIGPIPE; both would be inherited across exec.
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, nullptr);
    signal(SIGPIPE, SIG_DFL);
    execve(argv[0], argv.data(), child_env);
    _exit(127);
  }
  if (out_fd >= 0) close(out_fd);
  if (devnull >= 0) close(devnull);
  ChildProcess child;
  child.pid_ = pid;
  return child;
}

bool ChildProcess::Poll() {
  if (pid_ <= 0 || exited_) return exited_;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exited_ = true;
    wait_status_ = status;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  } else if (r < 0 && errno == ECHILD) {
    exited_ = true;  // reaped elsewhere: nothing more to learn
    exit_code_ = -1;
  }
  return exited_;
}

bool ChildProcess::WaitFor(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!Poll()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

void ChildProcess::Signal(int sig) {
  if (running()) kill(pid_, sig);
}

std::string ChildProcess::DescribeExit() const {
  if (!exited_) return "running";
  if (WIFSIGNALED(wait_status_)) {
    return absl::StrCat("killed by signal ", WTERMSIG(wait_status_));
  }
  if (exit_code_ == 127) return "exit code 127 (could not execute the binary)";
  if (exit_code_ == 126) return "exit code 126 (could not switch to the postgres user)";
  return absl::StrCat("exit code ", exit_code_);
}

absl::StatusOr<ChildProcess> RunToCompletion(const SpawnOptions& options,
                                             std::chrono::milliseconds timeout) {
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(options);
  if (!child.ok()) return child.status();
  if (!child->WaitFor(timeout)) {
    child->Signal(SIGKILL);
    child->WaitFor(std::chrono::seconds(10));
    return absl::DeadlineExceededError(
        absl::StrCat(options.argv[0], " did not finish within ",
                     std::chrono::duration_cast<std::chrono::seconds>(timeout).count(), " s"));
  }
  return child;
}

std::string TailOfFile(const std::string& path, int max_lines, off_t offset) {
  std::ifstream in(path);
  if (!in) return "";
  if (offset > 0) in.seekg(offset);
  std::deque<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    lines.push_back(line);
    if (static_cast<int>(lines.size()) > max_lines) lines.pop_front();
  }
  return absl::StrJoin(lines, "\n");
}

std::string FileNextToExecutable(const std::string& name) {
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  std::filesystem::path file = exe.parent_path() / name;
  return std::filesystem::exists(file, ec) ? file.string() : "";
}

}  // namespace pgbranch::compute
