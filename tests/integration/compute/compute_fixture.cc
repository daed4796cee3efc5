#include "tests/integration/compute/compute_fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/net_util.h"

namespace pgbranch::testing {

namespace v1 = pageserver::v1;

int FreePort() { return ::pgbranch::net::FreeLoopbackPort().value_or(0); }

bool IsMounted(const std::string& path) {
  std::ifstream in("/proc/self/mounts");
  std::string dev, dir, rest;
  while (in >> dev >> dir) {
    std::getline(in, rest);
    if (dir == path) return true;
  }
  return false;
}

std::vector<pid_t> ProcessesMentioning(const std::string& needle) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    pid_t pid = atoi(e->d_name);
    if (pid <= 0 || pid == getpid()) continue;
    std::ifstream in(absl::StrCat("/proc/", pid, "/cmdline"));
    std::stringstream ss;
    ss << in.rdbuf();
    std::string cmd = ss.str();
    for (char& c : cmd) {
      if (c == '\0') c = ' ';
    }
    if (cmd.find(needle) != std::string::npos) out.push_back(pid);
  }
  closedir(d);
  return out;
}

absl::StatusOr<std::string> HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect to port ", port, " failed"));
  }
  std::string req = absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return absl::UnavailableError("send failed");
  }
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) resp.append(buf, static_cast<size_t>(n));
  close(fd);
  size_t body = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos) {
    return absl::UnavailableError(absl::StrCat("unexpected response: ", resp));
  }
  return resp.substr(body + 4);
}

ComputeProcess::ComputeProcess(std::string base_dir, Options options)
    : base_dir_(std::move(base_dir)), options_(std::move(options)) {}

ComputeProcess::~ComputeProcess() {
  if (spare_stdin_ >= 0) close(spare_stdin_);
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    // Its children get their parent-death signals; give them a moment, then clear the mount.
    for (int i = 0; i < 200 && !ProcessesMentioning(workdir() + "/").empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::string cmd = "fusermount3 -uz '" + mountpoint() + "' 2>/dev/null";
    if (system(cmd.c_str()) != 0) {
      // Nothing was mounted.
    }
  }
}

