// Section 4: crash-recovery speed. PostgreSQL writes X MiB of WAL after a checkpoint (pgbench
// TPC-B-like transactions, with max_wal_size and checkpoint_timeout large enough that nothing is
// checkpointed meanwhile), the postmaster and its children are killed with SIGKILL, and the time
// from the restart to the first accepted connection is measured: replay of the WAL plus the
// end-of-recovery checkpoint. On pagefs and on the local disk, one after the other, on the same
// machine (DESIGN.md section 7: pagefs replays at >= 0.5x the local disk's speed).
//
// Two crashes on each side: of the postmaster only (pagefs keeps running, with its page cache and
// the kernel's cache of the FUSE files), and of the whole compute (pagefs is killed too and
// mounted anew, every cache empty, as when a compute pod restarts; on the local disk the OS page
// cache of the data directory is dropped). The pagefs operations and pageserver RPCs of each
// restart are printed below the table (the profile).
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "tests/bench/pagefs/recovery_phases.h"
#include "tests/bench/pagefs/sections.h"

namespace pgbranch::pagefs_bench {
namespace {

// ", 123 keys read (4.1 per RPC), FUSE reads of 8 KiB: 700, ..." between two scrapes.
std::string ReadShape(const std::string& before, const std::string& after) {
  auto get = [](const std::string& text, const std::string& metric, const std::string& labels) {
    double v = MetricValue(text, metric, labels);
    return v < 0 ? 0 : v;
  };
  auto delta = [&](const std::string& metric, const std::string& labels) {
    return get(after, metric, labels) - get(before, metric, labels);
  };
  double keys = delta("pgbranch_pagefs_store_read_keys_total", "rpc=\"read\"");
  double rpcs = delta(kRpcCount, "rpc=\"read\"");
  std::string out = absl::StrFormat("; %.0f keys read (%.1f per read RPC); FUSE read sizes:", keys,
                                    rpcs > 0 ? keys / rpcs : 0);
  const std::string bucket = "pgbranch_pagefs_read_request_bytes_bucket";
  double below = 0;
  for (const char* le :
       {"4096", "8192", "16384", "32768", "65536", "131072", "262144", "524288", "1048576"}) {
    double n = delta(bucket, absl::StrCat("le=\"", le, "\""));
    if (n - below >= 1) absl::StrAppend(&out, absl::StrFormat(" <=%s: %.0f", le, n - below));
    below = n;
  }
  return out;
}

// "redo done at 0/5000028 system usage: CPU: user: 0.31 s, system: 0.09 s, elapsed: 0.52 s".
double RedoElapsed(const std::string& log) {
  size_t p = log.rfind("redo done at");
  if (p == std::string::npos) return -1;
  size_t e = log.find("elapsed: ", p);
  if (e == std::string::npos) return -1;
  return strtod(log.c_str() + e + 9, nullptr);
}

// Drops the local disk's OS page cache of every file under `dir` (after writing it back): the
// local-disk counterpart of a fresh pagefs mount.
void DropLocalCache(const std::string& dir) {
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    syncfs(dfd);
    close(dfd);
  }
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    int fd = open(it->path().c_str(), O_RDONLY);
    if (fd < 0) continue;
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
  }
}

// "41.2" (MiB of WAL replayed) or "-".
std::string MiB(const RecoveryPhases& p) {
  return p.wal_bytes < 0 ? std::string("-") : absl::StrFormat("%.1f", p.wal_bytes / 1048576);
}

struct Run {
  double wal_mib = 0;
  double restart_s = 0;
  double redo_s = -1;
  double mount_s = 0;     // cold pagefs: the new mount
  RecoveryPhases phases;  // from the server log's timestamps
  std::string profile;
};

