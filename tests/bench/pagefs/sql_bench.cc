// Sections "drop-tables", "ddl" and "write-latency": PostgreSQL workloads dominated by namespace
// operations and fsync latency, on pagefs versus the same configuration on the local disk, one
// side after the other in one run.
//  - drop-tables: create N one-row tables, CHECKPOINT, DROP them, time the next CHECKPOINT (where
//    PostgreSQL unlinks the dropped files);
//  - ddl: a DDL-heavy psql script (CREATE/ALTER/TRUNCATE/DROP of tables and indexes, CTAS,
//    CHECKPOINTs; autocommit, one transaction per statement), wall time;
//  - write-latency: single-row INSERT and UPDATE latency of one client over a direct (Unix socket)
//    connection, synchronous_commit on, from pgbench's per-transaction log.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "tests/bench/pagefs/sections.h"

namespace pgbranch::pagefs_bench {
namespace {

// A local-disk cluster and a pagefs cluster with the same configuration, both started.
class ClusterPair {
 public:
  ClusterPair(const BenchConfig& config, std::string name) : env_(config), name_(std::move(name)) {}
  ~ClusterPair() {
    for (auto& c : clusters_) c.reset();  // stop PostgreSQL before unmounting
    if (mount_) mount_->Unmount();
  }

  absl::Status Start() {
    absl::Status s = env_.Start(name_);
    if (s.ok()) s = env_.CreateTimeline(name_, "");
    if (!s.ok()) return s;
    std::string mnt = env_.dir() + "/mnt";
    auto port = FreeLoopbackPort();
    if (!port.ok()) return port.status();
    metrics_port_ = *port;
    auto mount = env_.Mount(name_, mnt, metrics_port_);
    if (!mount.ok()) return mount.status();
    mount_ = std::move(*mount);
    std::string roots[2] = {env_.dir() + "/local", mnt};
    for (int i = 0; i < 2; ++i) {
      auto port = FreeLoopbackPort();
      if (!port.ok()) return port.status();
      std::string side = i == 0 ? "local" : "pagefs";
      clusters_[i] = std::make_unique<PgCluster>(roots[i] + "/pgdata",
                                                 absl::StrCat(env_.dir(), "/sock-", side), *port,
                                                 absl::StrCat(env_.dir(), "/", side, ".log"));
      Progress(absl::StrCat(name_, ": initdb + start on ", side));
      auto t = clusters_[i]->InitDb();
      if (!t.ok()) return t.status();
      std::vector<std::string> conf = {"max_connections = 20", "listen_addresses = ''"};
      // pagefs runs PostgreSQL as a compute does (compute/storage_settings.h).
      if (i == 1) {
        for (std::string& l : PagefsComputeSettings()) conf.push_back(std::move(l));
      }
      s = clusters_[i]->Configure(conf);
      if (s.ok()) s = clusters_[i]->Start();
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  PgCluster& cluster(int i) { return *clusters_[i]; }
  static const char* side(int i) { return i == 0 ? "local disk" : "pagefs"; }
  const std::string& dir() const { return env_.dir(); }
  // pagefs's /metrics text (empty if unavailable).
  std::string Metrics() {
    auto m = HttpGet(metrics_port_, "/metrics");
    return m.ok() ? *m : "";
  }

  // Writes `sql` to a file and runs it with psql (autocommit, stop at the first error).
  absl::StatusOr<double> Psql(int i, const std::string& sql) {
    std::string path = absl::StrCat(env_.dir(), "/script-", i, ".sql");
    {
      std::ofstream out(path);
      out << sql;
    }
    return RunAsPostgres(
        {"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", path, "-d", clusters_[i]->ConnInfo()},
        absl::StrCat(env_.dir(), "/psql-", i, ".log"));
  }

 private:
  PagefsEnv env_;
  std::string name_;
  std::unique_ptr<testing::PagefsMount> mount_;
  std::unique_ptr<PgCluster> clusters_[2];
  int metrics_port_ = 0;
};

std::string Us(double seconds) { return absl::StrFormat("%.0f us", seconds * 1e6); }

}  // namespace

absl::Status RunDropTablesBench(const BenchConfig& config) {
  int n = config.quick ? 200 : 1000;
  ClusterPair pair(config, "droptables");
  absl::Status s = pair.Start();
  if (!s.ok()) return s;
  double drop_s[2], checkpoint_s[2];
  std::string checkpoint_activity;
  for (int i = 0; i < 2; ++i) {
    Progress(absl::StrCat("drop-tables: ", n, " tables on ", ClusterPair::side(i)));
    std::string create, drop;
    for (int t = 0; t < n; ++t) {
      absl::StrAppend(&create, "CREATE TABLE dt_", t, " (x int); INSERT INTO dt_", t,
                      " VALUES (1);\n");
      absl::StrAppend(&drop, "DROP TABLE dt_", t, ";\n");
    }
    auto r = pair.Psql(i, create + "CHECKPOINT;\n");
    if (!r.ok()) return r.status();
    r = pair.Psql(i, drop);
    if (!r.ok()) return r.status();
    drop_s[i] = *r;
    std::string before = i == 1 ? pair.Metrics() : "";
    double t0 = NowSeconds();
    s = pair.cluster(i).Sql("CHECKPOINT");
    if (!s.ok()) return s;
    checkpoint_s[i] = NowSeconds() - t0;
    if (i == 1) {
      std::string after = pair.Metrics();
      checkpoint_activity =
          absl::StrCat(Activity(before, after, kOpCount, kOpSum, "op"), Commits(before, after));
    }
  }
  Table table(absl::StrFormat("drop %d one-row tables, then CHECKPOINT", n),
              {"step", "local disk", "pagefs", "pagefs/local", "target", "ok?"});
  table.Add({absl::StrCat("DROP TABLE x ", n, " (psql, autocommit)"), Secs(drop_s[0]),
             Secs(drop_s[1]), Ratio(drop_s[1] / drop_s[0]), "", ""});
  double ratio = checkpoint_s[1] / checkpoint_s[0];
  // Milliseconds: the CHECKPOINT takes tens of them, and 0.01 s is a third of the local side.
  auto ms = [](double s) { return absl::StrFormat("%.1f ms", s * 1e3); };
  table.Add({"CHECKPOINT after the drops", ms(checkpoint_s[0]), ms(checkpoint_s[1]), Ratio(ratio),
             "<= 3.0x", OkIf(ratio <= 3.0)});
  table.Note("pagefs/local: higher is slower on pagefs; fsync on");
  table.Note(PagefsComputeSettingsNote());
  table.Note(
      absl::StrCat("FUSE operations during the CHECKPOINT on pagefs: ", checkpoint_activity));
  table.Print();
  return absl::OkStatus();
}

absl::Status RunDdlBench(const BenchConfig& config) {
  int rounds = config.quick ? 8 : 40;
  ClusterPair pair(config, "ddl");
  absl::Status s = pair.Start();
  if (!s.ok()) return s;
  std::string sql;
  for (int r = 0; r < rounds; ++r) {
    std::string t = absl::StrCat("ddl_", r);
    absl::StrAppend(&sql, "CREATE TABLE ", t, " (id int PRIMARY KEY, v text);\n", "INSERT INTO ", t,
                    " SELECT g, md5(g::text) FROM generate_series(1, 2000) g;\n", "CREATE INDEX ",
                    t, "_v ON ", t, " (v);\n", "ALTER TABLE ", t, " ADD COLUMN w int DEFAULT 0;\n",
                    "CREATE TABLE ", t, "_copy AS SELECT * FROM ", t, ";\n", "TRUNCATE ", t, ";\n",
                    "INSERT INTO ", t, " SELECT g, 'x' FROM generate_series(1, 100) g;\n",
                    "CREATE INDEX ", t, "_w ON ", t, " (w);\n", "DROP INDEX ", t, "_v;\n",
                    "DROP TABLE ", t, "_copy;\n");
    if (r > 0) absl::StrAppend(&sql, "DROP TABLE ddl_", r - 1, ";\n");
    if (r % 4 == 3) absl::StrAppend(&sql, "CHECKPOINT;\n");
  }
  absl::StrAppend(&sql, "CHECKPOINT;\n");
  double wall[2];
  std::string activity;
  for (int i = 0; i < 2; ++i) {
    Progress(absl::StrCat("ddl: ", rounds, " rounds on ", ClusterPair::side(i)));
    std::string before = i == 1 ? pair.Metrics() : "";
    auto r = pair.Psql(i, sql);
    if (!r.ok()) return r.status();
    wall[i] = *r;
    if (i == 1) {
      std::string after = pair.Metrics();
      activity =
          absl::StrCat(Activity(before, after, kOpCount, kOpSum, "op"), Commits(before, after),
                       "; pageserver reads: ", Activity(before, after, kRpcCount, kRpcSum, "rpc"));
    }
  }
  Table table(absl::StrFormat("DDL-heavy psql script (%d rounds of 11 statements)", rounds),
              {"workload", "local disk", "pagefs", "pagefs/local", "target", "ok?"});
  double ratio = wall[1] / wall[0];
  table.Add(
      {"wall time", Secs(wall[0]), Secs(wall[1]), Ratio(ratio), "<= 1.5x", OkIf(ratio <= 1.5)});
  table.Note(
      "each round: CREATE TABLE + INSERT 2000 rows + CREATE INDEX + ALTER TABLE ADD COLUMN + "
      "CTAS + TRUNCATE + INSERT + CREATE INDEX + DROP INDEX + DROP TABLE x2; CHECKPOINT every 4 "
      "rounds; autocommit, fsync on");
  table.Note(PagefsComputeSettingsNote());
  table.Note(absl::StrCat("FUSE operations during the script on pagefs: ", activity));
  table.Print();
  return absl::OkStatus();
}

absl::Status RunWriteLatencyBench(const BenchConfig& config) {
  int n = config.quick ? 1500 : 10000;
  // PGBRANCH_BENCH_WRITES=N: N transactions per statement (a long run to trace).
  if (const char* e = getenv("PGBRANCH_BENCH_WRITES"); e && atoi(e) > 0) n = atoi(e);
  ClusterPair pair(config, "writelat");
  absl::Status s = pair.Start();
  if (!s.ok()) return s;
  struct Workload {
    std::string name, script;
  };
  std::vector<Workload> workloads = {
      {"INSERT one row", "INSERT INTO wl (v) VALUES (1);\n"},
      {"UPDATE one row (by primary key)",
       "\\set id random(1, 1000)\nUPDATE wl SET v = v + 1 WHERE id = :id;\n"},
  };
  Table table(
      absl::StrFormat("single-row write latency, one client, direct connection (%d each)", n),
      {"statement", "local mean", "local p50", "local p99", "pagefs mean", "pagefs p50",
       "pagefs p99", "pagefs/local (mean)", "target", "ok?"});
  std::vector<std::string> ratio_notes;
  for (int i = 0; i < 2; ++i) {
    s = pair.cluster(i).Sql(
        "CREATE TABLE wl (id serial PRIMARY KEY, v int); "
        "INSERT INTO wl (v) SELECT 0 FROM generate_series(1, 1000); CHECKPOINT");
    if (!s.ok()) return s;
  }
  for (size_t w = 0; w < workloads.size(); ++w) {
    std::string script = absl::StrCat(pair.dir(), "/wl-", w, ".sql");
    {
      std::ofstream out(script);
      out << workloads[w].script;
    }
    // Interleaved: kRounds rounds of n / kRounds transactions a side, the side that goes first
    // alternating (local, pagefs; pagefs, local; ...), so that a drift of the machine's speed
    // during the run (other tenants of a VM's host) weighs on both columns alike.
    constexpr int kRounds = 10;
    Samples lat[2];
    std::vector<double> round_ratios;  // per round: pagefs p50 / local p50
    for (int round = 0; round < kRounds; ++round) {
      Samples in_round[2];
      for (int k = 0; k < 2; ++k) {
        int i = round % 2 == 0 ? k : 1 - k;
        Progress(absl::StrCat("write-latency: ", workloads[w].name, " on ", ClusterPair::side(i),
                              " (round ", round + 1, " of ", kRounds, ")"));
        std::string log_dir = absl::StrCat(pair.dir(), "/latlog-", w, "-", i, "-", round);
        s = MakePostgresDir(log_dir);
        if (!s.ok()) return s;
        int t = n / kRounds + (round < n % kRounds ? 1 : 0);
        auto out = pair.cluster(i).Pgbench({"-n", "-c", "1", "-t", std::to_string(t), "-f", script,
                                            "-l", "--log-prefix", log_dir + "/tx"});
        if (!out.ok()) return out.status();
        // One line per transaction: client_id transaction_no time_us script_no epoch epoch_us.
        for (const auto& entry : std::filesystem::directory_iterator(log_dir)) {
          for (absl::string_view line : absl::StrSplit(FileTail(entry.path(), 0), '\n')) {
            std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
            if (f.size() < 3) continue;
            double sec = strtod(f[2].c_str(), nullptr) / 1e6;
            lat[i].Add(sec);
            in_round[i].Add(sec);
          }
        }
        if (in_round[i].count() == 0)
          return absl::InternalError("pgbench wrote no transaction log");
      }
      round_ratios.push_back(in_round[1].Quantile(0.5) / in_round[0].Quantile(0.5));
    }
    auto [lo, hi] = std::minmax_element(round_ratios.begin(), round_ratios.end());
    ratio_notes.push_back(
        absl::StrFormat("%s: pagefs/local p50 per round %.2f-%.2fx", workloads[w].name, *lo, *hi));
    double ratio = lat[1].Mean() / lat[0].Mean();
    table.Add({workloads[w].name, Us(lat[0].Mean()), Us(lat[0].Quantile(0.5)),
               Us(lat[0].Quantile(0.99)), Us(lat[1].Mean()), Us(lat[1].Quantile(0.5)),
               Us(lat[1].Quantile(0.99)), Ratio(ratio), "<= 1.3x", OkIf(ratio <= 1.3)});
  }
  table.Note(
      "pgbench -n -c 1 -t N -f script -l over a Unix socket; fsync and synchronous_commit on; "
      "latency per transaction (one statement, autocommit)");
  table.Note(
      "interleaved: 10 rounds of N/10 transactions a side, the side that goes first alternating "
      "(a drift of the machine's speed weighs on both columns alike)");
  for (const std::string& note : ratio_notes) table.Note(note);
  table.Note(PagefsComputeSettingsNote());
  table.Print();
  return absl::OkStatus();
}

}  // namespace pgbranch::pagefs_bench
