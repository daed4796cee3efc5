// pagefs: mounts one pageserver timeline as a POSIX directory for unmodified PostgreSQL.
//
//   pagefs --pageserver ADDR --tenant T --timeline X [--token-file F] [--tls-ca F]
//          [--read-only [--lsn L | --at RFC3339]] [--cache-mb N] [--dirty-mb N]
//          [--metrics-listen ADDR] [--foreground] [--log-level L] MOUNTPOINT
//
// A read-write mount acquires the timeline's writer generation (fencing any older writer); a
// read-only mount serves one fixed LSN. SIGTERM or an unmount flushes and exits 0; a failure to
// mount or to flush exits non-zero with a message. Without --foreground it detaches once mounted.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "pageserver/pagefs/fuse_bridge.h"
#include "pageserver/pagefs/page_store.h"
#include "pageserver/pagefs/pagefs.h"
#include "pageserver/pagefs/pagefs_metrics.h"

namespace {

using namespace pgbranch;

constexpr char kUsage[] =
    "usage: pagefs --pageserver ADDR --tenant T --timeline X [--token-file F] [--tls-ca F]\n"
    "              [--read-only [--lsn L | --at RFC3339]] [--cache-mb N] [--dirty-mb N]\n"
    "              [--metrics-listen ADDR] [--foreground] [--log-level L] MOUNTPOINT\n";

struct Flags {
  std::map<std::string, std::string> values;
  bool read_only = false;
  bool foreground = false;
  std::string mountpoint;
};

bool ParseFlags(int argc, char** argv, Flags* f, std::string* error) {
  static const char* kValued[] = {
      "--pageserver", "--tenant",   "--timeline", "--token-file",     "--tls-ca",   "--lsn",
      "--at",         "--cache-mb", "--dirty-mb", "--metrics-listen", "--log-level"};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--read-only") {
      f->read_only = true;
    } else if (a == "--foreground" || a == "-f") {
      f->foreground = true;
    } else if (a == "--help" || a == "-h") {
      *error = "";
      return false;
    } else if (a.rfind("--", 0) == 0) {
      std::string name = a, value;
      bool inline_value = false;
      if (auto eq = a.find('='); eq != std::string::npos) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
        inline_value = true;
      }
      bool known = false;
      for (const char* k : kValued) known = known || name == k;
      if (!known) {
        *error = absl::StrCat("unknown flag ", a);
        return false;
      }
      if (!inline_value) {
        if (i + 1 >= argc) {
          *error = absl::StrCat(name, " needs a value");
          return false;
        }
        value = argv[++i];
      }
      f->values[name] = value;
    } else if (f->mountpoint.empty()) {
      f->mountpoint = a;
    } else {
      *error = absl::StrCat("unexpected argument ", a);
      return false;
    }
  }
  for (const char* required : {"--pageserver", "--tenant", "--timeline"}) {
    if (!f->values.count(required)) {
      *error = absl::StrCat(required, " is required");
      return false;
    }
  }
  if (f->mountpoint.empty()) {
    *error = "MOUNTPOINT is required";
    return false;
  }
  if (!f->read_only && (f->values.count("--lsn") || f->values.count("--at"))) {
    *error = "--lsn and --at need --read-only (a read-write mount always writes at the head)";
    return false;
  }
  if (f->values.count("--lsn") && f->values.count("--at")) {
    *error = "give --lsn or --at, not both";
    return false;
  }
  return true;
}

std::string ReadWholeFile(const std::string& path, bool* ok) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  *ok = static_cast<bool>(in);
  return ss.str();
}

// Reports the mount result to the waiting parent (when detached).
int g_report_fd = -1;
void Report(const std::string& message) {
  if (g_report_fd < 0) return;
  std::string m = message.empty() ? std::string("OK") : message;
  (void)!write(g_report_fd, m.data(), m.size());
  close(g_report_fd);
  g_report_fd = -1;
}

int Fail(const std::string& message) {
  fprintf(stderr, "pagefs: %s\n", message.c_str());
  Report(message);
  return 1;
}

