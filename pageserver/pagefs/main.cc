// pagefs: mounts one pageserver timeline as a POSIX directory for unmodified PostgreSQL.
//
//   pagefs --pageserver ADDR --tenant T --timeline X [--token-file F] [--tls-ca F]
//          [--read-only [--lsn L | --at RFC3339]] [--cache-mb N] [--dirty-mb N]
//          [--issue-ahead-mb N] [--metrics-listen ADDR]
//          [--prefetch-postgres DIR [--prefetch-blocks N]] [--wal-prefetch-mb N]
//          [--read-rpcs-in-flight N] [--read-ahead-kb N] [--wal-read-ahead-kb N]
//          [--foreground] [--log-level L] MOUNTPOINT
//
// A read-write mount acquires the timeline's writer generation (fencing any older writer); a
// read-only mount serves one fixed LSN. SIGTERM or an unmount flushes and exits 0; a failure to
// mount or to flush exits non-zero with a message. Without --foreground it detaches once mounted.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "cli/flags.h"
#include "cli/version.h"
#include "common/log.h"
#include "common/mutex_mode.h"
#include "common/text_util.h"
#include "pageserver/pagefs/catalog_prefetch.h"
#include "pageserver/pagefs/commit_channel.h"
#include "pageserver/pagefs/fuse_bridge.h"
#include "pageserver/pagefs/kernel_readahead.h"
#include "pageserver/pagefs/page_store.h"
#include "pageserver/pagefs/pagefs.h"
#include "pageserver/pagefs/pagefs_metrics.h"
#include "pageserver/pagefs/startup_read_file.h"
#include "pageserver/pagefs/startup_reads.h"
#include "pageserver/pagefs/wal_prefetch.h"

