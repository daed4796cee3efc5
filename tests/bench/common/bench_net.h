#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/net_util.h"

// Loopback helpers shared by the benchmark programs.
namespace pgbranch::bench_common {

using ::pgbranch::net::FreeLoopbackPort;
using ::pgbranch::net::HttpGet;
// The value of the first sample of metric `name` (whose labels contain `labels`, if given) in a
// Prometheus text exposition; -1 if absent.
double MetricValue(const std::string& text, const std::string& name,
                   const std::string& labels = "");

// The value after the ':' of the first line of `file` starting with `prefix` ("?" if none),
// e.g. FirstMatch("/proc/cpuinfo", "model name").
std::string FirstMatch(const std::string& file, const std::string& prefix);
// "ext4 on /dev/vda": the filesystem holding `dir`.
std::string FilesystemOf(const std::string& dir);

// Prints a titled, aligned table to stdout: "## title", the header, a rule, the rows (a row may
// have fewer cells than the header) and "  note: ..." lines.
void PrintTable(const std::string& title, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows,
                const std::vector<std::string>& notes);

struct BenchArgs {
  bool quick = false;
  std::string only;  // one section, or empty for all
  std::string dir;   // where data goes; empty: a temporary directory
};
// Parses --quick, --only NAME, --dir DIR, --help. Returns -1 to go on, else the exit code.
int ParseBenchArgs(int argc, char** argv, const char* usage, BenchArgs* out);

}  // namespace pgbranch::bench_common
