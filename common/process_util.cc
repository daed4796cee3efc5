#include "common/process_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace pgbranch::cli {

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

absl::StatusOr<pid_t> SpawnDetached(const std::vector<std::string>& argv, const std::string& log,
                                    bool daemon) {
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError(std::string("fork failed: ") + strerror(errno));
  if (pid == 0) {
    ::setsid();  // a stray signal to our process group does not reach it
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    if (devnull >= 0) ::dup2(devnull, 0);
    for (int i = 3; i < 1024; ++i) ::close(i);
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

pid_t PidWithArgs(const std::vector<std::string>& args) {
  std::string needle;
  for (const auto& a : args) needle += a + std::string(1, '\0');
  std::error_code ec;
  for (const auto& p : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = p.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    if (ReadFileOrEmpty((p.path() / "cmdline").string()).find(needle) != std::string::npos) {
      return std::atoi(name.c_str());
    }
  }
  return 0;
}

}  // namespace pgbranch::cli
