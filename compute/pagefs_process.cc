#include "compute/pagefs_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"

namespace pgbranch::compute {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string UnescapeMountPath(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (size_t j = 1; j <= 3; ++j) {
        char c = s[i + j];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

// Lexical only: resolving symlinks would stat the path, which hangs or fails (ENOTCONN) on a
// dead FUSE mount. The workdir is absolute (validated) and used as given.
std::string Canonical(const std::string& path) {
  std::string s = std::filesystem::path(path).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

PagefsProcess::PagefsProcess(const ComputeConfig& config, std::string mountpoint,
                             std::string log_path)
    : config_(config), mountpoint_(Canonical(mountpoint)), log_path_(std::move(log_path)) {}

bool PagefsProcess::IsMountPoint(const std::string& path) {
  std::string target = Canonical(path);
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint options ... - fstype source super-options
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() > 4 && UnescapeMountPath(f[4]) == target) return true;
  }
  return false;
}

absl::Status PagefsProcess::RunFusermount(const std::vector<std::string>& args) {
  SpawnOptions o;
  o.argv = {"/usr/bin/fusermount3"};
  if (access(o.argv[0].c_str(), X_OK) != 0) o.argv[0] = "/bin/fusermount3";
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.argv.push_back(mountpoint_);
  o.output_path = log_path_;
  absl::StatusOr<ChildProcess> done = RunToCompletion(o, std::chrono::seconds(10));
  if (!done.ok()) return done.status();
  if (done->exit_code() != 0) {
    return absl::UnavailableError(absl::StrCat("fusermount3 ", done->DescribeExit()));
  }
  return absl::OkStatus();
}

absl::Status PagefsProcess::ClearStaleMount() {
  if (!IsMountPoint(mountpoint_)) return absl::OkStatus();
  LogWarning("Unmounting a stale mount", {{"mountpoint", mountpoint_}});
  absl::Status s = RunFusermount({"-uz"});
  if (!s.ok() && IsMountPoint(mountpoint_)) {
    SpawnOptions o;
    o.argv = {"/bin/umount", "-l", mountpoint_};
    o.output_path = log_path_;
    absl::StatusOr<ChildProcess> done = RunToCompletion(o, std::chrono::seconds(10));
    if (IsMountPoint(mountpoint_)) {
      return absl::FailedPreconditionError(
          absl::StrCat("a previous mount is still on ", mountpoint_, " and cannot be removed"));
    }
  }
  return absl::OkStatus();
}

absl::Status PagefsProcess::Mount(std::chrono::milliseconds timeout,
                                  const std::function<bool()>& should_abort,
                                  const std::function<void(std::chrono::milliseconds)>& sleep) {
  struct stat st;
  log_offset_ = stat(log_path_.c_str(), &st) == 0 ? st.st_size : 0;
  SpawnOptions o;
  o.argv = {config_.pagefs_bin, "--pageserver",   config_.pageserver, "--tenant",    config_.tenant,
            "--timeline",       config_.timeline, "--foreground",     "--log-level", "warning"};
  if (!config_.token_file.empty())
    o.argv.insert(o.argv.end(), {"--token-file", config_.token_file});
  if (!config_.pagefs_metrics_listen.empty()) {
    o.argv.insert(o.argv.end(), {"--metrics-listen", config_.pagefs_metrics_listen});
  }
  if (!config_.commit_channel.empty()) {
    o.argv.insert(o.argv.end(), {"--commit-channel", config_.commit_channel});
  }
  // The catalogs' first pages, which PostgreSQL's start and its first backends (the role step's,
  // the first client's) read cold otherwise, one round trip each: fetched in the background in
  // a few batched reads while PostgreSQL starts (ComputeLayout: mnt/pgdata); and the WAL from
  // the last checkpoint's redo point, which crash recovery replays (--wal-prefetch-mb).
  o.argv.insert(o.argv.end(), {"--prefetch-postgres", "pgdata"});
  // The postmaster fsyncs its lock file at each of the ~6 updates of a start, each a durable
  // round at the pageserver on the start's path; nothing depends on it after a crash (the agent
  // removes a stale one): its fsyncs stay in order but do not wait.
  o.argv.insert(o.argv.end(), {"--volatile-file", "pgdata/postmaster.pid"});
  o.argv.push_back(mountpoint_);
  o.output_path = log_path_;
  // If the agent dies, pagefs flushes and unmounts on its own.
  o.parent_death_signal = SIGTERM;
  absl::StatusOr<ChildProcess> child = absl::UnavailableError("no spare pagefs");
  if (spare_.has_value() && spare_->bin() == config_.pagefs_bin) {
    child = spare_->Hand(log_path_, std::vector<std::string>(o.argv.begin() + 1, o.argv.end()));
    if (!child.ok()) {
      LogWarning("Starting pagefs: the spare could not take over",
                 {{"error", child.status().ToString()}});
    }
  }
  spare_.reset();
  if (!child.ok()) child = ChildProcess::Spawn(o);
  if (!child.ok()) return child.status();
  child_ = std::move(*child);

  // The mount table is read again only when it changed: the kernel reports a change of this
  // mount namespace's table on an open /proc/self/mountinfo as POLLPRI (each change once, to
  // each open file, counted from its open: a mount between the open and the first read is seen
  // by the read, one after it by the poll). Polled every 2 ms, the table (parsed whole) cost the
  // agent ~0.3 ms of CPU per read on the CPUs the mount needs. Without the file descriptor the
  // wait falls back to reading it every 2 ms.
  int table = ::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  struct TableCloser {
    int fd;
    ~TableCloser() {
      if (fd >= 0) ::close(fd);
    }
  } closer{table};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (IsMountPoint(mountpoint_)) return absl::OkStatus();
    if (child_.Poll()) {
      return absl::UnavailableError(
          absl::StrCat("pagefs could not mount timeline ", config_.timeline, ": ", DescribeExit()));
    }
    if (should_abort()) {
      child_.Signal(SIGKILL);
      child_.WaitFor(std::chrono::seconds(10));
      (void)RunFusermount({"-uz"});
      return absl::CancelledError("stopped while mounting");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      child_.Signal(SIGKILL);
      child_.WaitFor(std::chrono::seconds(10));
      (void)RunFusermount({"-uz"});
      return absl::DeadlineExceededError(
          absl::StrCat("pagefs did not mount within ",
                       std::chrono::duration_cast<std::chrono::seconds>(timeout).count(), " s"));
    }
    if (table >= 0) {
      // At most 20 ms: pagefs's exit, a stop and the deadline are checked between waits.
      pollfd p{table, POLLPRI, 0};
      if (::poll(&p, 1, 20) < 0 && errno != EINTR) {
        ::close(table);
        closer.fd = table = -1;
      }
    } else {
      sleep(std::chrono::milliseconds(2));
    }
  }
}

bool PagefsProcess::Alive() { return child_.running() && !child_.Poll(); }

std::string PagefsProcess::DescribeExit() {
  std::string tail = TailOfFile(log_path_, 3, log_offset_);
  std::string out = child_.DescribeExit();
  if (!tail.empty()) absl::StrAppend(&out, ": ", tail);
  return out;
}

absl::Status PagefsProcess::Unmount(std::chrono::milliseconds busy_timeout,
                                    std::chrono::milliseconds flush_timeout) {
  auto busy_deadline = std::chrono::steady_clock::now() + busy_timeout;
  bool unmounted = !IsMountPoint(mountpoint_);
  while (!unmounted) {
    if (RunFusermount({"-u"}).ok() || !IsMountPoint(mountpoint_)) {
      unmounted = true;
      break;
    }
    if (std::chrono::steady_clock::now() >= busy_deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // busy: files still open
  }
  if (!unmounted) {
    // Someone still holds files open on the mount. Detach it lazily (new opens fail) and have
    // pagefs flush and exit now rather than when the last reference goes away.
    LogWarning("Mount still busy: detaching it lazily", {{"mountpoint", mountpoint_}});
    if (!RunFusermount({"-uz"}).ok() && IsMountPoint(mountpoint_)) {
      SpawnOptions o;
      o.argv = {"/bin/umount", "-l", mountpoint_};
      o.output_path = log_path_;
      (void)RunToCompletion(o, std::chrono::seconds(10));
    }
    child_.Signal(SIGTERM);
  }
  if (child_.running() && !child_.WaitFor(flush_timeout)) {
    LogWarning("pagefs did not exit after the unmount: killing it",
               {{"pid", std::to_string(child_.pid())}});
    child_.Signal(SIGKILL);
    child_.WaitFor(std::chrono::seconds(10));
  }
  if (IsMountPoint(mountpoint_)) {
    return absl::InternalError(absl::StrCat(mountpoint_, " is still mounted"));
  }
  if (child_.exited() && child_.exit_code() != 0) {
    return absl::DataLossError(absl::StrCat("pagefs ", DescribeExit()));
  }
  return absl::OkStatus();
}

}  // namespace pgbranch::compute
