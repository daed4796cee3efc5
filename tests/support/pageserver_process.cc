#include "tests/support/pageserver_process.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"

#ifndef PGBRANCH_DEFAULT_BIN_DIR
#define PGBRANCH_DEFAULT_BIN_DIR "build/bin"
#endif

namespace pgbranch::testing {

std::string PageserverProcess::BinDir() {
  const char* env = getenv("PGBRANCH_BIN_DIR");
  return env != nullptr ? env : PGBRANCH_DEFAULT_BIN_DIR;
}

pid_t SpawnChild(std::vector<std::string> args) {
  pid_t pid = fork();
  if (pid == 0) {
    // Never outlive the test, even if it is killed.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

PageserverProcess::PageserverProcess(std::string data_dir, std::vector<std::string> extra_args)
    : data_dir_(std::move(data_dir)), extra_args_(std::move(extra_args)) {}

PageserverProcess::~PageserverProcess() {
  if (pid_ > 0) Kill();
}

absl::Status PageserverProcess::Start() {
  std::string port_file = data_dir_ + ".port";
  std::filesystem::remove(port_file);
  std::vector<std::string> args = {BinDir() + "/pgbranch-pageserver",
                                   "--data-dir",
                                   data_dir_,
                                   "--listen",
                                   "127.0.0.1:0",
                                   "--port-file",
                                   port_file,
                                   "--log-level",
                                   "warning"};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  pid_ = SpawnChild(args);
  if (pid_ < 0) return absl::InternalError("fork failed");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("pgbranch-pageserver exited during start (status ",
                                              status, "); binary: ", args[0]));
    }
    std::ifstream in(port_file);
    if (in >> port_ && port_ > 0) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Kill();
  return absl::DeadlineExceededError("pgbranch-pageserver did not start within 30 s");
}

void PageserverProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

int PageserverProcess::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::unique_ptr<pageserver::v1::PageService::Stub> PageserverProcess::NewStub() const {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(128 << 20);
  args.SetMaxSendMessageSize(128 << 20);
  auto channel = grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
  return pageserver::v1::PageService::NewStub(channel);
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/pgbranch-test-XXXXXX";
  char* p = mkdtemp(tmpl);
  path_ = p != nullptr ? p : "/tmp/pgbranch-test-fallback";
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace pgbranch::testing