namespace {

using namespace pgbranch;

struct Flags {
  std::string pageserver, tenant, timeline, token_file, tls_ca, at, metrics_listen;
  std::string commit_channel;
  std::string prefetch_postgres;
  uint32_t prefetch_blocks = 4;
  uint32_t read_rpcs_in_flight = pagefs::PageFsOptions{}.read_rpcs_in_flight;
  uint32_t wal_prefetch_mb = 64;
  uint32_t learn_startup_seconds = 2;
  uint32_t read_ahead_kb = 2048;
  uint32_t wal_read_ahead_kb = pagefs::PageFsOptions{}.stream_readahead_pages * 8;
  std::string log_level = "info";
  uint64_t lsn = 0;  // 0: not given
  std::optional<uint64_t> cache_mb, dirty_mb, issue_ahead_mb;
  bool read_only = false;
  bool foreground = false;
  bool no_writeback_cache = false;
  bool wal_direct_io = false;
  bool no_wal_commit_at_write = false;
  std::vector<std::string> volatile_files;
  std::string mountpoint;
};

// The command line (cli/flags.h): everything is validated here, before anything is mounted.
void DefineFlags(CLI::App& app, Flags* f) {
  cli::ConfigureApp(app);
  app.description(
      "Mounts one pageserver timeline as a POSIX directory for unmodified PostgreSQL.\n"
      "A read-write mount acquires the timeline's writer generation (fencing any older writer);\n"
      "a read-only mount serves one fixed LSN. SIGTERM or an unmount flushes and exits 0.");
  app.set_version_flag("--version", cli::Version(), "print the version and exit");
  app.add_option("--pageserver", f->pageserver,
                 "pageserver address, host:port (or unix:PATH on the same host)")
      ->required()
      ->type_name("ADDR");
  app.add_option("--commit-channel", f->commit_channel,
                 "send commits over the pageserver's commit channel, unix:PATH (its "
                 "--commit-socket, same host): no gRPC thread handoffs on an fsync's path; "
                 "everything else stays on --pageserver")
      ->type_name("unix:PATH")
      ->check([](const std::string& v) -> std::string {
        absl::StatusOr<std::string> p = pagefs::CommitChannelPath(v);
        return p.ok() ? "" : std::string(p.status().message());
      });
  app.add_option("--tenant", f->tenant, "tenant ID")->required()->type_name("T");
  app.add_option("--timeline", f->timeline, "timeline ID")->required()->type_name("X");
  app.add_option("--token-file", f->token_file, "bearer token for the pageserver")->type_name("F");
  app.add_option("--tls-ca", f->tls_ca, "connect with TLS, trusting this CA")->type_name("F");
  auto* ro = app.add_flag("--read-only", f->read_only,
                          "mount read-only at one LSN (the head if "
                          "neither --lsn nor --at)");
  auto* lsn = app.add_option("--lsn", f->lsn, "with --read-only: the LSN (0/1A2B3C8 or decimal)")
                  ->transform(cli::LsnValidator())
                  ->check(CLI::PositiveNumber)
                  ->needs(ro);
  app.add_option("--at", f->at, "with --read-only: the timeline as of this RFC 3339 time")
      ->check(cli::Rfc3339Validator())
      ->needs(ro)
      ->excludes(lsn);
  app.add_option("--cache-mb", f->cache_mb, "page cache size")->type_name("N");
  app.add_option("--dirty-mb", f->dirty_mb, "dirty pages held before a commit (1..60)")
      ->type_name("N")
      ->check(CLI::Range(1, 60));
  app.add_option("--issue-ahead-mb", f->issue_ahead_mb,
                 "a file buffering more is issued in the background (0: never)")
      ->type_name("N")
      ->check(CLI::Range(0, 60));
  app.add_option("--metrics-listen", f->metrics_listen, "serve Prometheus metrics on ADDR")
      ->type_name("ADDR");
  auto* prefetch =
      app.add_option(
             "--prefetch-postgres", f->prefetch_postgres,
             "once mounted, prefetch in the background what the start of a server on the "
             "PostgreSQL data directory DIR (relative to the mount) and its first connections "
             "read: the pages the timeline's last start read (see --learn-startup-seconds), "
             "else the system catalogs' first pages")
          ->type_name("DIR");
  app.add_option("--prefetch-blocks", f->prefetch_blocks,
                 "with --prefetch-postgres: pages prefetched per catalog file (default 4)")
      ->type_name("N")
      ->check(CLI::Range(1, 1024))
      ->needs(prefetch);
  app.add_option("--learn-startup-seconds", f->learn_startup_seconds,
                 "with --prefetch-postgres on a read-write mount: record the pages read in the "
                 "first N seconds and keep them in the timeline, where the next start of it and "
                 "of its branches prefetches exactly those instead of the catalogs' first pages "
                 "(0: off; default 2)")
      ->type_name("N")
      ->check(CLI::Range(0, 600))
      ->needs(prefetch);
  app.add_option("--wal-prefetch-mb", f->wal_prefetch_mb,
                 "with --prefetch-postgres: how much of the WAL from the last checkpoint's redo "
                 "point (what crash recovery replays) is read ahead from the mount on, in MiB "
                 "(0: none; default 64)")
      ->type_name("N")
      ->check(CLI::Range(0, 4096));
  app.add_option("--read-rpcs-in-flight", f->read_rpcs_in_flight,
                 absl::StrCat("Read RPCs to the pageserver at once, each batching the pages the "
                              "kernel asked for meanwhile (1..64, default ",
                              f->read_rpcs_in_flight, ")"))
      ->type_name("N")
      ->check(CLI::Range(1, 64));
  app.add_option("--read-ahead-kb", f->read_ahead_kb,
                 absl::StrCat("the kernel's read-ahead window for the mount's files, in KiB (0: "
                              "the kernel's default, 128; needs root; default ",
                              f->read_ahead_kb,
                              "): a sequential reader's READs come as up to 1 MiB each, sent "
                              "ahead of it, as crash recovery reads WAL"))
      ->type_name("N")
      ->check(CLI::Range(0, 65536));
  app.add_option("--wal-read-ahead-kb", f->wal_read_ahead_kb,
                 absl::StrCat("how far ahead of a sequential reader of a WAL file (crash "
                              "recovery) pagefs reads in the background, in KiB (0: as other "
                              "files; default ",
                              f->wal_read_ahead_kb, ")"))
      ->type_name("N")
      ->check(CLI::Range(0, 65536));
  app.add_flag("--no-writeback-cache", f->no_writeback_cache,
               "send every write(2) to pagefs (default: the kernel caches writes and sends them "
               "in large WRITEs)");
  app.add_flag("--wal-direct-io", f->wal_direct_io,
               "open PostgreSQL's WAL files (pg_wal/*) with direct I/O: one round trip fewer per "
               "WAL fsync, but every WAL read (recovery, walsender) reaches pagefs (default: "
               "cached like other files)");
  app.add_flag("--no-wal-commit-at-write", f->no_wal_commit_at_write,
               "buffer the WRITEs of PostgreSQL's WAL files (pg_wal/*) until their FSYNC like "
               "other files' (default: a WAL WRITE issues its commit at once, so the pageserver "
               "writes and syncs it while the kernel sends the FSYNC)");
  app.add_option("--volatile-file", f->volatile_files,
                 "a file (relative to the mount) whose durability nobody depends on, such as "
                 "PostgreSQL's pgdata/postmaster.pid: its fsync issues its data in order like any "
                 "fsync but returns without waiting for the pageserver (repeatable)")
      ->type_name("PATH");
  app.add_flag("-f,--foreground", f->foreground,
               "stay in the foreground (default: detach once "
               "mounted)");
  app.footer(
      "pagefs --spare DIR [ROOM] (alone): wait on descriptor 3 for a log file and the arguments "
      "(each followed by a NUL), then append the output to the log and run with them; a spare "
      "compute agent serving DIR starts pagefs so ahead of its mount.");
  app.add_option("--log-level", f->log_level, "debug, info, warning or error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}));
  app.add_option("MOUNTPOINT", f->mountpoint, "an existing directory")->required();
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
  const std::string& level = f.log_level;
  SetLogLevel(level == "debug"     ? LogLevel::kDebug
              : level == "warning" ? LogLevel::kWarning
              : level == "error"   ? LogLevel::kError
                                   : LogLevel::kInfo);

  pagefs::GrpcPageStoreOptions so;
  so.address = f.pageserver;
  so.tenant_id = f.tenant;
  so.timeline_id = f.timeline;
  so.commit_channel = f.commit_channel;
  if (!f.token_file.empty()) {
    bool ok;
    so.token = std::string(absl::StripAsciiWhitespace(ReadWholeFile(f.token_file, &ok)));
    if (!ok) return Fail(absl::StrCat("cannot read the token file ", f.token_file));
  }
  if (!f.tls_ca.empty()) {
    bool ok;
    so.tls_ca_pem = ReadWholeFile(f.tls_ca, &ok);
    if (!ok) return Fail(absl::StrCat("cannot read the CA file ", f.tls_ca));
  }
  pagefs::PageFsOptions po;
  po.read_only = f.read_only;
  if (f.lsn != 0) po.lsn = f.lsn;
  if (!f.at.empty()) {
    absl::Time t;
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, f.at, &t, &err)) return Fail("--at: " + err);
    po.at_micros = absl::ToUnixMicros(t);
  }
  if (f.cache_mb) po.cache_bytes = *f.cache_mb << 20;
  if (f.dirty_mb) po.dirty_limit_bytes = *f.dirty_mb << 20;
  if (f.issue_ahead_mb) po.issue_ahead_bytes = *f.issue_ahead_mb << 20;
  po.read_rpcs_in_flight = f.read_rpcs_in_flight;
  po.stream_readahead_pages = f.wal_read_ahead_kb / 8;
  po.mount_uid = getuid();
  po.mount_gid = getgid();

