#include "cli/local_daemons.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/process_util.h"
#include "operator/local/local_tls.h"

namespace pgbranch::cli {
namespace {

// The port of "host:port" or "http://host:port", 0 if there is none.
int PortOf(const std::string& address) {
  size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) return 0;
  return port;
}

}  // namespace

const char* LocalDaemons::Name(Daemon d) {
  switch (d) {
    case Daemon::kPageserver:
      return "pgbranch-pageserver";
    case Daemon::kController:
      return "the controller";
    case Daemon::kProxy:
      return "pgbranch-proxy";
  }
  return "?";
}

std::string LocalDaemons::PortFile(Daemon d) const {
  switch (d) {
    case Daemon::kPageserver:
      return ctx_.Path("run/pageserver.port");
    case Daemon::kController:
      return ctx_.Path("run/controller.port");
    case Daemon::kProxy:
      return ctx_.Path("run/proxy.port");
  }
  return "";
}

std::string LocalDaemons::LogPath(Daemon d) const {
  switch (d) {
    case Daemon::kPageserver:
      return ctx_.Path("logs/pageserver.log");
    case Daemon::kController:
      return ctx_.Path("logs/controller.log");
    case Daemon::kProxy:
      return ctx_.Path("logs/proxy.log");
  }
  return "";
}

std::vector<std::string> LocalDaemons::Identity(Daemon d) const {
  if (d == Daemon::kController) return {"--state-dir", ctx_.state_dir(), "local", "controller"};
  return {"--port-file", PortFile(d)};
}

std::string LocalDaemons::PageserverSocket(const CliContext& ctx) {
  std::string path = ctx.Path("run/ps.sock");
  if (path.size() + 1 > sizeof(sockaddr_un::sun_path)) return "";
  return path;
}

std::string LocalDaemons::CommitSocket(const CliContext& ctx) {
  std::string path = ctx.Path("run/pc.sock");
  if (path.size() + 1 > sizeof(sockaddr_un::sun_path)) return "";
  return path;
}

pid_t LocalDaemons::Find(Daemon d) const { return PidWithArgs(Identity(d)); }

std::vector<pid_t> LocalDaemons::FindAll(const std::vector<Daemon>& ds) const {
  std::vector<std::vector<std::string>> identities;
  for (Daemon d : ds) identities.push_back(Identity(d));
  return PidsWithArgs(identities);
}

absl::Status LocalDaemons::Start(Daemon d, LocalInstance* inst) const {
  const std::string bin = CliContext::BinDir();
  const std::string port_file = PortFile(d);
  ::unlink(port_file.c_str());
  std::vector<std::string> argv;
  switch (d) {
    case Daemon::kPageserver:
      argv = {bin + "/pgbranch-pageserver",
              "--data-dir",
              ctx_.Path("pageserver"),
              "--listen",
              absl::StrCat("127.0.0.1:", PortOf(inst->pageserver)),
              "--port-file",
              port_file,
              "--log-level",
              "warning"};
      if (std::string sock = PageserverSocket(ctx_); !sock.empty()) {
        argv.push_back("--listen-unix");
        argv.push_back(sock);
      }
      if (std::string sock = CommitSocket(ctx_); !sock.empty()) {
        argv.push_back("--commit-socket");
        argv.push_back(sock);
      }
      break;
    case Daemon::kController:
      // The controller listens on the port recorded in local.json, if any (it reads it itself).
      argv = {bin + "/pgbranch", "--state-dir",  ctx_.state_dir(), "local",
              "controller",      "--pageserver", inst->pageserver};
      if (inst->test_clock) argv.push_back("--test-clock");
      break;
    case Daemon::kProxy:
      argv = {bin + "/pgbranch-proxy", "--listen",    absl::StrCat("127.0.0.1:", inst->proxy_port),
              "--port-file",           port_file,     "--control",
              inst->controller_url,    "--log-level", "info"};
      // TLS unless `local up --no-tls` chose plain TCP (operator/local/local_tls.h).
      for (const std::string& flag : LocalProxyTlsArgs(ctx_.state_dir())) argv.push_back(flag);
      break;
  }
  const std::string log = LogPath(d);
  std::error_code size_ec;
  const uintmax_t log_before = std::filesystem::file_size(log, size_ec);
  absl::StatusOr<pid_t> spawned = SpawnDetached(argv, log, /*daemon=*/true);
  if (!spawned.ok()) return spawned.status();
  int port = 0;
  for (int i = 0; i < 600 && port == 0; ++i) {
    std::string text(absl::StripAsciiWhitespace(ReadFileOrEmpty(port_file)));
    if (!text.empty()) {
      port = std::atoi(text.c_str());
      break;
    }
    // Gone before it listened (its port is taken, ...): its log says why.
    if (i > 10 && Find(d) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (port == 0) {
    // What it said before it exited (the last line this start wrote), and what to do about a
    // port that is taken.
    std::string said = ReadFileOrEmpty(log);
    said = said.substr(size_ec ? 0 : std::min<size_t>(log_before, said.size()));
    said = std::string(absl::StripTrailingAsciiWhitespace(said));
    said = said.substr(said.rfind('\n') == std::string::npos ? 0 : said.rfind('\n') + 1);
    std::string hint;
    if (absl::StrContains(said, "Address already in use") && d == Daemon::kProxy) {
      hint = absl::StrCat(
          "; port ", inst->proxy_port,
          " is taken (by another program, or by a connection that closed less than a minute "
          "ago): wait, or choose another port with `pgbranch local up --proxy-port N` (0: any "
          "free port)");
    }
    return absl::UnavailableError(absl::StrCat(Name(d), " did not start", said.empty() ? "" : ": ",
                                               said, hint, " (log: ", log, ")"));
  }
  pid_t pid = Find(d);
  switch (d) {
    case Daemon::kPageserver:
      inst->pageserver = absl::StrCat("127.0.0.1:", port);
      inst->pageserver_pid = pid;
      break;
    case Daemon::kController:
      inst->controller_url = absl::StrCat("http://127.0.0.1:", port);
      inst->controller_pid = pid;
      break;
    case Daemon::kProxy:
      inst->proxy_port = port;
      inst->proxy_pid = pid;
      break;
  }
  return absl::OkStatus();
}

void LocalDaemons::Stop(Daemon d, int seconds) const {
  pid_t pid = Find(d);
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  if (WaitProcessGone(pid, seconds)) return;
  std::cerr << Name(d) << " did not stop within " << seconds << " s; killing it\n";
  ::kill(pid, SIGKILL);
  WaitProcessGone(pid, 10);
}

LocalDaemons::Lock::~Lock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

absl::StatusOr<LocalDaemons::Lock> LocalDaemons::Acquire(absl::Duration timeout) const {
  std::string path = ctx_.Path("run/daemons.lock");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot open ", path));
  absl::Time deadline = absl::Now() + timeout;
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (absl::Now() >= deadline) {
      ::close(fd);
      return absl::UnavailableError(absl::StrCat(
          "another pgbranch command is starting or stopping this instance (", path, ")"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Lock(fd);
}

}  // namespace pgbranch::cli
