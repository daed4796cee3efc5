#include "tests/support/postgres_instance.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/net_util.h"

namespace pgbranch::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Writing to a pipe whose reader died must be an EPIPE error, not the end of the test.
void IgnoreSigpipe() {
  static const bool once = [] {
    signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)once;
}

// Everything the child needs, computed before fork(): after fork() in a multithreaded process
// only async-signal-safe calls are allowed (no allocation, no NSS lookups).
struct ChildSpec {
  std::vector<std::string> argv_storage;
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  bool new_session = false;  // setsid() instead of a new process group
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
};

absl::Status PrepareChild(const std::vector<std::string>& argv, ChildSpec* spec) {
  passwd pw;
  passwd* result = nullptr;
  std::vector<char> buf(16384);
  if (getpwnam_r("postgres", &pw, buf.data(), buf.size(), &result) != 0 || result == nullptr) {
    return absl::FailedPreconditionError("no `postgres` user (install postgresql-15)");
  }
  spec->uid = pw.pw_uid;
  spec->gid = pw.pw_gid;
  int ngroups = 64;
  spec->groups.resize(ngroups);
  if (getgrouplist("postgres", pw.pw_gid, spec->groups.data(), &ngroups) < 0) {
    spec->groups.resize(ngroups);
    getgrouplist("postgres", pw.pw_gid, spec->groups.data(), &ngroups);
  }
  spec->groups.resize(ngroups);
  spec->argv_storage = argv;
  spec->env_storage = {"PATH=/usr/lib/postgresql/15/bin:/usr/bin:/bin",
                       absl::StrCat("HOME=", pw.pw_dir),
                       "USER=postgres",
                       "LOGNAME=postgres",
                       "LC_ALL=C",
                       "LANG=C",
                       "PGTZ=UTC"};
  for (auto& a : spec->argv_storage) spec->argv.push_back(a.data());
  spec->argv.push_back(nullptr);
  for (auto& e : spec->env_storage) spec->envp.push_back(e.data());
  spec->envp.push_back(nullptr);
  return absl::OkStatus();
}

// Forks and execs `spec` as postgres. Returns the child's pid or -1.
pid_t Spawn(const ChildSpec& spec) {
  IgnoreSigpipe();
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;
  // Child: async-signal-safe calls only.
  if (spec.new_session) {
    setsid();
  } else {
    setpgid(0, 0);
  }
  if (setgroups(spec.groups.size(), spec.groups.data()) != 0 || setgid(spec.gid) != 0 ||
      setuid(spec.uid) != 0) {
    _exit(126);
  }
  // After setuid: a credential change clears the parent-death signal.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(125);
  if (chdir("/") != 0) _exit(124);
  int devnull = open("/dev/null", O_RDWR);
  dup2(spec.stdin_fd >= 0 ? spec.stdin_fd : devnull, 0);
  dup2(spec.stdout_fd >= 0 ? spec.stdout_fd : devnull, 1);
  dup2(spec.stderr_fd >= 0 ? spec.stderr_fd : devnull, 2);
  signal(SIGPIPE, SIG_DFL);
  execve(spec.argv[0], spec.argv.data(), spec.envp.data());
  _exit(127);
}

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Waits for `pid` (our child) up to `deadline`: its wait status, or -1 on timeout.
int WaitUntil(pid_t pid, Clock::time_point deadline) {
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return 0;  // not our child (already reaped)
    if (Clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// The children of `parent`, from /proc.
std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    pid_t pid;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    if (rest >> state >> ppid && ppid == parent) out.push_back(pid);
  }
  return out;
}

// Whether `pid` is gone or a zombie (which holds no files any more).
bool IsDead(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return true;
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] == 'Z' ||
         stat[close + 2] == 'X';
}

int FreePort() {
  auto port = ::pgbranch::net::FreeLoopbackPort();
  return port.ok() ? *port : 50000 + getpid() % 10000;
}

std::string Tail(const std::string& text, size_t max_chars) {
  if (text.size() <= max_chars) return text;
  return "..." + text.substr(text.size() - max_chars);
}

}  // namespace

std::string CommandResult::Describe() const {
  std::string s = timed_out ? "timed out" : absl::StrCat("exit code ", exit_code);
  if (!err.empty()) absl::StrAppend(&s, "; stderr:\n", Tail(err, 4000));
  if (!out.empty()) absl::StrAppend(&s, "\nstdout:\n", Tail(out, 4000));
  return s;
}