  // Declared first so it outlives the filesystem's background flusher, which reports to it.
  pagefs::PageFsMetrics metrics;
  so.read_observer = [&metrics](const char* rpc, double seconds, size_t keys) {
    metrics.ObserveStoreRead(rpc, seconds, keys);
  };
  auto store = pagefs::NewGrpcPageStore(so);
  pagefs::PageFs pfs(store.get(), po);
  absl::Status s = pfs.Mount();
  if (!s.ok()) {
    return Fail(absl::StrCat("cannot mount tenant ", so.tenant_id, " timeline ", so.timeline_id,
                             " from ", so.address, ": ", s.ToString()));
  }

  if (!f.metrics_listen.empty()) {
    s = metrics.Expose(f.metrics_listen);
    if (!s.ok()) return Fail(s.ToString());
  }
  pfs.set_commit_observer([&metrics](double seconds) { metrics.ObserveCommit(seconds); });
  pfs.StartBackgroundFlusher();
  pagefs::FuseContext ctx{&pfs, &metrics, 86400.0};
  ctx.allow_writeback_cache = !f.no_writeback_cache;
  ctx.wal_direct_io = f.wal_direct_io;
  ctx.wal_commit_at_write = !f.no_wal_commit_at_write;
  pagefs::VolatileFiles volatile_files(f.volatile_files);
  if (!f.read_only && !volatile_files.empty()) ctx.volatile_files = &volatile_files;
  // What this start reads, recorded before the first request arrives (startup_reads.h).
  constexpr uint64_t kMaxStartupPages = 2048;  // 16 MiB: a start reads ~300-400 pages
  std::unique_ptr<pagefs::StartupReads> startup_reads;
  if (!f.read_only && !f.prefetch_postgres.empty() && f.learn_startup_seconds != 0) {
    startup_reads = std::make_unique<pagefs::StartupReads>(kMaxStartupPages);
    ctx.startup_reads = startup_reads.get();
  }

