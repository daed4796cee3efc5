// Section 1: pgbench on pagefs versus the same PostgreSQL configuration on the local disk, run one
// after the other on the same machine (DESIGN.md section 7: read-only >= 0.8x, read-write >= 0.5x).
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/bench/pagefs/sections.h"

namespace pgbranch::pagefs_bench {
namespace {

struct Scale {
  int scale;
  std::string shared_buffers;
  const char* fit;  // " (fits)" or " (does not fit)": the database in shared_buffers
};

struct Mode {
  std::string name;
  std::vector<std::string> args;
  double target;
};

// pagefs activity between two scrapes of its metrics.
struct PagefsActivity {
  std::string before;
  int port = 0;

  static double Get(const std::string& text, const std::string& name, const std::string& op) {
    double v = MetricValue(text, name, op.empty() ? "" : absl::StrCat("op=\"", op, "\""));
    return v < 0 ? 0 : v;
  }
  void Begin() {
    auto m = HttpGet(port, "/metrics");
    before = m.ok() ? *m : "";
  }
  // "1234 commits (61/s), fsync 2.1 ms mean (1200), read 45 us mean (50000), cache hit 0.97".
  std::string End(double seconds) const {
    auto m = HttpGet(port, "/metrics");
    if (!m.ok()) return "metrics unavailable";
    const std::string& after = *m;
    auto delta = [&](const std::string& name, const std::string& op) {
      return Get(after, name, op) - Get(before, name, op);
    };
    const std::string lat = "pgbranch_pagefs_operation_duration_seconds";
    auto mean = [&](const std::string& op) {
      double n = delta(lat + "_count", op);
      return std::make_pair(n, n > 0 ? delta(lat + "_sum", op) / n : 0.0);
    };
    auto [fsyncs, fsync_mean] = mean("fsync");
    auto [reads, read_mean] = mean("read");
    auto [writes, write_mean] = mean("write");
    double commits = delta("pgbranch_pagefs_commits_total", "");
    return absl::StrFormat(
        "pagefs: %.0f commits (%.0f/s), %.0f fsyncs (mean %.2f ms), %.0f reads (mean %.0f us), "
        "%.0f writes (mean %.0f us), page cache hit ratio %.2f",
        commits, commits / seconds, fsyncs, fsync_mean * 1e3, reads, read_mean * 1e6, writes,
        write_mean * 1e6, Get(after, "pgbranch_pagefs_cache_hit_ratio", ""));
  }
};

}  // namespace

absl::Status RunPgbenchBench(const BenchConfig& config) {
  std::vector<Scale> scales =
      config.quick ? std::vector<Scale>{{5, "128MB", " (fits)"}, {8, "16MB", " (does not fit)"}}
                   : std::vector<Scale>{{10, "128MB", " (fits)"}, {50, "32MB", " (does not fit)"}};
  if (config.pgbench_scale > 0) {
    const std::string sb =
        config.pgbench_shared_buffers.empty() ? "32MB" : config.pgbench_shared_buffers;
    scales = {{config.pgbench_scale, sb, ""}};
  }
  int seconds = config.pgbench_seconds > 0 ? config.pgbench_seconds : config.quick ? 5 : 20;
  std::vector<Mode> modes = {{"select-only (-S)", {"-S"}, 0.8}, {"TPC-B-like (default)", {}, 0.5}};

  PagefsEnv env(config);
  absl::Status s = env.Start("pgbench");
  if (!s.ok()) return s;
  auto metrics_port = FreeLoopbackPort();
  if (!metrics_port.ok()) return metrics_port.status();

  Table table(absl::StrFormat("pgbench: pagefs vs local disk (-c 4 -j 2 -T %d, fsync on)", seconds),
              {"database", "workload", "local", "pagefs", "pagefs/local", "target", "ok?"});
  std::vector<std::string> activity;
  for (const Scale& sc : scales) {
    std::string timeline = absl::StrCat("pgbench-s", sc.scale);
    s = env.CreateTimeline(timeline, "");
    if (!s.ok()) return s;
    std::string mnt = absl::StrCat(env.dir(), "/mnt-", timeline);
    auto mount = env.Mount(timeline, mnt, *metrics_port);
    if (!mount.ok()) return mount.status();
    PagefsActivity pagefs{"", *metrics_port};

    auto port_local = FreeLoopbackPort();
    auto port_pagefs = FreeLoopbackPort();
    if (!port_local.ok() || !port_pagefs.ok()) return absl::InternalError("no free port");
    // Two clusters, identical but for where the data directory lives.
    PgCluster local(absl::StrCat(env.dir(), "/local-", timeline, "/pgdata"),
                    absl::StrCat(env.dir(), "/sock-local-", sc.scale), *port_local,
                    absl::StrCat(env.dir(), "/local-", sc.scale, ".log"));
    PgCluster onfs(mnt + "/pgdata", absl::StrCat(env.dir(), "/sock-pagefs-", sc.scale),
                   *port_pagefs, absl::StrCat(env.dir(), "/pagefs-", sc.scale, ".log"));
    std::vector<std::string> conf = {absl::StrCat("shared_buffers = ", sc.shared_buffers),
                                     "max_connections = 20", "listen_addresses = ''"};
    std::string size_label;
    double init_s[2];
    PgCluster* clusters[2] = {&local, &onfs};
    for (int i = 0; i < 2; ++i) {
      Progress(absl::StrCat("scale ", sc.scale, ": initdb + pgbench -i on ",
                            i == 0 ? "local disk" : "pagefs"));
      auto t = clusters[i]->InitDb();
      if (!t.ok()) return t.status();
      std::vector<std::string> side_conf = conf;
      // pagefs runs PostgreSQL as a compute does (compute/storage_settings.h).
      if (i == 1) {
        for (std::string& l : PagefsComputeSettings()) side_conf.push_back(std::move(l));
      }
      s = clusters[i]->Configure(side_conf);
      if (s.ok()) s = clusters[i]->Start();
      if (!s.ok()) return s;
      if (i == 1) pagefs.Begin();
      double t0 = NowSeconds();
      auto out = clusters[i]->Pgbench({"-i", "-q", "-s", std::to_string(sc.scale)});
      if (!out.ok()) return out.status();
      init_s[i] = NowSeconds() - t0;
      // pgbench's own split: "done in 5.43 s (drop tables 0.00 s, ..., primary keys 1.50 s)."
      if (size_t at = out->find("done in "); at != std::string::npos) {
        std::string phases = out->substr(at, out->find('\n', at) - at);
        activity.push_back(absl::StrCat("-s ", sc.scale, " pgbench -i on ",
                                        i == 0 ? "local disk" : "pagefs", ": ", phases));
      }
      if (i == 1) {
        activity.push_back(absl::StrCat("-s ", sc.scale, " pgbench -i: ", pagefs.End(init_s[i])));
      }
      std::string bytes;
      s = clusters[i]->Sql("SELECT pg_size_pretty(pg_database_size('postgres'))", &bytes);
      if (!s.ok()) return s;
      size_label = absl::StrCat("-s ", sc.scale, " (", bytes,
                                "), shared_buffers=", sc.shared_buffers, sc.fit);
    }
    table.Add({size_label, "pgbench -i (load + vacuum)", Secs(init_s[0]), Secs(init_s[1]),
               Ratio(init_s[0] / init_s[1]), "", ""});
    for (const Mode& mode : modes) {
      double tps[2];
      for (int i = 0; i < 2; ++i) {
        Progress(absl::StrCat("scale ", sc.scale, ": ", mode.name, " on ",
                              i == 0 ? "local disk" : "pagefs"));
        std::vector<std::string> args = {"-c", "4", "-j", "2", "-T", std::to_string(seconds)};
        args.insert(args.end(), mode.args.begin(), mode.args.end());
        if (i == 1) pagefs.Begin();
        auto out = clusters[i]->Pgbench(args);
        if (!out.ok()) return out.status();
        tps[i] = ParseTps(*out);
        if (tps[i] < 0) return absl::InternalError(absl::StrCat("no tps in:\n", *out));
        if (i == 1) {
          activity.push_back(
              absl::StrCat("-s ", sc.scale, " ", mode.name, ": ", pagefs.End(seconds)));
        }
      }
      double ratio = tps[1] / tps[0];
      table.Add({size_label, mode.name, absl::StrFormat("%.0f tps", tps[0]),
                 absl::StrFormat("%.0f tps", tps[1]), Ratio(ratio),
                 absl::StrFormat(">= %.1fx", mode.target), OkIf(ratio >= mode.target)});
    }
    s = local.Stop();
    if (s.ok()) s = onfs.Stop();
    if (!s.ok()) return s;
    double t0 = NowSeconds();
    int rc = (*mount)->Unmount();
    activity.push_back(absl::StrCat("-s ", sc.scale, ": pagefs unmount (final flush) took ",
                                    Ms(NowSeconds() - t0), ", exit code ", rc));
  }
  table.Note(
      "same machine, one side after the other; PostgreSQL talks over a Unix socket; both sides use "
      "fsync=on, full_page_writes=on, synchronous_commit=on");
  table.Note(
      "'does not fit' means the database is larger than shared_buffers only: this machine's OS "
      "page cache still holds it on both sides (for pagefs: the kernel's page cache of the FUSE "
      "files plus pagefs's own 256 MiB page cache), so reads rarely reach the disk or the "
      "pageserver");
  table.Note("pgbench -i ratio column: local time / pagefs time (higher is better for pagefs)");
  table.Note(PagefsComputeSettingsNote());
  for (const std::string& a : activity) table.Note(a);
  table.Print();
  return absl::OkStatus();
}

}  // namespace pgbranch::pagefs_bench