std::string ComputeProcess::Log() const {
  std::ifstream in(workdir() + ".log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status ComputeProcess::Spawn() {
  if (pg_port_ == 0) pg_port_ = FreePort();
  std::string pw_file = workdir() + ".password";
  {
    std::ofstream out(pw_file);
    out << options_.password << "\n";
  }
  std::string config = workdir() + ".yaml";
  {
    std::ofstream out(config);
    out << "endpoint: " << options_.name << "\nbranch: " << options_.timeline
        << "\npageserver: " << options_.pageserver << "\ntenant: " << options_.tenant
        << "\ntimeline: " << options_.timeline
        << "\nmode: " << (options_.read_only ? "read-only" : "read-write")
        << "\nworkdir: " << workdir() << "\npg_port: " << pg_port_
        << "\nstatus_listen: 127.0.0.1:0\nstatus_port_file: " << workdir() << ".port"
        << "\npg_bin_dir: /usr/lib/postgresql/15/bin\npagefs_bin: " << PageserverProcess::BinDir()
        << "/pagefs\nrole: app\ndatabase: app\npassword_file: " << pw_file
        << "\nstop_timeout_seconds: 20\nparameters:\n  shared_buffers: 32MB\n";
    for (const auto& [k, v] : options_.parameters) out << "  " << k << ": '" << v << "'\n";
  }
  unlink((workdir() + ".port").c_str());
  std::vector<std::string> args = {PageserverProcess::BinDir() + "/pgbranch-compute", "--config",
                                   config};
  int in[2] = {-1, -1};
  if (options_.spare) {
    args = {PageserverProcess::BinDir() + "/pgbranch-compute", "--spare-under", base_dir_ + "/"};
    if (pipe2(in, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  }
  std::string log = workdir() + ".log";
  spawned_at_ = std::chrono::steady_clock::now();
  pid_ = fork();
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    if (in[0] >= 0) dup2(in[0], 0);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  if (in[0] >= 0) close(in[0]);
  spare_stdin_ = in[1];
  if (pid_ < 0) return absl::InternalError("fork failed");
  return absl::OkStatus();
}

absl::Status ComputeProcess::HandOver() {
  if (spare_stdin_ < 0) return absl::FailedPreconditionError("not a spare");
  const std::string line = workdir() + ".yaml\t" + workdir() + ".log\n";
  bool ok = write(spare_stdin_, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  close(spare_stdin_);
  spare_stdin_ = -1;
  spawned_at_ = std::chrono::steady_clock::now();
  return ok ? absl::OkStatus() : absl::InternalError("cannot write to the spare's stdin");
}

absl::StatusOr<YAML::Node> ComputeProcess::Status() const {
  std::ifstream in(workdir() + ".port");
  int port = 0;
  if (!(in >> port) || port <= 0) return absl::UnavailableError("no status port yet");
  absl::StatusOr<std::string> body = HttpGet(port, "/status");
  if (!body.ok()) return body.status();
  try {
    return YAML::Load(*body);
  } catch (const YAML::Exception& e) {
    return absl::InternalError(absl::StrCat("bad /status JSON: ", *body));
  }
}

absl::Status ComputeProcess::WaitRunning(int timeout_seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrCat("pgbranch-compute exited (status ", status, ") during start:\n", Log()));
    }
    absl::StatusOr<YAML::Node> s = Status();
    if (s.ok()) {
      std::string state = (*s)["state"].as<std::string>();
      if (state == "running") {
        spawn_to_running_ms_ = std::chrono::duration<double, std::milli>(
                                   std::chrono::steady_clock::now() - spawned_at_)
                                   .count();
        return absl::OkStatus();
      }
      if (state == "failed") {
        return absl::InternalError(
            absl::StrCat("compute failed: ", (*s)["message"].as<std::string>(), "\n", Log()));
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return absl::DeadlineExceededError(absl::StrCat("compute not running in time:\n", Log()));
}

int ComputeProcess::WaitExit(int timeout_seconds) {
  if (pid_ <= 0) return -1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return -1;
}

int ComputeProcess::StopWith(int sig, int timeout_seconds) {
  if (pid_ <= 0) return -1;
  kill(pid_, sig);
  return WaitExit(timeout_seconds);
}

std::string ComputeProcess::ConnUri(const std::string& password) const {
  return absl::StrCat("postgresql://app:", password.empty() ? options_.password : password,
                      "@127.0.0.1:", pg_port_, "/app");
}

CommandResult ComputeProcess::Psql(const std::string& sql, const std::string& password) const {
  return RunAsPostgres({"/usr/lib/postgresql/15/bin/psql", ConnUri(password), "-X", "-At", "-v",
                        "ON_ERROR_STOP=1", "-c", sql},
                       "", 120);
}

void ComputeTest::SetUp() {
  // mkdtemp made it 0700: postgres must traverse it to reach the workdirs.
  ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
  server_ = std::make_unique<PageserverProcess>(dir_.path() + "/pageserver");
  absl::Status s = server_->Start();
  ASSERT_TRUE(s.ok()) << s;
  stub_ = server_->NewStub();
  grpc::ClientContext ctx;
  v1::CreateTenantRequest req;
  req.set_tenant_id("t1");
  req.set_root_timeline_id("main");
  v1::Tenant tenant;
  grpc::Status gs = stub_->CreateTenant(&ctx, req, &tenant);
  ASSERT_TRUE(gs.ok()) << gs.error_message();
}

absl::Status ComputeTest::CreateBranch(const std::string& id, const std::string& parent) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::CreateTimelineRequest req;
  req.set_tenant_id("t1");
  req.set_timeline_id(id);
  req.set_ancestor_timeline_id(parent);
  v1::Timeline timeline;
  grpc::Status s = stub_->CreateTimeline(&ctx, req, &timeline);
  if (!s.ok())
    return absl::InternalError(absl::StrCat("CreateTimeline ", id, ": ", s.error_message()));
  return absl::OkStatus();
}

std::unique_ptr<ComputeProcess> ComputeTest::NewCompute(const std::string& name,
                                                        const std::string& timeline,
                                                        bool read_only) {
  ComputeProcess::Options o;
  o.name = name;
  o.pageserver = server_->address();
  o.timeline = timeline;
  o.read_only = read_only;
  return std::make_unique<ComputeProcess>(dir_.path(), o);
}

}  // namespace pgbranch::testing
