// Section 6: the pageserver's CPU per small commit over the commit channel (--commit-socket), as
// a pagefs mount sends them under an fsync-heavy load: commits of 1 or 3 pages (8 KiB each) on
// one connection, with 1 or 4 unanswered at a time. The pageserver's user and system CPU (from
// /proc/PID/stat, clock ticks) over a fixed number of commits, divided by that number: the cost
// of the commit path (frame parsing, the log record, the memtable), not of the disk.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/frame_io.h"
#include "pageserver/fs/fs_layout.h"
#include "tests/bench/pageserver/sections.h"

namespace pgbranch::bench {
namespace {

constexpr char kTenant[] = "cpu";

// User and system CPU seconds of `pid` so far.
bool ProcessCpu(pid_t pid, double* user, double* sys) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string stat = ss.str();
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return false;
  std::istringstream fields(stat.substr(paren + 2));
  std::string f;
  // Fields 3.. after the name: state is the 3rd; utime and stime are the 14th and 15th.
  std::vector<std::string> v;
  while (fields >> f) v.push_back(f);
  if (v.size() < 13) return false;
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  *user = std::strtod(v[11].c_str(), nullptr) / hz;
  *sys = std::strtod(v[12].c_str(), nullptr) / hz;
  return true;
}

// Nanoseconds on CPU (user and system) of the threads of `pid` alive now
// (/proc/PID/task/*/schedstat): a finer clock than the ticks of ProcessCpu.
double OnCpuSeconds(pid_t pid) {
  double ns = 0;
  std::error_code ec;
  for (const auto& t :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    std::ifstream in(t.path() / "schedstat");
    double v = 0;
    if (in >> v) ns += v;
  }
  return ns / 1e9;
}

struct CpuResult {
  double seconds = 0, user = 0, sys = 0, on_cpu = 0;
};

// Sends `commits` commits of `pages` pages with at most `depth` unanswered.
absl::Status RunCommits(const BenchServer& server, const std::string& socket, uint64_t generation,
                        uint64_t pages, int depth, uint64_t commits, CpuResult* out) {
  static const PageSource* source = new PageSource();
  std::vector<std::string> frames;
  for (uint64_t i = 0; i < 64; ++i) {
    v1::CommitRequest req;
    req.set_tenant_id(kTenant);
    req.set_timeline_id("main");
    req.set_generation(generation);
    for (uint64_t p = 0; p < pages; ++p) {
      v1::Mutation* m = req.add_mutations();
      m->set_key(fs::PageKey(300, i * pages + p));
      m->set_value(source->Page(300, i * pages + p));
    }
    std::string f;
    AppendFrame(req.SerializeAsString(), &f);
    frames.push_back(std::move(f));
  }
  absl::StatusOr<int> fd = ConnectCommitChannel(socket);
  if (!fd.ok()) return fd.status();
  FrameReader in(*fd);
  double u0, s0, u1, s1;
  if (!ProcessCpu(server.pid(), &u0, &s0)) return absl::InternalError("no /proc/PID/stat");
  double c0 = OnCpuSeconds(server.pid());
  double start = NowMicros();
  uint64_t sent = 0, answered = 0;
  absl::Status status;
  while (answered < commits) {
    while (sent < commits && sent - answered < static_cast<uint64_t>(depth)) {
      if (!WriteAll(*fd, frames[sent % frames.size()])) {
        status = absl::UnavailableError("the pageserver closed the commit channel");
        break;
      }
      ++sent;
    }
    if (!status.ok()) break;
    std::string_view f;
    status = in.Next(/*block=*/true, &f);
    if (!status.ok()) break;
    v1::CommitResponse resp;
    if (!resp.ParseFromArray(f.data(), static_cast<int>(f.size())) || resp.error_code() != 0) {
      status = absl::InternalError(absl::StrCat("bad answer: ", resp.error_message()));
      break;
    }
    ++answered;
  }
  out->seconds = (NowMicros() - start) / 1e6;
  ProcessCpu(server.pid(), &u1, &s1);
  out->on_cpu = OnCpuSeconds(server.pid()) - c0;
  ::close(*fd);
  out->user = u1 - u0;
  out->sys = s1 - s0;
  return status;
}

}  // namespace

absl::Status RunCommitCpuBench(const BenchConfig& config) {
  // Each row long enough for a few hundred clock ticks of pageserver CPU.
  const uint64_t scale = config.quick ? 1 : 5;
  ScratchDir sock_dir(config.base_dir);
  std::string socket = sock_dir.path() + "/pc.sock";
  // No checkpoint during the run (its CPU is not the commit path's).
  BenchServer server(config, {"--commit-socket", socket, "--memtable-flush-mb", "4096"});
  if (absl::Status s = server.Start(); !s.ok()) return s;
  if (absl::Status s = server.CreateTenant(kTenant, "main"); !s.ok()) return s;
  absl::StatusOr<uint64_t> gen = server.AcquireWriter(kTenant, "main");
  if (!gen.ok()) return gen.status();

  Table table(
      "6. Pageserver CPU per small commit over the commit channel (8 KiB pages, one connection)");
  CpuResult warm;
  if (absl::Status s = RunCommits(server, socket, *gen, 1, 4, 500, &warm); !s.ok()) return s;
  struct Row {
    uint64_t pages;
    int depth;
    uint64_t commits;
  };
  for (Row row : {Row{1, 1, 4000 * scale}, Row{1, 4, 20000 * scale}, Row{3, 4, 20000 * scale}}) {
    const uint64_t commits = row.commits;
    CpuResult r;
    if (absl::Status s = RunCommits(server, socket, *gen, row.pages, row.depth, commits, &r);
        !s.ok()) {
      return s;
    }
    double n = static_cast<double>(commits);
    table.Add(
        absl::StrCat(row.pages, " page(s), ", row.depth, " in flight: user / sys CPU per commit"),
        absl::StrFormat("%.1f / %.1f us", r.user * 1e6 / n, r.sys * 1e6 / n));
    table.Add(absl::StrCat(row.pages, " page(s), ", row.depth, " in flight: on-CPU per commit"),
              absl::StrFormat("%.1f us", r.on_cpu * 1e6 / n));
    table.Add(absl::StrCat(row.pages, " page(s), ", row.depth, " in flight: commits/s"),
              absl::StrFormat("%.0f", n / r.seconds));
  }
  table.Note(
      "user / sys = the pageserver's utime/stime (/proc/PID/stat, clock ticks) over the row");
  table.Note("on-CPU = user + sys of its live threads (/proc/PID/task/*/schedstat, ns)");
  table.Print();
  return absl::OkStatus();
}

}  // namespace pgbranch::bench
