#include "common/process_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace pgbranch::cli {

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

absl::StatusOr<pid_t> SpawnDetached(const std::vector<std::string>& argv, const std::string& log,
                                    bool daemon, int stdin_fd) {
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError(std::string("fork failed: ") + strerror(errno));
  if (pid == 0) {
    ::setsid();  // a stray signal to our process group does not reach it
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int in = stdin_fd >= 0 ? stdin_fd : ::open("/dev/null", O_RDONLY);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    if (in >= 0) ::dup2(in, 0);
    // One call instead of ~1,000 on the controller's spawn of a compute (a branch's path).
    bool closed = false;
#ifdef SYS_close_range
    closed = ::syscall(SYS_close_range, 3U, ~0U, 0U) == 0;
#endif
    for (int i = 3; !closed && i < 1024; ++i) ::close(i);
    if (daemon) {
      pid_t inner = ::fork();
      if (inner != 0) ::_exit(inner < 0 ? 1 : 0);
    }
    ::execv(cargv[0], cargv.data());
    dprintf(2, "cannot run %s: %s\n", cargv[0], strerror(errno));
    ::_exit(127);
  }
  if (!daemon) return pid;
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError("cannot start " + argv[0]);
  }
  return 0;
}

bool ProcessAlive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

pid_t PidWithArgs(const std::vector<std::string>& args) { return PidsWithArgs({args})[0]; }

std::vector<pid_t> PidsWithArgs(const std::vector<std::vector<std::string>>& args_list) {
  std::vector<std::string> needles;
  for (const auto& args : args_list) {
    std::string needle;
    for (const auto& a : args) needle += a + std::string(1, '\0');
    needles.push_back(std::move(needle));
  }
  std::vector<pid_t> pids(args_list.size(), 0);
  size_t missing = pids.size();
  std::error_code ec;
  for (const auto& p : std::filesystem::directory_iterator("/proc", ec)) {
    if (missing == 0) break;
    std::string name = p.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    const std::string cmdline = ReadFileOrEmpty((p.path() / "cmdline").string());
    for (size_t i = 0; i < needles.size(); ++i) {
      if (pids[i] == 0 && cmdline.find(needles[i]) != std::string::npos) {
        pids[i] = std::atoi(name.c_str());
        --missing;
      }
    }
  }
  return pids;
}

std::string CommandLine(pid_t pid) {
  std::string cmd = ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/cmdline");
  while (!cmd.empty() && cmd.back() == '\0') cmd.pop_back();
  for (char& c : cmd) {
    if (c == '\0') c = ' ';
  }
  return cmd;
}

std::vector<pid_t> PidsWithCommandLine(const std::string& needle) {
  std::vector<pid_t> out;
  const pid_t self = ::getpid();
  std::error_code ec;
  for (const auto& p : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = p.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    pid_t pid = std::atoi(name.c_str());
    if (pid == self) continue;
    if (CommandLine(pid).find(needle) != std::string::npos) out.push_back(pid);
  }
  return out;
}

bool WaitProcessGone(pid_t pid, double seconds) {
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<int>(seconds * 1000));
  while (ProcessAlive(pid)) {
    // A zombie child of ours counts as gone once reaped; reap it if it is ours.
    ::waitpid(pid, nullptr, WNOHANG);
    if (!ProcessAlive(pid)) break;
    // A zombie of someone else's is gone for our purposes.
    std::string stat = ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/stat");
    size_t close = stat.rfind(')');
    if (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z') break;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

std::vector<std::string> MountsUnder(const std::string& dir) {
  // /proc/mounts escapes space, tab, newline and backslash as \ooo.
  auto unescape = [](const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7') {
        out.push_back(
            static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
        i += 3;
      } else {
        out.push_back(s[i]);
      }
    }
    return out;
  };
  std::vector<std::string> out;
  std::ifstream in("/proc/mounts");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string dev, mnt;
    if (!(fields >> dev >> mnt)) continue;
    mnt = unescape(mnt);
    if (mnt == dir || mnt.rfind(dir + "/", 0) == 0) out.push_back(mnt);
  }
  return out;
}

}  // namespace pgbranch::cli
