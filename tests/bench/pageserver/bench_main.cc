// pageserver-bench: measures the pageserver against the anchors of DESIGN.md section 7 and prints
// one table per section. Not a test: nothing here fails on a slow number.
//
//   pageserver-bench [--quick] [--only branch|read|commit|space|channel|commitcpu] [--dir DIR]
//
// --quick uses small sizes (a smoke run of under a minute); the default uses the full sizes
// (a 10 GiB parent for branch creation, a 1 GiB timeline for the space section).
#include <signal.h>

#include <chrono>
#include <ctime>
#include <functional>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "tests/bench/common/bench_net.h"
#include "tests/bench/pageserver/sections.h"

namespace {

using pgbranch::bench::BenchConfig;

constexpr char kUsage[] =
    "usage: pageserver-bench [--quick] [--only branch|read|commit|space|channel|commitcpu] [--dir "
    "DIR]\n"
    "  --quick   small sizes (CI smoke run, < 60 s)\n"
    "  --only    run one section\n"
    "  --dir     where scratch data directories are created (default /tmp)\n";

struct Section {
  std::string name;
  std::function<absl::Status(const BenchConfig&)> run;
};

}  // namespace

int main(int argc, char** argv) {
  // The in-process engine (section 2) logs like the server does with --log-level warning.
  pgbranch::SetLogLevel(pgbranch::LogLevel::kWarning);
  // A closed pipe (`| head`) must not kill us before the pageserver children are stopped.
  signal(SIGPIPE, SIG_IGN);
  BenchConfig config;
  std::string only;
  pgbranch::bench_common::BenchArgs args;
  if (int rc = pgbranch::bench_common::ParseBenchArgs(argc, argv, kUsage, &args); rc >= 0) {
    return rc;
  }
  config.quick = args.quick;
  only = args.only;
  if (!args.dir.empty()) config.base_dir = args.dir;
  std::vector<Section> sections = {
      {"branch", pgbranch::bench::RunBranchBench},
      {"read", pgbranch::bench::RunReadBench},
      {"commit", pgbranch::bench::RunCommitBench},
      {"space", pgbranch::bench::RunSpaceBench},
      {"channel", pgbranch::bench::RunChannelBench},
      {"commitcpu", pgbranch::bench::RunCommitCpuBench},
  };
  bool known = only.empty();
  for (const Section& s : sections) known = known || s.name == only;
  if (!known) {
    std::cerr << "unknown section '" << only << "'\n" << kUsage;
    return 2;
  }

  std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::cout << "# pageserver-bench (" << (config.quick ? "quick" : "full") << " mode), " << date
            << "\n"
            << pgbranch::bench::MachineInfo(config.base_dir) << "\n"
            << "anchors: DESIGN.md section 7" << std::endl;

  int failed = 0;
  auto start = std::chrono::steady_clock::now();
  for (const Section& s : sections) {
    if (!only.empty() && s.name != only) continue;
    auto t0 = std::chrono::steady_clock::now();
    std::cerr << "[pageserver-bench] running section " << s.name << std::endl;
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