  // No default_permissions: pagefs checks permissions itself (access_check.h), so the kernel
  // needs no GETATTR of a directory before each namespace change in it.
  std::string options = "allow_other,fsname=pagefs:" + so.timeline_id + ",subtype=pagefs";
  if (f.read_only) options += ",ro";
  std::vector<std::string> arg_storage = {"pagefs", "-o", options};
  std::vector<char*> argv;
  for (auto& a : arg_storage) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  fuse_session* se =
      fuse_session_new(&args, pagefs::PageFsOperations(), sizeof(fuse_lowlevel_ops), &ctx);
  if (se == nullptr) return Fail("cannot create the FUSE session (is /dev/fuse available?)");
  if (fuse_set_signal_handlers(se) != 0) return Fail("cannot install signal handlers");
  // The mount point as mountinfo names it (absolute, no symlinks), resolved before the mount:
  // after it, a path lookup through the mount would wait for this process's own FUSE loop.
  char resolved[PATH_MAX];
  const std::string real_mountpoint =
      ::realpath(f.mountpoint.c_str(), resolved) != nullptr ? resolved : f.mountpoint;
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
  // The kernel's read-ahead window, raised on the first request after INIT (FuseContext::
  // after_init; the INIT reply can only lower it). Never through the mount itself: see
  // kernel_readahead.h.
  if (f.read_ahead_kb != 0) {
    std::ifstream mountinfo("/proc/self/mountinfo");
    std::stringstream text;
    text << mountinfo.rdbuf();
    absl::StatusOr<std::string> device =
        pagefs::KernelReadAhead::DeviceOf(text.str(), real_mountpoint);
    if (!device.ok()) {
      LogWarning("Cannot set the kernel's read-ahead", {{"error", device.status().ToString()}});
    } else {
      ctx.after_init = [device = *device, kb = f.read_ahead_kb] {
        absl::Status ra = pagefs::KernelReadAhead::Set(device, kb);
        if (!ra.ok()) LogWarning("Cannot set the kernel's read-ahead", {{"error", ra.ToString()}});
      };
      ctx.after_init_pending = true;
    }
  }
  Report("");
  // After the report: the mount is usable at once; reads that miss meanwhile fetch alone.
  // Crash recovery's WAL, from the last checkpoint's redo point, read ahead at the mount's own
  // priority (the replay waits for these pages; the catalogs only for the first connection).
  std::thread wal_prefetch;
  if (!f.prefetch_postgres.empty() && f.wal_prefetch_mb != 0) {
    wal_prefetch = std::thread([&pfs, &f] {
      auto t0 = std::chrono::steady_clock::now();
      uint64_t pages = 0;
      std::vector<pagefs::WalReadAhead> plan =
          pagefs::PostgresWalPlan(&pfs, f.prefetch_postgres, uint64_t{f.wal_prefetch_mb} << 20);
      for (const pagefs::WalReadAhead& w : plan) {
        pfs.ReadAhead(w.ino, w.from_block, w.to_block);
        pages += w.to_block - w.from_block;
      }
      LogInfo("WAL read-ahead queued",
              {{"segments", std::to_string(plan.size())},
               {"pages", std::to_string(pages)},
               {"plan_ms", std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::steady_clock::now() - t0)
                                              .count())}});
    });
  }
  if (!f.prefetch_postgres.empty()) {
    // Exactly what the last start of this timeline (or of an ancestor, before the branch point)
    // read, in its order, if it left the file; else the catalogs' first pages.
    pfs.StartPrefetch([&pfs, &f](bool* urgent) {
      std::vector<pagefs::StartupReads::File> learned =
          pagefs::StartupReads::Decode(pagefs::StartupReadFile::Load(&pfs));
      if (!learned.empty()) {
        *urgent = true;
        // The first files (read first: pg_control, postgresql.auto.conf, PG_VERSION, the commit
        // log, within ~10 ms of the mount) are fetched before the rest is resolved, which lists
        // the databases' directories first (a round trip or more each).
        const size_t head = std::min<size_t>(learned.size(), 8);
        pfs.Prefetch(pagefs::StartupReadFile::Plan(
            &pfs,
            std::vector<pagefs::StartupReads::File>(learned.begin(), learned.begin() + head)));
        learned.erase(learned.begin(), learned.begin() + head);
        return pagefs::StartupReadFile::Plan(&pfs, learned);
      }
      return pagefs::PostgresCatalogPlan(&pfs, f.prefetch_postgres, f.prefetch_blocks);
    });
  }
  // After --learn-startup-seconds: the pages read, by path, into the timeline for the next
  // start (unless the file already says the same). Skipped if the mount ends sooner.
  std::mutex learn_mu;
  std::condition_variable learn_cv;
  bool learn_stop = false;
  std::thread learner;
  if (startup_reads) {
    learner = std::thread([&] {
      {
        std::unique_lock<std::mutex> lock(learn_mu);
        if (learn_cv.wait_for(lock, std::chrono::seconds(f.learn_startup_seconds),
                              [&] { return learn_stop; })) {
          startup_reads->Stop();
          return;
        }
      }
      uint64_t pages = 0;
      int err =
          pagefs::StartupReadFile::Keep(&pfs, f.prefetch_postgres, startup_reads->Stop(), &pages);
      if (err == 0 && pages == 0) return;  // unchanged, or nothing read: nothing written
      // The kernel may hold a negative entry for either name (someone looked before): it would
      // hide the file until the entry timeout. (From this thread, not a FUSE worker's: the
      // notification waits for nothing of this process.)
      for (const char* name :
           {pagefs::StartupReads::kFileName, pagefs::StartupReadFile::kTempName}) {
        fuse_lowlevel_notify_inval_entry(se, FUSE_ROOT_ID, name, strlen(name));
      }
      if (err != 0) {
        LogWarning("Cannot keep the pages this start read", {{"error", strerror(err)}});
        return;
      }
      LogInfo("Kept the pages this start read", {{"pages", std::to_string(pages)}});
    });
  }

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

  // Up to 32 threads serve requests: every background read (read-ahead, PostgreSQL's prefetch;
  // the kernel keeps up to max_background pending, see fuse_bridge.cc) needs one to reach the
  // ReadBatcher, where concurrent misses share an RPC. libfuse's default is 10.
  // Once started, a thread stays (idle limit = the thread limit): under load (fsyncs waiting for
  // their commit, bursts of writeback WRITEs) libfuse would otherwise start and end threads all
  // the time, each start mapping and faulting in a fresh 1 MiB request buffer (TPC-B: ~3% of
  // pagefs's CPU in page faults and thread starts; docs/pagefs.md "Where TPC-B's CPU goes").
  constexpr unsigned kMaxThreads = 32;
  fuse_loop_config* config = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(config, 0);
  fuse_loop_cfg_set_idle_threads(config, kMaxThreads);
  fuse_loop_cfg_set_max_threads(config, kMaxThreads);
  int loop_rc = fuse_session_loop_mt(se, config);
  fuse_loop_cfg_destroy(config);
  if (learner.joinable()) {
    {
      std::lock_guard<std::mutex> lock(learn_mu);
      learn_stop = true;
    }
    learn_cv.notify_all();
    learner.join();
  }
  absl::Status flushed = pfs.FlushAll();
  fuse_session_unmount(se);
  if (wal_prefetch.joinable()) wal_prefetch.join();
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

