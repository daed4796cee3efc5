// Section 4: crash-recovery speed. PostgreSQL writes X MiB of WAL after a checkpoint (pgbench
// TPC-B-like transactions, with max_wal_size and checkpoint_timeout large enough that nothing is
// checkpointed meanwhile), the postmaster and its children are killed with SIGKILL, and the time
// from the restart to the first accepted connection is measured: replay of the WAL plus the
// end-of-recovery checkpoint. On pagefs and on the local disk, one after the other, on the same
// machine (DESIGN.md section 7: pagefs replays at >= 0.5x the local disk's speed).
//
// pagefs keeps running across the crash (only PostgreSQL dies), as when a compute's postmaster is
// killed; its page cache and the kernel's cache of the FUSE files stay as they were.
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/bench/pagefs/sections.h"

namespace pgbranch::pagefs_bench {
namespace {

constexpr char kOpCount[] = "pgbranch_pagefs_operation_duration_seconds_count";
constexpr char kOpSum[] = "pgbranch_pagefs_operation_duration_seconds_sum";
constexpr char kRpcCount[] = "pgbranch_pagefs_store_rpc_duration_seconds_count";
constexpr char kRpcSum[] = "pgbranch_pagefs_store_rpc_duration_seconds_sum";

// label value -> (count, sum) of a histogram labelled by `label`, from a /metrics text.
std::map<std::string, std::pair<double, double>> Histograms(const std::string& text,
                                                            const std::string& count_name,
                                                            const std::string& sum_name,
                                                            const std::string& label) {
  std::map<std::string, std::pair<double, double>> out;
  std::istringstream in(text);
  std::string line;
  const std::string key = label + "=\"";
  while (std::getline(in, line)) {
    bool is_count = line.rfind(count_name + "{", 0) == 0;
    bool is_sum = line.rfind(sum_name + "{", 0) == 0;
    if (!is_count && !is_sum) continue;
    size_t p = line.find(key);
    size_t sp = line.rfind(' ');
    if (p == std::string::npos || sp == std::string::npos) continue;
    p += key.size();
    std::string value = line.substr(p, line.find('"', p) - p);
    double v = 0;
    if (!absl::SimpleAtod(line.substr(sp + 1), &v)) continue;
    (is_count ? out[value].first : out[value].second) = v;
  }
  return out;
}

// What pagefs did between two scrapes: "read 1200 (mean 85 us), ..." per operation and per RPC.
std::string Activity(const std::string& before, const std::string& after, const char* count_name,
                     const char* sum_name, const std::string& label) {
  auto b = Histograms(before, count_name, sum_name, label);
  auto a = Histograms(after, count_name, sum_name, label);
  std::string out;
  for (const auto& [name, cs] : a) {
    double n = cs.first - b[name].first;
    double sum = cs.second - b[name].second;
    if (n < 1) continue;
    absl::StrAppend(
        &out, out.empty() ? "" : ", ",
        absl::StrFormat("%s %.0f (mean %.0f us, total %.2f s)", name, n, sum / n * 1e6, sum));
  }
  return out.empty() ? "none recorded" : out;
}

// ", commits 12 (mean 1.2 ms)" between two scrapes.
std::string Commits(const std::string& before, const std::string& after) {
  const std::string name = "pgbranch_pagefs_commit_duration_seconds";
  auto get = [](const std::string& text, const std::string& metric) {
    double v = MetricValue(text, metric, "");
    return v < 0 ? 0 : v;
  };
  double n = get(after, name + "_count") - get(before, name + "_count");
  double sum = get(after, name + "_sum") - get(before, name + "_sum");
  return absl::StrFormat(", commit %.0f (mean %.0f us, total %.2f s)", n, n > 0 ? sum / n * 1e6 : 0,
                         sum);
}

// "redo done at 0/5000028 system usage: CPU: user: 0.31 s, system: 0.09 s, elapsed: 0.52 s".
double RedoElapsed(const std::string& log) {
  size_t p = log.rfind("redo done at");
  if (p == std::string::npos) return -1;
  size_t e = log.find("elapsed: ", p);
  if (e == std::string::npos) return -1;
  return strtod(log.c_str() + e + 9, nullptr);
}

struct Side {
  double wal_mib = 0;
  double restart_s = 0;
  double redo_s = -1;
  std::string profile;
};

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
  auto mount = env.Mount("recovery", mnt, *metrics_port);
  if (!mount.ok()) return mount.status();