// Writes ~`target_mib` of WAL after the latest checkpoint's redo point with pgbench; the MiB.
absl::StatusOr<double> WriteWal(PgCluster& pg, double target_mib) {
  std::string redo, bytes;
  absl::Status s = pg.Sql("SELECT redo_lsn FROM pg_control_checkpoint()", &redo);
  if (!s.ok()) return s;
  for (int round = 0; round < 1000; ++round) {
    auto out = pg.Pgbench({"-c", "4", "-j", "2", "-t", "200"});
    if (!out.ok()) return out.status();
    s = pg.Sql(
        absl::StrCat("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '", redo, "')::bigint"),
        &bytes);
    if (!s.ok()) return s;
    if (strtod(bytes.c_str(), nullptr) >= target_mib * 1048576) break;
  }
  return strtod(bytes.c_str(), nullptr) / 1048576;
}

}  // namespace

absl::Status RunRecoveryBench(const BenchConfig& config) {
  const int scale = config.quick ? 2 : 10;
  const double target_mib = config.quick ? 8 : 40;
  PagefsEnv env(config);
  absl::Status s = env.Start("recovery");
  if (!s.ok()) return s;
  s = env.CreateTimeline("recovery", "");
  if (!s.ok()) return s;
  auto metrics_port = FreeLoopbackPort();
  if (!metrics_port.ok()) return metrics_port.status();
  std::string mnt = env.dir() + "/mnt-recovery";
  // pagefs mounted as the compute agent mounts it (compute/pagefs_process.cc): with the prefetch
  // of PostgreSQL's catalogs and of the WAL crash recovery replays (--prefetch-postgres).
  const std::vector<std::string> compute_args = {"--prefetch-postgres", "pgdata"};
  auto mount = env.Mount("recovery", mnt, *metrics_port, compute_args);
  if (!mount.ok()) return mount.status();

  // [side][variant]: side 0 local disk, 1 pagefs; variant 0 warm (only PostgreSQL died), 1 cold
  // (the whole compute died: pagefs killed and mounted anew / the local OS cache dropped).
  Run runs[2][2];
  const char* keep_logs = getenv("PGBRANCH_BENCH_KEEP_LOGS");
  const char* prefetch_env = getenv("PGBRANCH_BENCH_PAGEFS_RECOVERY_PREFETCH");
  const std::string pagefs_recovery_prefetch = prefetch_env != nullptr ? prefetch_env : "off";
  for (int i = 0; i < 2; ++i) {
    const char* where = i == 0 ? "local disk" : "pagefs";
    auto port = FreeLoopbackPort();
    if (!port.ok()) return port.status();
    std::string data = i == 0 ? env.dir() + "/local/pgdata" : mnt + "/pgdata";
    std::string log = absl::StrCat(env.dir(), "/recovery-", i, ".log");
    PgCluster pg(data, absl::StrCat(env.dir(), "/sock-", i), *port, log);
    Progress(absl::StrCat("recovery: initdb + pgbench -i -s ", scale, " on ", where));
    auto t = pg.InitDb();
    if (!t.ok()) return t.status();
    std::vector<std::string> conf = {"listen_addresses = ''", "shared_buffers = 128MB",
                                     "max_wal_size = 8GB",    "checkpoint_timeout = 1d",
                                     "max_connections = 20",  "log_line_prefix = '%m [%p] '",
                                     "log_checkpoints = on"};
    // With PGBRANCH_BENCH_KEEP_LOGS=DIR the server logs (copied there at the end) also say where
    // a start spends its time: the data directory's sync, redo and the end-of-recovery checkpoint.
    if (keep_logs != nullptr) conf.push_back("log_startup_progress_interval = 100ms");
    // pagefs runs PostgreSQL as pgbranch's computes do (compute/storage_settings.h): without the
    // recovery prefetch, whose look-ahead posix_fadvise reads of pages that redo then restores
    // from full-page images are each a pageserver round trip on pagefs. The local disk keeps
    // PostgreSQL's default. PGBRANCH_BENCH_PAGEFS_RECOVERY_PREFETCH=try|on|off overrides it (A/B).
    if (i == 1) {
      for (std::string& l : PagefsComputeSettings()) {
        if (absl::StartsWith(l, "recovery_prefetch ")) continue;
        conf.push_back(std::move(l));
      }
      conf.push_back(absl::StrCat("recovery_prefetch = ", pagefs_recovery_prefetch));
    }
    // PGBRANCH_BENCH_RECOVERY_CONF="name = value;...": more settings, on both sides alike.
    if (const char* extra = getenv("PGBRANCH_BENCH_RECOVERY_CONF")) {
      for (absl::string_view line : absl::StrSplit(extra, ';', absl::SkipWhitespace())) {
        conf.emplace_back(line);
      }
    }
    s = pg.Configure(conf);
    if (s.ok()) s = pg.Start();
    if (!s.ok()) return s;
    auto out = pg.Pgbench({"-i", "-q", "-s", std::to_string(scale)});
    if (!out.ok()) return out.status();
    s = pg.Sql("CHECKPOINT");
    if (!s.ok()) return s;
    for (int v = 0; v < 2; ++v) {
      Run& run = runs[i][v];
      Progress(absl::StrCat("recovery: writing ", target_mib, " MiB of WAL on ", where));
      auto wal = WriteWal(pg, target_mib);
      if (!wal.ok()) return wal.status();
      run.wal_mib = *wal;
      Progress(absl::StrCat("recovery: kill -9 and restart on ", where,
                            v == 0 ? "" : " (cold: caches dropped)"));
      s = pg.Crash();
      if (!s.ok()) return s;
      if (v == 1 && i == 0) DropLocalCache(data);
      if (v == 1 && i == 1) {
        (*mount)->Kill();
        double m0 = NowSeconds();
        mount = env.Mount("recovery", mnt, *metrics_port, compute_args);
        if (!mount.ok()) return mount.status();
        run.mount_s = NowSeconds() - m0;
      }
      std::string metrics_before;
      if (i == 1) {
        auto m = HttpGet(*metrics_port, "/metrics");
        metrics_before = m.ok() ? *m : "";
      }
      size_t log_before = FileTail(log + ".server", 0).size();
      auto restart = pg.StartUntilConnected(600);
      if (!restart.ok()) return restart.status();
      run.restart_s = *restart;
      if (keep_logs != nullptr) {
        // What PostgreSQL's recovery prefetcher did (recovery_prefetch), into the server log.
        std::string stats;
        (void)pg.Sql(
            "SELECT format('recovery prefetch: prefetch=%s hit=%s skip_init=%s skip_new=%s "
            "skip_fpw=%s skip_rep=%s', prefetch, hit, skip_init, skip_new, skip_fpw, skip_rep) "
            "FROM pg_stat_recovery_prefetch",
            &stats);
        Progress(stats);
      }
      std::string server_log = FileTail(log + ".server", 0);
      std::string restart_log = server_log.substr(std::min(log_before, server_log.size()));
      run.redo_s = RedoElapsed(restart_log);
      run.phases = ParseRecoveryPhases(restart_log);
      if (i == 1) {
        auto m = HttpGet(*metrics_port, "/metrics");
        std::string after = m.ok() ? *m : "";
        run.profile = absl::StrCat(
            v == 0 ? "warm" : "cold", " pagefs during the restart: operations: ",
            Activity(metrics_before, after, kOpCount, kOpSum, "op"),
            "; pageserver RPCs: ", Activity(metrics_before, after, kRpcCount, kRpcSum, "rpc"),
            Commits(metrics_before, after), ReadShape(metrics_before, after));
      }
    }
    s = pg.Stop();
    if (!s.ok()) return s;
    if (keep_logs != nullptr) {
      std::error_code ec;
      std::filesystem::create_directories(keep_logs, ec);
      std::filesystem::copy_file(
          log + ".server",
          absl::StrCat(keep_logs, "/recovery-", i == 0 ? "local" : "pagefs", ".log"),
          std::filesystem::copy_options::overwrite_existing, ec);
    }
  }

  Table table(absl::StrFormat("crash recovery after kill -9: pgbench -s %d, ~%.0f MiB of WAL after "
                              "a checkpoint",
                              scale, target_mib),
              {"restart after kill -9 of", "WAL", "local: restart (redo)", "pagefs: restart (redo)",
               "local replay speed", "pagefs replay speed", "pagefs/local", "target", "ok?"});
  auto redo = [](double x) { return x < 0 ? std::string("n/a") : Secs(x); };
  for (int v = 0; v < 2; ++v) {
    double speed[2];
    for (int i = 0; i < 2; ++i) speed[i] = runs[i][v].wal_mib / runs[i][v].restart_s;
    double ratio = speed[1] / speed[0];
    table.Add({v == 0 ? "postmaster only (caches warm)"
                      : "whole compute (pagefs remounted / local cache dropped)",
               absl::StrFormat("%.1f / %.1f MiB", runs[0][v].wal_mib, runs[1][v].wal_mib),
               absl::StrCat(Secs(runs[0][v].restart_s), " (", redo(runs[0][v].redo_s), ")"),
               absl::StrCat(Secs(runs[1][v].restart_s), " (", redo(runs[1][v].redo_s), ")"),
               absl::StrFormat("%.1f MiB/s", speed[0]), absl::StrFormat("%.1f MiB/s", speed[1]),
               Ratio(ratio), ">= 0.5x", OkIf(ratio >= 0.5)});
  }
  table.Note(absl::StrCat(
      "restart = pg_ctl start until a connection succeeds: crash recovery (redo, as PostgreSQL "
      "logs it) plus the end-of-recovery checkpoint; replay speed = WAL / restart; "
      "shared_buffers 128MB, fsync on, full_page_writes on; kill -9 hits the postmaster and all "
      "its children; recovery_prefetch: local PostgreSQL's default (try), pagefs ",
      pagefs_recovery_prefetch,
      " (as pgbranch's computes; also wal_init_zero = off there); pagefs mounted with "
      "--prefetch-postgres pgdata, as computes mount it (catalogs, and the WAL from the redo "
      "point)"));
  table.Note(absl::StrCat("cold pagefs: the new mount took ", Secs(runs[1][1].mount_s),
                          " (not counted in the restart)"));
  table.Note(runs[1][0].profile);
  table.Note(runs[1][1].profile);
  table.Print();

  // The phases, from the log's timestamps: redo alone (what the issue's ">= 0.5x local replay
  // speed" is about) and the end-of-recovery checkpoint, which the restart above also contains.
  Table phases(
      "crash recovery phases (from the server log): redo and the end-of-recovery "
      "checkpoint",
      {"restart after kill -9 of", "local: redo", "pagefs: redo", "local: checkpoint",
       "pagefs: checkpoint", "local replay speed", "pagefs replay speed", "pagefs/local", "target",
       "ok?"});
  auto secs = [](double x) { return x < 0 ? std::string("-") : Secs(x); };
  auto speed = [](const RecoveryPhases& p) {
    double b = p.ReplayBytesPerSecond();
    return b < 0 ? std::string("-") : absl::StrFormat("%.1f MiB/s", b / 1048576);
  };
  for (int v = 0; v < 2; ++v) {
    const RecoveryPhases& l = runs[0][v].phases;
    const RecoveryPhases& p = runs[1][v].phases;
    double lb = l.ReplayBytesPerSecond(), pb = p.ReplayBytesPerSecond();
    bool known = lb > 0 && pb >= 0;
    phases.Add({v == 0 ? "postmaster only (warm)" : "whole compute (cold)", secs(l.redo_s),
                secs(p.redo_s), secs(l.checkpoint_s), secs(p.checkpoint_s), speed(l), speed(p),
                known ? Ratio(pb / lb) : "-", ">= 0.5x", known ? OkIf(pb / lb >= 0.5) : "-"});
  }
  phases.Note(absl::StrFormat(
      "redo = \"redo starts at\" .. \"redo done at\" (log_line_prefix %%m, ms resolution); "
      "replay speed = the WAL between the two lines' LSNs (local %s / %s MiB, pagefs %s / %s "
      "MiB, warm / cold) / redo; checkpoint = \"checkpoint starting: end-of-recovery\" .. "
      "\"checkpoint complete\"; '-': not found in the log",
      MiB(runs[0][0].phases), MiB(runs[0][1].phases), MiB(runs[1][0].phases),
      MiB(runs[1][1].phases)));
  phases.Print();
  int rc = (*mount)->Unmount();
  if (rc != 0) return absl::InternalError(absl::StrCat("pagefs exited with ", rc, " at unmount"));
  return absl::OkStatus();
}

}  // namespace pgbranch::pagefs_bench