// `pagefs --spare DIR [ROOM]` (compute/spare_pagefs.h): started ahead of its mount by a spare
// compute agent serving DIR (named only so that the process's command line says whose it is; ROOM,
// blanks, makes room for the real arguments there, RetitleProcess), it reads from
// descriptor 3 until the end a log file and its arguments (each NUL-terminated), appends its output
// to that log and runs as if started with them. The end with nothing read (the agent did not need
// it, or died): exit 0. Fills `storage` with the new argv.
std::optional<int> TakeSpareArguments(std::vector<std::string>* storage, const char* argv0) {
  std::string message;
  char buf[4096];
  for (;;) {
    ssize_t n = read(3, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      fprintf(stderr, "pagefs: --spare: cannot read descriptor 3: %s\n", strerror(errno));
      return 2;
    }
    if (n == 0) break;
    message.append(buf, static_cast<size_t>(n));
  }
  close(3);
  if (message.empty()) return 0;
  std::optional<std::vector<std::string>> list = pgbranch::DecodeArgList(message);
  if (!list || list->empty() || (*list)[0][0] != '/') {
    fprintf(stderr,
            "pagefs: --spare reads an absolute log path and the arguments, each followed by a "
            "NUL, from descriptor 3\n");
    return 2;
  }
  int fd = open((*list)[0].c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    fprintf(stderr, "pagefs: cannot open %s: %s\n", (*list)[0].c_str(), strerror(errno));
    return 2;
  }
  dup2(fd, 1);
  dup2(fd, 2);
  close(fd);
  storage->assign(list->begin(), list->end());
  (*storage)[0] = argv0;
  return std::nullopt;
}