namespace {
CommandResult RunChild(const std::vector<std::string>& argv, const std::string& input,
                       int timeout_seconds, bool as_postgres);
}  // namespace

CommandResult RunAsPostgres(const std::vector<std::string>& argv, const std::string& input,
                            int timeout_seconds) {
  return RunChild(argv, input, timeout_seconds, /*as_postgres=*/true);
}

CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& input,
                         int timeout_seconds) {
  return RunChild(argv, input, timeout_seconds, /*as_postgres=*/false);
}

namespace {
CommandResult RunChild(const std::vector<std::string>& argv, const std::string& input,
                       int timeout_seconds, bool as_postgres) {
  CommandResult result;
  ChildSpec spec;
  if (absl::Status s = PrepareChild(argv, &spec); !s.ok()) {
    result.err = s.ToString();
    return result;
  }
  if (!as_postgres) {
    // Keep our own identity and environment (the PATH with PostgreSQL's tools first).
    spec.uid = getuid();
    spec.gid = getgid();
    spec.groups.assign(64, 0);
    int n = getgroups(64, spec.groups.data());
    spec.groups.resize(n > 0 ? n : 0);
    spec.env_storage.clear();
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string(*e).rfind("PATH=", 0) != 0) spec.env_storage.push_back(*e);
    }
    spec.env_storage.push_back("PATH=/usr/lib/postgresql/15/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    spec.envp.clear();
    for (auto& e : spec.env_storage) spec.envp.push_back(e.data());
    spec.envp.push_back(nullptr);
  }
  int in_pipe[2] = {-1, -1}, out_pipe[2], err_pipe[2];
  if ((!input.empty() && pipe2(in_pipe, O_CLOEXEC) != 0) || pipe2(out_pipe, O_CLOEXEC) != 0 ||
      pipe2(err_pipe, O_CLOEXEC) != 0) {
    result.err = absl::StrCat("pipe: ", strerror(errno));
    return result;
  }
  spec.stdin_fd = in_pipe[0];
  spec.stdout_fd = out_pipe[1];
  spec.stderr_fd = err_pipe[1];
  pid_t pid = Spawn(spec);
  for (int fd : {in_pipe[0], out_pipe[1], err_pipe[1]}) {
    if (fd >= 0) close(fd);
  }
  if (pid < 0) {
    for (int fd : {in_pipe[1], out_pipe[0], err_pipe[0]}) {
      if (fd >= 0) close(fd);
    }
    result.err = absl::StrCat("fork: ", strerror(errno));
    return result;
  }
  int in_fd = in_pipe[1];
  if (in_fd >= 0) fcntl(in_fd, F_SETFL, O_NONBLOCK);
  size_t written = 0;
  int out_fd = out_pipe[0], err_fd = err_pipe[0];
  auto deadline = Clock::now() + std::chrono::seconds(timeout_seconds);
  char buf[65536];
  while (out_fd >= 0 || err_fd >= 0) {
    pollfd fds[3];
    int n = 0;
    if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
    if (out_fd >= 0) fds[n++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[n++] = {err_fd, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      break;
    }
    int r = poll(fds, n, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (r < 0 && errno != EINTR) break;
    for (int i = 0; i < n && r > 0; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == in_fd) {
        ssize_t w = write(in_fd, input.data() + written, input.size() - written);
        if (w > 0) written += w;
        if (w < 0 && errno != EAGAIN && errno != EINTR) written = input.size();  // reader gone
        if (written == input.size()) {
          close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      ssize_t got = read(fds[i].fd, buf, sizeof(buf));
      if (got > 0) {
        (fds[i].fd == out_fd ? result.out : result.err).append(buf, got);
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(fds[i].fd);
        (fds[i].fd == out_fd ? out_fd : err_fd) = -1;
      }
    }
  }
  for (int fd : {in_fd, out_fd, err_fd}) {
    if (fd >= 0) close(fd);
  }
  int status = WaitUntil(pid, result.timed_out ? Clock::now() + std::chrono::seconds(30)
                                               : deadline + std::chrono::seconds(1));
  if (status == -1) {
    result.timed_out = true;
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    status = WaitUntil(pid, Clock::now() + std::chrono::seconds(30));
  }
  result.exit_code = result.timed_out ? -1 : ExitCodeOf(status);
  return result;
}
}  // namespace

// ---- PostgresPipe ----

PostgresPipe::~PostgresPipe() { Kill(); }

absl::Status PostgresPipe::Start(const std::vector<std::string>& argv,
                                 const std::string& stderr_path) {
  ChildSpec spec;
  if (absl::Status s = PrepareChild(argv, &spec); !s.ok()) return s;
  int in_pipe[2], out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  int err_fd = -1;
  if (!stderr_path.empty()) {
    err_fd = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
  spec.stdin_fd = in_pipe[0];
  spec.stdout_fd = out_pipe[1];
  spec.stderr_fd = err_fd;
  pid_ = Spawn(spec);
  close(in_pipe[0]);
  close(out_pipe[1]);
  if (err_fd >= 0) close(err_fd);
  in_fd_ = in_pipe[1];
  out_fd_ = out_pipe[0];
  if (pid_ < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  return absl::OkStatus();
}

absl::Status PostgresPipe::Write(const std::string& data) {
  if (in_fd_ < 0) return absl::FailedPreconditionError("stdin is closed");
  size_t done = 0;
  while (done < data.size()) {
    ssize_t w = write(in_fd_, data.data() + done, data.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("write to the child: ", strerror(errno)));
    }
    done += w;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> PostgresPipe::ReadLine(int timeout_seconds) {
  auto deadline = Clock::now() + std::chrono::seconds(timeout_seconds);
  while (true) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    if (out_fd_ < 0) return absl::NotFoundError("end of output");
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return absl::DeadlineExceededError("no line from the child");
    pollfd pfd{out_fd_, POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(left.count()));
    if (r <= 0) continue;
    char buf[4096];
    ssize_t got = read(out_fd_, buf, sizeof(buf));
    if (got > 0) {
      buffer_.append(buf, got);
    } else if (got == 0 || errno != EINTR) {
      close(out_fd_);
      out_fd_ = -1;
    }
  }
}

int PostgresPipe::Finish(int timeout_seconds) {
  if (in_fd_ >= 0) close(in_fd_);
  in_fd_ = -1;
  if (pid_ <= 0) return -1;
  int status = WaitUntil(pid_, Clock::now() + std::chrono::seconds(timeout_seconds));
  if (status == -1) {
    Kill();
    return -1;
  }
  pid_ = -1;
  return ExitCodeOf(status);
}

void PostgresPipe::Kill() {
  if (pid_ > 0) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    WaitUntil(pid_, Clock::now() + std::chrono::seconds(30));
    pid_ = -1;
  }
  for (int* fd : {&in_fd_, &out_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

// ---- PostgresInstance ----

PostgresInstance::PostgresInstance(Options options) : options_(std::move(options)) {
  if (options_.port == 0) options_.port = FreePort();
  log_path_ = absl::StrCat(options_.socket_dir, "/postgres-", options_.port, ".log");
}

PostgresInstance::~PostgresInstance() { Kill9(); }

absl::Status PostgresInstance::Error(const std::string& what, const CommandResult& result) const {
  return absl::InternalError(absl::StrCat(what, " (server on ", options_.data_dir, ", port ",
                                          options_.port, "): ", result.Describe(),
                                          "\n--- server log tail ---\n", LogTail()));
}

absl::Status PostgresInstance::InitDb(bool no_sync) {
  std::error_code ec;
  if (!std::filesystem::exists(options_.data_dir)) {
    std::filesystem::create_directories(options_.data_dir, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot create ", options_.data_dir, ": ", ec.message()));
    }
  }
  passwd* pw = getpwnam("postgres");
  if (pw == nullptr) return absl::FailedPreconditionError("no `postgres` user");
  if (chown(options_.data_dir.c_str(), pw->pw_uid, pw->pw_gid) != 0 ||
      chmod(options_.data_dir.c_str(), 0700) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot chown/chmod ", options_.data_dir, ": ", strerror(errno)));
  }
  std::vector<std::string> argv = {options_.bin_dir + "/initdb",
                                   "-D",
                                   options_.data_dir,
                                   "--auth=trust",
                                   "-U",
                                   "postgres",
                                   "--locale=C",
                                   "-E",
                                   "UTF8"};
  if (no_sync) argv.push_back("--no-sync");
  CommandResult r = RunAsPostgres(argv, "", 600);
  if (r.exit_code != 0) return Error("initdb failed", r);
  return absl::OkStatus();
}

absl::Status PostgresInstance::RemoveStalePidFile() {
  std::error_code ec;
  std::filesystem::remove(options_.data_dir + "/postmaster.pid", ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot remove postmaster.pid: ", ec.message()));
  return absl::OkStatus();
}

absl::Status PostgresInstance::Start(const std::vector<std::string>& extra_settings,
                                     int timeout_seconds) {
  if (pid_ > 0) return absl::FailedPreconditionError("already running");
  std::error_code ec;
  std::filesystem::create_directories(options_.socket_dir, ec);
  chmod(options_.socket_dir.c_str(), 0777);
  std::vector<std::string> argv = {options_.bin_dir + "/postgres", "-D", options_.data_dir};
  std::vector<std::string> settings = {"listen_addresses=",
                                       absl::StrCat("port=", options_.port),
                                       "unix_socket_directories=" + options_.socket_dir,
                                       "shared_buffers=32MB",
                                       "fsync=on",
                                       "full_page_writes=on",
                                       "logging_collector=off",
                                       "log_min_messages=warning",
                                       "log_line_prefix=%m [%p] "};
  settings.insert(settings.end(), options_.settings.begin(), options_.settings.end());
  settings.insert(settings.end(), extra_settings.begin(), extra_settings.end());
  for (const auto& s : settings) {
    argv.push_back("-c");
    argv.push_back(s);
  }
  ChildSpec spec;
  if (absl::Status s = PrepareChild(argv, &spec); !s.ok()) return s;
  spec.new_session = true;
  int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(absl::StrCat("cannot open ", log_path_, ": ", strerror(errno)));
  }
  {
    std::string banner =
        absl::StrCat("=== pgbranch test: starting postgres: ", absl::StrJoin(argv, " "), "\n");
    if (write(log_fd, banner.data(), banner.size()) < 0) {
      // The log is only for diagnostics.
    }
  }
  spec.stdout_fd = log_fd;
  spec.stderr_fd = log_fd;
  pid_ = Spawn(spec);
  close(log_fd);
  if (pid_ < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));

  // Ready when postmaster.pid names our postmaster and its status line says "ready" (what
  // `pg_ctl -w` waits for).
  auto deadline = Clock::now() + std::chrono::seconds(timeout_seconds);
  std::string pid_file = options_.data_dir + "/postmaster.pid";
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      CommandResult r;
      r.exit_code = ExitCodeOf(status);
      return Error("postgres exited during startup", r);
    }
    std::ifstream in(pid_file);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    if (lines.size() >= 8 && lines[0] == std::to_string(pid_) &&
        absl::StripAsciiWhitespace(lines[7]) == "ready") {
      return absl::OkStatus();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CommandResult r;
  r.timed_out = true;
  absl::Status s = Error(absl::StrCat("postgres not ready within ", timeout_seconds, " s"), r);
  Kill9();
  return s;
}

int PostgresInstance::WaitPostmaster(int timeout_seconds) {
  int status = WaitUntil(pid_, Clock::now() + std::chrono::seconds(timeout_seconds));
  if (status != -1) pid_ = -1;
  return status;
}

bool PostgresInstance::HasExited() {
  if (pid_ <= 0) return true;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return true;
  }
  return false;
}

absl::Status PostgresInstance::Stop(StopMode mode, int timeout_seconds) {
  if (pid_ <= 0) return absl::FailedPreconditionError("not running");
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    CommandResult r;
    r.exit_code = ExitCodeOf(status);
    return Error("postgres had already exited before Stop()", r);
  }
  int sig = mode == StopMode::kSmart ? SIGTERM : mode == StopMode::kFast ? SIGINT : SIGQUIT;
  kill(pid_, sig);
  status = WaitPostmaster(timeout_seconds);
  if (status == -1) {
    Kill9();
    CommandResult r;
    r.timed_out = true;
    return Error("postgres did not stop in time (killed)", r);
  }
  if (mode != StopMode::kImmediate && ExitCodeOf(status) != 0) {
    CommandResult r;
    r.exit_code = ExitCodeOf(status);
    return Error("postgres did not shut down cleanly", r);
  }
  return absl::OkStatus();
}

void PostgresInstance::Kill9() {
  if (pid_ <= 0) return;
  // The killed backends are orphans: as a subreaper this process inherits and reaps them (PID 1
  // of a container may never reap them). Only our own descendants can be reparented to us.
  static const bool subreaper = prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;
  // Stop it first so that it forks no new child while we collect them. Backends are session
  // leaders of their own (InitPostmasterChild calls setsid()), so killing the postmaster's
  // process group is not enough: every child and its group get SIGKILL.
  kill(pid_, SIGSTOP);
  std::vector<pid_t> children = ChildrenOf(pid_);
  kill(pid_, SIGKILL);
  for (pid_t c : children) {
    kill(-c, SIGKILL);
    kill(c, SIGKILL);
  }
  WaitPostmaster(60);  // once it is reaped, its children are ours (if subreaper)
  auto deadline = Clock::now() + std::chrono::seconds(60);
  for (pid_t c : children) {
    while (Clock::now() < deadline) {
      int status;
      pid_t r = subreaper ? waitpid(c, &status, WNOHANG) : -1;
      if (r == c || (r < 0 && IsDead(c))) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  pid_ = -1;
}

std::vector<std::string> PostgresInstance::PsqlArgv(const std::string& db) const {
  return {options_.bin_dir + "/psql",
          "-X",
          "-q",
          "-At",
          "-v",
          "ON_ERROR_STOP=1",
          "-h",
          options_.socket_dir,
          "-p",
          std::to_string(options_.port),
          "-U",
          "postgres",
          "-d",
          db};
}

CommandResult PostgresInstance::RunClient(const std::string& program,
                                          const std::vector<std::string>& args,
                                          const std::string& input, int timeout_seconds) const {
  std::vector<std::string> argv = {
      options_.bin_dir + "/" + program, "-h", options_.socket_dir, "-p",
      std::to_string(options_.port),    "-U", "postgres"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunAsPostgres(argv, input, timeout_seconds);
}

absl::StatusOr<std::string> PostgresInstance::Query(const std::string& sql, const std::string& db,
                                                    int timeout_seconds) const {
  // Through stdin, so that psql runs the statements one by one (CHECKPOINT, VACUUM or CREATE
  // DATABASE cannot run inside the implicit transaction of a multi-statement -c).
  CommandResult r = RunClient("psql", {"-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db},
                              sql + "\n", timeout_seconds);
  if (r.exit_code != 0) return Error(absl::StrCat("psql failed on: ", Tail(sql, 500)), r);
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

absl::StatusOr<int64_t> PostgresInstance::QueryInt(const std::string& sql,
                                                   const std::string& db) const {
  absl::StatusOr<std::string> out = Query(sql, db);
  if (!out.ok()) return out.status();
  int64_t v;
  if (!absl::SimpleAtoi(*out, &v)) {
    return absl::InternalError(absl::StrCat("not an integer: '", *out, "' from: ", sql));
  }
  return v;
}

absl::StatusOr<std::string> PostgresInstance::Pgbench(const std::vector<std::string>& args,
                                                      int timeout_seconds) const {
  CommandResult r = RunClient("pgbench", args, "", timeout_seconds);
  if (r.exit_code != 0) return Error(absl::StrCat("pgbench ", absl::StrJoin(args, " ")), r);
  return r.out + r.err;
}

absl::Status PostgresInstance::AmCheck(int timeout_seconds) const {
  CommandResult r = RunClient("pg_amcheck", {"--all", "--install-missing", "--heapallindexed"}, "",
                              timeout_seconds);
  if (r.exit_code != 0 || !r.out.empty()) return Error("pg_amcheck reported problems", r);
  return absl::OkStatus();
}

std::string PostgresInstance::LogTail(int lines) const {
  std::ifstream in(log_path_);
  std::deque<std::string> tail;
  for (std::string line; std::getline(in, line);) {
    tail.push_back(line);
    if (static_cast<int>(tail.size()) > lines) tail.pop_front();
  }
  return absl::StrJoin(tail, "\n");
}

}  // namespace pgbranch::testing