  Side sides[2];
  for (int i = 0; i < 2; ++i) {
    const char* where = i == 0 ? "local disk" : "pagefs";
    auto port = FreeLoopbackPort();
    if (!port.ok()) return port.status();
    std::string data = i == 0 ? env.dir() + "/local/pgdata" : mnt + "/pgdata";
    PgCluster pg(data, absl::StrCat(env.dir(), "/sock-", i), *port,
                 absl::StrCat(env.dir(), "/recovery-", i, ".log"));
    Progress(absl::StrCat("recovery: initdb + pgbench -i -s ", scale, " on ", where));
    auto t = pg.InitDb();
    if (!t.ok()) return t.status();
    s = pg.Configure({"listen_addresses = ''", "shared_buffers = 128MB", "max_wal_size = 8GB",
                      "checkpoint_timeout = 1d", "max_connections = 20"});
    if (s.ok()) s = pg.Start();
    if (!s.ok()) return s;
    auto out = pg.Pgbench({"-i", "-q", "-s", std::to_string(scale)});
    if (!out.ok()) return out.status();
    std::string redo;
    s = pg.Sql("CHECKPOINT");
    if (s.ok()) s = pg.Sql("SELECT redo_lsn FROM pg_control_checkpoint()", &redo);
    if (!s.ok()) return s;
    Progress(absl::StrCat("recovery: writing ", target_mib, " MiB of WAL on ", where));
    std::string bytes;
    for (int round = 0; round < 1000; ++round) {
      out = pg.Pgbench({"-c", "4", "-j", "2", "-t", "200"});
      if (!out.ok()) return out.status();
      s = pg.Sql(
          absl::StrCat("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '", redo, "')::bigint"),
          &bytes);
      if (!s.ok()) return s;
      if (strtod(bytes.c_str(), nullptr) >= target_mib * 1048576) break;
    }
    sides[i].wal_mib = strtod(bytes.c_str(), nullptr) / 1048576;
    std::string metrics_before;
    if (i == 1) {
      auto m = HttpGet(*metrics_port, "/metrics");
      metrics_before = m.ok() ? *m : "";
    }
    Progress(absl::StrCat("recovery: kill -9 and restart on ", where));
    s = pg.Crash();
    if (!s.ok()) return s;
    size_t log_before = FileTail(absl::StrCat(env.dir(), "/recovery-", i, ".log.server"), 0).size();
    auto restart = pg.StartUntilConnected(600);
    if (!restart.ok()) return restart.status();
    sides[i].restart_s = *restart;
    std::string log = FileTail(absl::StrCat(env.dir(), "/recovery-", i, ".log.server"), 0);
    sides[i].redo_s = RedoElapsed(log.substr(std::min(log_before, log.size())));
    if (i == 1) {
      auto m = HttpGet(*metrics_port, "/metrics");
      std::string after = m.ok() ? *m : "";
      sides[i].profile = absl::StrCat(
          "pagefs during the restart: operations: ",
          Activity(metrics_before, after, kOpCount, kOpSum, "op"),
          "; pageserver RPCs: ", Activity(metrics_before, after, kRpcCount, kRpcSum, "rpc"),
          Commits(metrics_before, after));
    }
    s = pg.Stop();
    if (!s.ok()) return s;
  }

  Table table(absl::StrFormat("crash recovery after kill -9: pgbench -s %d, ~%.0f MiB of WAL after "
                              "a checkpoint",
                              scale, target_mib),
              {"what", "local", "pagefs", "pagefs/local", "target", "ok?"});
  auto secs_or_na = [](double x) { return x < 0 ? std::string("n/a") : Secs(x); };
  table.Add({"WAL to replay", absl::StrFormat("%.1f MiB", sides[0].wal_mib),
             absl::StrFormat("%.1f MiB", sides[1].wal_mib), "", "", ""});
  table.Add({"restart to first accepted connection", Secs(sides[0].restart_s),
             Secs(sides[1].restart_s), Ratio(sides[1].restart_s / sides[0].restart_s), "", ""});
  table.Add({"of which redo (PostgreSQL's 'redo done ... elapsed')", secs_or_na(sides[0].redo_s),
             secs_or_na(sides[1].redo_s), "", "", ""});
  double speed[2];
  for (int i = 0; i < 2; ++i) speed[i] = sides[i].wal_mib / sides[i].restart_s;
  double ratio = speed[1] / speed[0];
  table.Add({"replay speed (WAL / restart time)", absl::StrFormat("%.1f MiB/s", speed[0]),
             absl::StrFormat("%.1f MiB/s", speed[1]), Ratio(ratio), ">= 0.5x", OkIf(ratio >= 0.5)});
  table.Note(
      "restart = pg_ctl start until a connection succeeds: crash recovery (redo) plus the "
      "end-of-recovery checkpoint; shared_buffers 128MB, fsync on, full_page_writes on");
  table.Note(sides[1].profile);
  table.Print();
  int rc = (*mount)->Unmount();
  if (rc != 0) return absl::InternalError(absl::StrCat("pagefs exited with ", rc, " at unmount"));
  return absl::OkStatus();
}

}  // namespace pgbranch::pagefs_bench
