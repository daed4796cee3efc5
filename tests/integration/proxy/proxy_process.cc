#include "tests/integration/proxy/proxy_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/support/pageserver_process.h"

namespace pgbranch::proxy::testing {

ProxyProcess::ProxyProcess(std::string control_url, std::string work_dir,
                           std::vector<std::string> extra_args)
    : control_url_(std::move(control_url)),
      work_dir_(std::move(work_dir)),
      extra_args_(std::move(extra_args)) {}

ProxyProcess::~ProxyProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
}

absl::Status ProxyProcess::Start() {
  std::filesystem::create_directories(work_dir_);
  std::string port_file = work_dir_ + "/proxy.port";
  std::filesystem::remove(port_file);
  std::vector<std::string> args = {
      pgbranch::testing::PageserverProcess::BinDir() + "/pgbranch-proxy",
      "--listen",
      "127.0.0.1:0",
      "--port-file",
      port_file,
      "--control",
      control_url_,
      "--log-level",
      "debug"};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  std::string log = log_path();
  pid_ = fork();
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  if (pid_ < 0) return absl::InternalError("fork failed");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrCat("pgbranch-proxy exited during start (status ", status, "): ", LogTail()));
    }
    std::ifstream in(port_file);
    if (in >> port_ && port_ > 0) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return absl::DeadlineExceededError("pgbranch-proxy did not start within 30 s");
}

int ProxyProcess::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = -1;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

std::string ProxyProcess::Log() const {
  std::ifstream in(log_path());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ProxyProcess::LogTail() const {
  std::string s = Log();
  return s.size() > 3000 ? s.substr(s.size() - 3000) : s;
}

int ProxyProcess::OpenFds() const {
  if (pid_ <= 0) return -1;
  std::error_code ec;
  int n = 0;
  for (std::filesystem::directory_iterator it(absl::StrCat("/proc/", pid_, "/fd"), ec), end;
       !ec && it != end; it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

}  // namespace pgbranch::proxy::testing
