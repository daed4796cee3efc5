#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pageserver/proto/pageserver.grpc.pb.h"
#include "tests/bench/common/bench_net.h"
#include "tests/support/pageserver_process.h"

// Helpers shared by the sections of pageserver-bench: configuration, tables, latency statistics,
// scratch directories, a real pageserver process with a small typed client, and data loading.
namespace pgbranch::bench {

namespace v1 = ::pgbranch::pageserver::v1;

inline constexpr size_t kPageBytes = 8192;
inline constexpr uint64_t kPagesPerCommit = 128;  // 1 MiB commits

struct BenchConfig {
  bool quick = false;
  std::string base_dir = "/tmp";  // scratch data directories are created under it
};

// An aligned table: "what | value | target | ok?".
class Table {
 public:
  explicit Table(std::string title) : title_(std::move(title)) {}
  // `ok`: "yes", "NO" or empty for an informational row.
  void Add(std::string what, std::string value, std::string target = "", std::string ok = "");
  void Note(std::string line) { notes_.push_back(std::move(line)); }
  void Print() const;

 private:
  std::string title_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<std::string> notes_;
};

inline std::string OkIf(bool ok) { return ok ? "yes" : "NO"; }

// Latency samples in microseconds.
class Latencies {
 public:
  void Add(double micros) { samples_.push_back(micros); }
  void Append(const Latencies& other);
  size_t count() const { return samples_.size(); }
  // q in [0, 1]; sorts lazily.
  double Quantile(double q);
  double Mean() const;
  double Max();

 private:
  std::vector<double> samples_;
  bool sorted_ = false;
};

// A progress line on stderr (the tables go to stdout).
void Progress(const std::string& line);

// "812 us", "1.23 ms", "2.5 s".
std::string FormatMicros(double micros);
std::string FormatBytes(double bytes);  // "1.5 MiB"
double NowMicros();                     // steady clock

// A directory under `base` removed (recursively) on destruction.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& base);
  ~ScratchDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Sum of the sizes of the regular files under `dir` (what `du --apparent-size` counts).
uint64_t DirBytes(const std::string& dir);
// "wal/ 1.0 MiB in 1 files, layers/ 100.2 MiB in 3 files, MANIFEST 2.1 KiB": bytes per entry of
// `dir` (directories summed).
std::string DirBreakdown(const std::string& dir);

// One line about the machine: cores, CPU, memory, kernel, filesystem of `dir`.
std::string MachineInfo(const std::string& dir);

absl::Status FromGrpc(const grpc::Status& s);

// A loopback TCP port that was free a moment ago (for servers that cannot report theirs).
using bench_common::FreeLoopbackPort;
// The body of GET http://127.0.0.1:port/path.
using bench_common::HttpGet;
// The value of the first sample of Prometheus metric `name` in `text`, or -1.
using bench_common::MetricValue;

// A real pageserver process on a scratch data directory, with a typed client. Thread-safe
// (every call uses the shared channel).
class BenchServer {
 public:
  BenchServer(const BenchConfig& config, std::vector<std::string> extra_args = {});
  absl::Status Start();
  const std::string& data_dir() const { return data_dir_; }
  pid_t pid() const { return process_->pid(); }
  std::unique_ptr<v1::PageService::Stub> NewStub() const { return process_->NewStub(); }
  v1::PageService::Stub* stub() const { return stub_.get(); }

  absl::Status CreateTenant(const std::string& tenant, const std::string& root);
  absl::StatusOr<v1::Timeline> CreateTimeline(const std::string& tenant, const std::string& id,
                                              const std::string& ancestor);
  absl::StatusOr<v1::Timeline> GetTimeline(const std::string& tenant, const std::string& id);
  absl::StatusOr<uint64_t> AcquireWriter(const std::string& tenant, const std::string& timeline);
  absl::Status RunMaintenance(bool gc);

 private:
  ScratchDir dir_;
  std::string data_dir_;
  std::unique_ptr<testing::PageserverProcess> process_;
  std::unique_ptr<v1::PageService::Stub> stub_;
};

// Deterministic pseudo-random 8 KiB page contents (stamped with ino and block).
class PageSource {
 public:
  PageSource();
  std::string Page(uint64_t ino, uint64_t block) const;

 private:
  std::string pool_;
};

// Writes pages [first, first + count) of inode `ino` to a timeline with 1 MiB commits from
// `loaders` concurrent clients (each its own channel). Returns the elapsed seconds.
absl::StatusOr<double> LoadPages(const BenchServer& server, const std::string& tenant,
                                 const std::string& timeline, uint64_t generation, uint64_t ino,
                                 uint64_t first, uint64_t count, int loaders);
// Same, for an explicit list of blocks (overwrites).
absl::StatusOr<double> LoadBlocks(const BenchServer& server, const std::string& tenant,
                                  const std::string& timeline, uint64_t generation, uint64_t ino,
                                  const std::vector<uint64_t>& blocks, int loaders);

// A connection to the pageserver's commit channel at unix socket `path`, its hello sent; a
// non-zero `sndbuf_bytes` sets SO_SNDBUF first (bulk writers).
absl::StatusOr<int> ConnectCommitChannel(const std::string& path, int sndbuf_bytes = 0);

}  // namespace pgbranch::bench
