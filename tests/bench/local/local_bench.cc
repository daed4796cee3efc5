// local-bench: local mode against the anchors of DESIGN.md section 7, one table per section.
// Not a test: nothing here fails on a slow number.
//
//   local-bench [--quick] [--only wake|branch|proxy|depth|write|promote] [--dir DIR]
//
//   wake    connect → first query result on a suspended endpoint (scale to zero), p50/p99
//   branch  `pgbranch branch create` of a running database → first query through the proxy
//   proxy   pgbench -S through the proxy versus directly to the compute's PostgreSQL
//   depth   new branch → first query at branch depth 1, 8, 32, with and without --wait=false
//   write   single-row INSERT/UPDATE latency: via proxy, direct, local disk
//   promote `branch promote` of a migration with a backfill into a 1 GB parent vs local disk
//
// Each section runs its own local instance (pageserver, controller, proxy) under --dir.
// Needs root (FUSE, PostgreSQL as the postgres user).
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/cpprest.h"
#include "common/net_util.h"
#include "tests/bench/common/bench_net.h"
#include "tests/bench/local/local_instance.h"
#include "tests/bench/local/local_sections.h"
#include "tests/bench/pagefs/pagefs_bench_util.h"
#include "tests/support/postgres_instance.h"

namespace {

namespace pb = pgbranch::pagefs_bench;
using pgbranch::local_bench::ConnectionOnPort;
using pgbranch::testing::CommandResult;
using pgbranch::testing::RunCommand;
using Instance = pgbranch::local_bench::LocalInstance;

constexpr char kUsage[] =
    "usage: local-bench [--quick] [--only wake|branch|proxy|depth|write|promote] [--dir DIR]\n"
    "  --quick   few cycles, short runs (CI smoke run)\n"
    "  --only    run one section\n"
    "  --dir     where the local instances' state directories go (default /tmp)\n";

absl::Status RunWake(const pb::BenchConfig& config) {
  Instance inst(config.base_dir);
  if (auto s = inst.Up(); !s.ok()) return s;
  auto uri = inst.CreateBranch("main", "", "1s");
  if (!uri.ok()) return uri.status();
  auto pq = pb::Libpq::Get();
  if (!pq.ok()) return pq.status();
  if (auto s = (*pq)->Query(*uri, "CREATE TABLE t AS SELECT generate_series(1, 1000) AS v");
      !s.ok()) {
    return s;
  }
  const int cycles = config.quick ? 5 : 25;
  pb::Samples wake;
  for (int i = 0; i < cycles; ++i) {
    if (auto s = inst.WaitPhase("main", "Suspended"); !s.ok()) return s;
    double t0 = pb::NowSeconds();
    std::string value;
    if (auto s = (*pq)->Query(*uri, "SELECT sum(v) FROM t", &value); !s.ok()) return s;
    wake.Add(pb::NowSeconds() - t0);
    pb::Progress(absl::StrCat("wake ", i + 1, "/", cycles, ": ", pb::Ms(pb::NowSeconds() - t0)));
  }
  pb::Table t("Wake from zero: connect → first query result on a suspended endpoint (local mode)",
              {"cycles", "p50", "p90", "p99", "max", "target p50", "met"});
  t.Add({std::to_string(wake.count()), pb::Ms(wake.Quantile(0.5)), pb::Ms(wake.Quantile(0.9)),
         pb::Ms(wake.Quantile(0.99)), pb::Ms(wake.Max()), "≤ 500 ms",
         pb::OkIf(wake.Quantile(0.5) <= 0.5)});
  t.Note(
      "libpq connects to the endpoint's port at the proxy, which holds the client while the "
      "controller starts pgbranch-compute (pagefs mount + PostgreSQL start + role check)");
  t.Note("anchors: Neon ≈ 500 ms, Aurora Serverless v2 up to 15 s");
  t.Print();
  return absl::OkStatus();
}

absl::Status RunBranch(const pb::BenchConfig& config) {
  Instance inst(config.base_dir);
  if (auto s = inst.Up(); !s.ok()) return s;
  auto main_uri = inst.CreateBranch("main");
  if (!main_uri.ok()) return main_uri.status();
  auto pq = pb::Libpq::Get();
  if (!pq.ok()) return pq.status();
  if (auto s = (*pq)->Query(*main_uri, "CREATE TABLE t AS SELECT generate_series(1, 100000) AS v");
      !s.ok()) {
    return s;
  }
  const int runs = config.quick ? 3 : 10;
  pb::Samples total, cli;
  for (int i = 0; i < runs; ++i) {
    std::string name = absl::StrCat("b", i);
    double t0 = pb::NowSeconds();
    CommandResult c =
        inst.Cli({"branch", "create", name, "--parent", "main", "--suspend-timeout", "0s"});
    if (c.exit_code != 0) return absl::InternalError(c.Describe());
    double t1 = pb::NowSeconds();
    auto uri = inst.Connstr(name);
    if (!uri.ok()) return uri.status();
    std::string value;
    if (auto s = (*pq)->Query(*uri, "SELECT count(*) FROM t", &value); !s.ok()) return s;
    double t2 = pb::NowSeconds();
    cli.Add(t1 - t0);
    total.Add(t2 - t0);
    pb::Progress(absl::StrCat("branch ", i + 1, "/", runs, ": ", pb::Ms(t2 - t0)));
    // Keep two computes at most: the machine has 2 cores.
    inst.Cli({"endpoint", "delete", name});
  }
  pb::Table t("New branch of a running database → first query through the proxy (local mode)",
              {"runs", "p50", "p90", "max", "of which `branch create` p50", "target p50", "met"});
  t.Add({std::to_string(total.count()), pb::Ms(total.Quantile(0.5)), pb::Ms(total.Quantile(0.9)),
         pb::Ms(total.Max()), pb::Ms(cli.Quantile(0.5)), "≤ 300 ms",
         pb::OkIf(total.Quantile(0.5) <= 0.3)});
  t.Note(
      "from the `pgbranch branch create X --parent main` command (timeline + endpoint + compute "
      "start, CLI process included) to the first row of SELECT count(*) on the branch");
  t.Note("a branch of a running database is a crash image: PostgreSQL replays WAL at first start");
  t.Print();
  return absl::OkStatus();
}

absl::StatusOr<double> PgbenchTps(const std::string& uri, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {std::string(pb::kPgBin) + "/pgbench"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(uri);
  CommandResult r = RunCommand(argv, "", 600);
  if (r.exit_code != 0) return absl::InternalError("pgbench: " + r.Describe());
  std::smatch m;
  if (!std::regex_search(r.out, m, std::regex("tps = ([0-9.]+)"))) {
    return absl::InternalError("no tps in pgbench output: " + r.out);
  }
  return std::stod(m[1]);
}

absl::Status RunProxy(const pb::BenchConfig& config) {
  Instance inst(config.base_dir);
  // Plain TCP on both paths, so the table compares the relay itself (PostgreSQL's own port has
  // no TLS; with TLS, each client connection through the proxy also pays a handshake).
  if (auto s = inst.Up({"--no-tls"}); !s.ok()) return s;
  auto uri = inst.CreateBranch("main");
  if (!uri.ok()) return uri.status();
  const int scale = config.quick ? 1 : 10;
  const std::string seconds = config.quick ? "3" : "15";
  pb::Progress(absl::StrCat("pgbench -i -s ", scale, " through the proxy"));
  CommandResult init = RunCommand(
      {std::string(pb::kPgBin) + "/pgbench", "-i", "-q", "-s", std::to_string(scale), *uri}, "",
      900);
  if (init.exit_code != 0) return absl::InternalError("pgbench -i: " + init.Describe());
  auto direct_port = inst.DirectPort("main");
  if (!direct_port.ok()) return direct_port.status();
  std::string direct = ConnectionOnPort(*uri, *direct_port);
  pb::Table t("Proxy overhead: pgbench -S through pgbranch-proxy versus directly to PostgreSQL",
              {"clients", "direct tps", "via proxy tps", "ratio", "target", "met"});
  for (int clients : {1, 4}) {
    std::vector<std::string> args = {
        "-S", "-n",   "-c", std::to_string(clients), "-j", std::to_string(std::min(clients, 2)),
        "-T", seconds};
    double d = 0, p = 0;
    // Alternate twice to even out drift on a small machine.
    for (int round = 0; round < 2; ++round) {
      pb::Progress(absl::StrCat("pgbench -S -c ", clients, " direct, round ", round + 1));
      auto a = PgbenchTps(direct, args);
      if (!a.ok()) return a.status();
      pb::Progress(absl::StrCat("pgbench -S -c ", clients, " via proxy, round ", round + 1));
      auto b = PgbenchTps(*uri, args);
      if (!b.ok()) return b.status();
      d += *a / 2;
      p += *b / 2;
    }
    t.Add({std::to_string(clients), absl::StrFormat("%.0f", d), absl::StrFormat("%.0f", p),
           pb::Ratio(p / d), "≥ 0.90x", pb::OkIf(p / d >= 0.9)});
  }
  t.Note(absl::StrCat("pgbench -S -n -T ", seconds, " at scale ", scale,
                      ", TCP on 127.0.0.1 without TLS (local up --no-tls), simple protocol; each "
                      "client connects once; both paths reach the same PostgreSQL on pagefs"));
  t.Print();
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  pgbranch::bench_common::BenchArgs args;
  if (int rc = pgbranch::bench_common::ParseBenchArgs(argc, argv, kUsage, &args); rc >= 0) {
    return rc;
  }
  pb::BenchConfig config;
  config.quick = args.quick;
  if (!args.dir.empty()) config.base_dir = args.dir;
  if (geteuid() != 0) {
    std::cerr << "local-bench needs root (FUSE mounts, PostgreSQL run as the postgres user)\n";
    return 2;
  }
  struct Section {
    std::string name;
    absl::Status (*run)(const pb::BenchConfig&);
  };
  std::vector<Section> sections = {{"wake", RunWake},
                                   {"branch", RunBranch},
                                   {"proxy", RunProxy},
                                   {"depth", pgbranch::local_bench::RunFirstQuery},
                                   {"write", pgbranch::local_bench::RunWriteLatency},
                                   {"promote", pgbranch::local_bench::RunPromote}};
  bool known = args.only.empty();
  for (const auto& s : sections) known = known || s.name == args.only;
  if (!known) {
    std::cerr << "unknown section '" << args.only << "'\n" << kUsage;
    return 2;
  }
  std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::cout << "# local-bench (" << (config.quick ? "quick" : "full") << " mode), " << date << "\n"
            << pb::MachineInfo(config.base_dir) << "\n"
            << "anchors: DESIGN.md section 7" << std::endl;
  int failed = 0;
  for (const auto& s : sections) {
    if (!args.only.empty() && s.name != args.only) continue;
    pb::Progress(absl::StrCat("running section ", s.name));
    absl::Status st = s.run(config);
    if (!st.ok()) {
      std::cout << "\n## " << s.name << ": FAILED: " << st.message() << std::endl;
      ++failed;
    }
  }
  return failed == 0 ? 0 : 1;
}