// Rewrites this process's command line (/proc/self/cmdline, what ps and local mode's process
// scans read) to `args`, in place over the original argv strings, which the kernel keeps
// contiguous: the spare was started with a last argument of blanks to make room. The rest of the
// area is zeroed (so the last byte stays a NUL and the kernel reads no further). Left alone if
// the strings are not contiguous or `args` do not fit.
void RetitleProcess(int argc, char** argv, const std::vector<std::string>& args) {
  char* start = argv[0];
  char* end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
  for (int i = 1; i < argc; ++i) {
    if (argv[i] != argv[i - 1] + strlen(argv[i - 1]) + 1) return;
  }
  size_t need = 0;
  for (const std::string& a : args) need += a.size() + 1;
  if (need > static_cast<size_t>(end - start)) return;
  memset(start, 0, static_cast<size_t>(end - start));
  char* p = start;
  for (const std::string& a : args) {
    memcpy(p, a.data(), a.size());
    p += a.size() + 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  pgbranch::UseReleaseMutexMode();
  std::vector<std::string> spare_args;
  std::vector<char*> spare_argv;
  if ((argc == 3 || argc == 4) && strcmp(argv[1], "--spare") == 0) {
    if (std::optional<int> exit_code = TakeSpareArguments(&spare_args, argv[0])) return *exit_code;
    RetitleProcess(argc, argv, spare_args);
    for (std::string& a : spare_args) spare_argv.push_back(a.data());
    spare_argv.push_back(nullptr);
    argc = static_cast<int>(spare_args.size());
    argv = spare_argv.data();
  }
  Flags flags;
  CLI::App app("", "pagefs");
  DefineFlags(app, &flags);
  if (std::optional<int> exit_code = cli::ParseCommandLine(app, argc, argv)) return *exit_code;
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
