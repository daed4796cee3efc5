// pagefs-bench: PostgreSQL on pagefs against the anchors of DESIGN.md section 7, one table per
// section. Not a test: nothing here fails on a slow number.
//
//   pagefs-bench [--quick] [--only SECTION] [--dir DIR]
//                [--scale N [--shared-buffers SIZE] [--seconds T]]
//
// --quick uses small scales and short runs (a CI smoke run of under 90 s); the default runs the
// full sizes (pgbench -T 20 at -s 10 and -s 50). Needs root (FUSE) and a `postgres` user.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/bench/common/bench_net.h"
#include "tests/bench/pagefs/sections.h"

namespace {

using pgbranch::pagefs_bench::BenchConfig;

constexpr char kUsage[] =
    "usage: pagefs-bench [--quick] [--only SECTION] [--dir DIR]\n"
    "  --quick   small scales, short runs (CI smoke run, < 90 s)\n"
    "  --only    run one section: pgbench, branch, initdb, recovery, cold-read, namespace,\n"
    "            drop-tables, ddl, write-latency\n"
    "  --dir     where scratch directories (local PostgreSQL, pageserver data) go (default /tmp)\n"
    "  --scale N             the pgbench section at this scale only (e.g. 50)\n"
    "  --shared-buffers SIZE with --scale: PostgreSQL's shared_buffers (default 32MB)\n"
    "  --seconds T           with --scale: length of each pgbench run (default 20, 5 with "
    "--quick)\n";

// Takes the pgbench section's own flags out of argv (the rest goes to ParseBenchArgs). Returns
// -1 to go on, else the exit code.
int TakePgbenchArgs(int* argc, char** argv, BenchConfig* config) {
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    std::string a = argv[i];
    bool ours = a == "--scale" || a == "--shared-buffers" || a == "--seconds";
    if (!ours) {
      argv[out++] = argv[i];
      continue;
    }
    if (i + 1 >= *argc) {
      std::cerr << a << " needs a value\n" << kUsage;
      return 2;
    }
    std::string v = argv[++i];
    if (a == "--shared-buffers") {
      config->pgbench_shared_buffers = v;
      continue;
    }
    int n = 0;
    if (!absl::SimpleAtoi(v, &n) || n <= 0) {
      std::cerr << a << ": '" << v << "' is not a positive number\n" << kUsage;
      return 2;
    }
    (a == "--scale" ? config->pgbench_scale : config->pgbench_seconds) = n;
  }
  *argc = out;
  if (config->pgbench_scale == 0 &&
      (!config->pgbench_shared_buffers.empty() || config->pgbench_seconds != 0)) {
    std::cerr << "--shared-buffers and --seconds go with --scale\n" << kUsage;
    return 2;
  }
  return -1;
}

struct Section {
  std::string name;
  std::function<absl::Status(const BenchConfig&)> run;
};

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);  // `| head` must not kill us before the children are stopped
  BenchConfig config;
  std::string only;
  pgbranch::bench_common::BenchArgs args;
  if (int rc = TakePgbenchArgs(&argc, argv, &config); rc >= 0) return rc;
  if (int rc = pgbranch::bench_common::ParseBenchArgs(argc, argv, kUsage, &args); rc >= 0) {
    return rc;
  }
  config.quick = args.quick;
  only = args.only;
  if (!args.dir.empty()) config.base_dir = args.dir;
  std::vector<Section> sections = {
      {"pgbench", pgbranch::pagefs_bench::RunPgbenchBench},
      {"branch", pgbranch::pagefs_bench::RunBranchBench},
      {"initdb", pgbranch::pagefs_bench::RunInitdbBench},
      {"recovery", pgbranch::pagefs_bench::RunRecoveryBench},
      {"cold-read", pgbranch::pagefs_bench::RunColdReadBench},
      {"namespace", pgbranch::pagefs_bench::RunNamespaceBench},
      {"drop-tables", pgbranch::pagefs_bench::RunDropTablesBench},
      {"ddl", pgbranch::pagefs_bench::RunDdlBench},
      {"write-latency", pgbranch::pagefs_bench::RunWriteLatencyBench},
  };
  bool known = only.empty();
  for (const Section& s : sections) known = known || s.name == only;
  if (!known) {
    std::cerr << "unknown section '" << only << "'\n" << kUsage;
    return 2;
  }
  if (geteuid() != 0) {
    std::cerr << "pagefs-bench needs root (FUSE mounts, PostgreSQL run as the postgres user)\n";
    return 2;
  }

  std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::cout << "# pagefs-bench (" << (config.quick ? "quick" : "full") << " mode), " << date << "\n"
            << pgbranch::pagefs_bench::MachineInfo(config.base_dir) << "\n"
            << "anchors: DESIGN.md section 7" << std::endl;

  int failed = 0;
  auto start = std::chrono::steady_clock::now();
  for (const Section& s : sections) {
    if (!only.empty() && s.name != only) continue;
    auto t0 = std::chrono::steady_clock::now();
    pgbranch::pagefs_bench::Progress(absl::StrCat("running section ", s.name));
    absl::Status status = s.run(config);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!status.ok()) {
      std::cout << "\nsection " << s.name << " FAILED after " << absl::StrFormat("%.1f", secs)
                << " s: " << status << "\n";
      ++failed;
    } else {
      std::cout << "(section " << s.name << ": " << absl::StrFormat("%.1f", secs) << " s)\n";
    }
  }
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "\ntotal: " << absl::StrFormat("%.1f", total) << " s"
            << (failed ? absl::StrCat(", ", failed, " section(s) failed") : std::string()) << "\n";
  return failed == 0 ? 0 : 1;
}
