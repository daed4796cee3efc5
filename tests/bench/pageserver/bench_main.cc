// pageserver-bench: measures the pageserver against the anchors of DESIGN.md section 7 and prints
// one table per section. Not a test: nothing here fails on a slow number.
//
//   pageserver-bench [--quick] [--only branch|read|commit|space] [--dir DIR]
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
#include "tests/bench/pageserver/sections.h"

namespace {

using pgbranch::bench::BenchConfig;

constexpr char kUsage[] =
    "usage: pageserver-bench [--quick] [--only branch|read|commit|space] [--dir DIR]\n"
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
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      config.quick = true;
    } else if ((a == "--only" || a == "--dir") && i + 1 < argc) {
      (a == "--only" ? only : config.base_dir) = argv[++i];
    } else if (a.rfind("--only=", 0) == 0) {
      only = a.substr(7);
    } else if (a.rfind("--dir=", 0) == 0) {
      config.base_dir = a.substr(6);
    } else if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else {
      std::cerr << "unknown argument '" << a << "'\n" << kUsage;
      return 2;
    }
  }
  std::vector<Section> sections = {
      {"branch", pgbranch::bench::RunBranchBench},
      {"read", pgbranch::bench::RunReadBench},
      {"commit", pgbranch::bench::RunCommitBench},
      {"space", pgbranch::bench::RunSpaceBench},
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