int Run(const Flags& f) {
  auto get = [&](const char* name, const std::string& def = "") {
    auto it = f.values.find(name);
    return it == f.values.end() ? def : it->second;
  };
  std::string level = get("--log-level", "info");
  SetLogLevel(level == "debug"     ? LogLevel::kDebug
              : level == "warning" ? LogLevel::kWarning
              : level == "error"   ? LogLevel::kError
                                   : LogLevel::kInfo);

  pagefs::GrpcPageStoreOptions so;
  so.address = get("--pageserver");
  so.tenant_id = get("--tenant");
  so.timeline_id = get("--timeline");
  if (!get("--token-file").empty()) {
    bool ok;
    so.token = std::string(absl::StripAsciiWhitespace(ReadWholeFile(get("--token-file"), &ok)));
    if (!ok) return Fail(absl::StrCat("cannot read the token file ", get("--token-file")));
  }
  if (!get("--tls-ca").empty()) {
    bool ok;
    so.tls_ca_pem = ReadWholeFile(get("--tls-ca"), &ok);
    if (!ok) return Fail(absl::StrCat("cannot read the CA file ", get("--tls-ca")));
  }
  pagefs::PageFsOptions po;
  po.read_only = f.read_only;
  uint64_t n;
  if (!get("--lsn").empty()) {
    if (!absl::SimpleAtoi(get("--lsn"), &n) || n == 0) return Fail("--lsn must be a positive LSN");
    po.lsn = n;
  }
  if (!get("--at").empty()) {
    absl::Time t;
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, get("--at"), &t, &err)) {
      return Fail(absl::StrCat("--at: '", get("--at"), "' is not an RFC 3339 time (", err, ")"));
    }
    po.at_micros = absl::ToUnixMicros(t);
  }
  if (!get("--cache-mb").empty()) {
    if (!absl::SimpleAtoi(get("--cache-mb"), &n)) return Fail("--cache-mb must be a number");
    po.cache_bytes = n << 20;
  }
  if (!get("--dirty-mb").empty()) {
    if (!absl::SimpleAtoi(get("--dirty-mb"), &n) || n == 0 || n > 60) {
      return Fail("--dirty-mb must be 1..60");
    }
    po.dirty_limit_bytes = n << 20;
  }
  po.mount_uid = getuid();
  po.mount_gid = getgid();

  // Declared first so it outlives the filesystem's background flusher, which reports to it.
  pagefs::PageFsMetrics metrics;
  auto store = pagefs::NewGrpcPageStore(so);
  pagefs::PageFs pfs(store.get(), po);
  absl::Status s = pfs.Mount();
  if (!s.ok()) {
    return Fail(absl::StrCat("cannot mount tenant ", so.tenant_id, " timeline ", so.timeline_id,
                             " from ", so.address, ": ", s.ToString()));
  }

  if (!get("--metrics-listen").empty()) {
    s = metrics.Expose(get("--metrics-listen"));
    if (!s.ok()) return Fail(s.ToString());
  }
  pfs.set_commit_observer([&metrics](double seconds) { metrics.ObserveCommit(seconds); });
  pfs.StartBackgroundFlusher();
  pagefs::FuseContext ctx{&pfs, &metrics, 86400.0};

  std::string options =
      "allow_other,default_permissions,fsname=pagefs:" + so.timeline_id + ",subtype=pagefs";
  if (f.read_only) options += ",ro";
  std::vector<std::string> arg_storage = {"pagefs", "-o", options};
  std::vector<char*> argv;
  for (auto& a : arg_storage) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  fuse_session* se =
      fuse_session_new(&args, pagefs::PageFsOperations(), sizeof(fuse_lowlevel_ops), &ctx);
  if (se == nullptr) return Fail("cannot create the FUSE session (is /dev/fuse available?)");
  if (fuse_set_signal_handlers(se) != 0) return Fail("cannot install signal handlers");
  if (fuse_session_mount(se, f.mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return Fail(absl::StrCat("cannot mount on ", f.mountpoint,
                             " (it must be an existing directory; FUSE needs root or fuse3)"));
  }
  LogInfo("Mounted", {{"mountpoint", f.mountpoint},
                      {"tenant", so.tenant_id},
                      {"timeline", so.timeline_id},
                      {"mode", f.read_only ? "read-only" : "read-write"},
                      {"lsn", std::to_string(pfs.lsn())},
                      {"generation", std::to_string(pfs.generation())}});
  Report("");

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable cv;
  std::thread refresher([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!stop) {
      metrics.Refresh(pfs.Stats());
      cv.wait_for(lock, std::chrono::seconds(2));
    }
  });

  fuse_loop_config config;
  config.clone_fd = 0;
  config.max_idle_threads = 16;
  int loop_rc = fuse_session_loop_mt(se, &config);
  absl::Status flushed = pfs.FlushAll();
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
  }
  cv.notify_all();
  refresher.join();
  if (!flushed.ok()) {
    LogError("Flush at unmount failed", {{"error", flushed.ToString()}});
    return 1;
  }
  LogInfo("Unmounted", {{"mountpoint", f.mountpoint}});
  return loop_rc < 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  std::string error;
  if (!ParseFlags(argc, argv, &flags, &error)) {
    if (error.empty()) {
      fputs(kUsage, stdout);
      return 0;
    }
    fprintf(stderr, "pagefs: %s\n%s", error.c_str(), kUsage);
    return 2;
  }
  if (!flags.foreground) {
    // Detach only once mounted, so the caller learns whether the mount worked.
    int fds[2];
    if (pipe(fds) != 0) return Fail("pipe failed");
    pid_t pid = fork();
    if (pid < 0) return Fail("fork failed");
    if (pid > 0) {
      close(fds[1]);
      std::string msg;
      char buf[4096];
      ssize_t n;
      while ((n = read(fds[0], buf, sizeof(buf))) > 0) msg.append(buf, static_cast<size_t>(n));
      return msg == "OK" ? 0 : 1;
    }
    close(fds[0]);
    g_report_fd = fds[1];
    setsid();
    if (chdir("/") != 0) return 1;
  }
  return Run(flags);
}
