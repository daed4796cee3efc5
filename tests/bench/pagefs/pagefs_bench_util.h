#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pageserver/proto/pageserver.grpc.pb.h"
#include "tests/bench/common/bench_net.h"
#include "tests/support/pagefs_mount.h"
#include "tests/support/pageserver_process.h"

// Helpers shared by the sections of pagefs-bench: tables, statistics, scratch directories,
// processes run as the `postgres` user, a PostgreSQL cluster, libpq (loaded at run time, so that
// building needs no libpq headers), and a pageserver with pagefs mounts.
namespace pgbranch::pagefs_bench {

namespace v1 = ::pgbranch::pageserver::v1;

inline constexpr char kPgBin[] = "/usr/lib/postgresql/15/bin";

struct BenchConfig {
  bool quick = false;
  std::string base_dir = "/tmp";  // scratch directories are created under it
  // The pgbench section at one scale only (0: the mode's scales), with this shared_buffers
  // (empty: 32MB) and this run length in seconds (0: the mode's).
  int pgbench_scale = 0;
  std::string pgbench_shared_buffers;
  int pgbench_seconds = 0;
};

// An aligned table with free columns; the first row given is the header.
class Table {
 public:
  Table(std::string title, std::vector<std::string> header)
      : title_(std::move(title)), header_(std::move(header)) {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Note(std::string line) { notes_.push_back(std::move(line)); }
  void Print() const;

 private:
  std::string title_;
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<std::string> notes_;
};

inline std::string OkIf(bool ok) { return ok ? "yes" : "NO"; }

// Samples (any unit).
class Samples {
 public:
  void Add(double v) { values_.push_back(v); }
  size_t count() const { return values_.size(); }
  double Quantile(double q) const;  // q in [0, 1], nearest rank
  double Mean() const;
  double Min() const { return Quantile(0); }
  double Max() const { return Quantile(1); }

 private:
  std::vector<double> values_;
};

void Progress(const std::string& line);  // stderr; the tables go to stdout
double NowSeconds();                     // steady clock
std::string Ms(double seconds);          // "12.3 ms"
std::string Secs(double seconds);        // "1.23 s"
std::string Ratio(double x);             // "0.93x"

// A directory under `base` (mode 0755, so the postgres user can pass), removed on destruction.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& base);
  ~ScratchDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One line about the machine: cores, CPU, memory, kernel, filesystem of `dir`, PostgreSQL.
std::string MachineInfo(const std::string& dir);

using bench_common::FreeLoopbackPort;
using bench_common::HttpGet;
// The value of the sample of `name` whose labels contain `labels` (e.g. `op="fsync"`; empty:
// the first sample), or -1.
using bench_common::MetricValue;

// pagefs metrics (names of the /metrics samples) and what changed between two scrapes.
extern const char kOpCount[], kOpSum[], kRpcCount[], kRpcSum[];
// label value -> (count, sum) of a histogram labelled by `label`, from a /metrics text.
std::map<std::string, std::pair<double, double>> Histograms(const std::string& text,
                                                            const std::string& count_name,
                                                            const std::string& sum_name,
                                                            const std::string& label);
// What pagefs did between two scrapes, per label value: "read 1200 (mean 85 us, total 0.1 s)";
// with `per` != 1, the counts divided by it ("unlink 1.00 (mean 40 us)": per operation traced).
std::string Activity(const std::string& before, const std::string& after, const char* count_name,
                     const char* sum_name, const std::string& label, double per = 1);
// ", commit 12 (mean 1.2 ms, total 0.01 s)" between two scrapes.
std::string Commits(const std::string& before, const std::string& after);

// Creates `dir` owned by postgres with mode 0700.
absl::Status MakePostgresDir(const std::string& dir);
// Runs argv[0] (a PostgreSQL program) as the postgres user with output to `log`; waits.
// Returns the elapsed seconds, or an error with the log's tail.
absl::StatusOr<double> RunAsPostgres(const std::vector<std::string>& argv, const std::string& log);
// Starts it without waiting.
absl::StatusOr<pid_t> SpawnAsPostgres(const std::vector<std::string>& argv, const std::string& log);
std::string FileTail(const std::string& path, size_t bytes);

// The settings a compute runs PostgreSQL with on pagefs (compute/storage_settings.h), as
// postgresql.conf lines: the benchmarks' pagefs side adds them, their local side does not.
std::vector<std::string> PagefsComputeSettings();
// A table note saying so: "pagefs side: PostgreSQL with a compute's settings (a = b, ...); ...".
std::string PagefsComputeSettingsNote();

// libpq, loaded with dlopen("libpq.so.5") (a dependency of postgresql-15).
class Libpq {
 public:
  static absl::StatusOr<Libpq*> Get();
  // Connects and runs `sql`; the first value of the first row in `*value`. The error message of
  // a failed connection or query otherwise.
  absl::Status Query(const std::string& conninfo, const std::string& sql,
                     std::string* value = nullptr);
  // Connects (retrying every millisecond until `timeout_s`) and runs `sql` on that connection.
  // `connected_at`: NowSeconds() when the connection succeeded.
  absl::Status WaitAndQuery(const std::string& conninfo, const std::string& sql, double timeout_s,
                            double* connected_at);

 private:
  void* handle_ = nullptr;
  void* (*connectdb_)(const char*) = nullptr;
  int (*status_)(const void*) = nullptr;
  char* (*error_message_)(const void*) = nullptr;
  void (*finish_)(void*) = nullptr;
  void* (*exec_)(void*, const char*) = nullptr;
  int (*result_status_)(const void*) = nullptr;
  char* (*result_error_)(const void*) = nullptr;
  int (*ntuples_)(const void*) = nullptr;
  char* (*getvalue_)(const void*, int, int) = nullptr;
  void (*clear_)(void*) = nullptr;
  absl::Status RunOn(void* conn, const std::string& sql, std::string* value);
};

// A PostgreSQL 15 cluster in `data_dir`, reached over a Unix socket in `socket_dir` (and, when
// started with Listen::kLoopbackTcp, over TCP on 127.0.0.1).
class PgCluster {
 public:
  // Where the server accepts connections besides its Unix socket.
  enum class Listen { kSocketOnly, kLoopbackTcp };

  PgCluster(std::string data_dir, std::string socket_dir, int port, std::string log);
  ~PgCluster();  // stops it (immediate) if running

  // initdb (with fsync: no --no-sync); returns the elapsed seconds.
  absl::StatusOr<double> InitDb();
  // Appends settings to postgresql.conf.
  absl::Status Configure(const std::vector<std::string>& lines);
  absl::Status Start(Listen listen = Listen::kSocketOnly);  // pg_ctl start -w
  absl::Status Stop();  // pg_ctl stop -m fast -w (a clean shutdown)
  // SIGKILL of the postmaster and of every child of it (a crash of the whole server); returns once
  // they are all gone. The data directory is left as the crash left it.
  absl::Status Crash();
  // pg_ctl start without waiting, then connection attempts every millisecond until one succeeds:
  // the seconds from the start to the first accepted connection (after a crash: crash recovery).
  absl::StatusOr<double> StartUntilConnected(double timeout_s);
  std::string ConnInfo() const;  // over the Unix socket
  // postgresql://postgres@127.0.0.1:<port>/<dbname>: over TCP (Start(Listen::kLoopbackTcp)).
  std::string TcpUri(const std::string& dbname) const;
  absl::Status Sql(const std::string& sql, std::string* value = nullptr);
  // Runs pgbench with `args` (connection options are added); returns the output.
  absl::StatusOr<std::string> Pgbench(const std::vector<std::string>& args);

  const std::string& data_dir() const { return data_dir_; }
  int port() const { return port_; }

 private:
  std::string data_dir_, socket_dir_, log_;
  int port_;
  bool running_ = false;
  // The postmaster's options: port, socket directory, listen_addresses.
  std::string ServerOptions(Listen listen) const;
};

// PostgreSQL 15 on the local disk with the default configuration (fsync, synchronous_commit on)
// in `dir` (created, owned by postgres), listening on a free port of 127.0.0.1 and on a Unix
// socket: the baseline the local-bench sections set pgbranch against. Stopped (immediate) when
// destroyed; Stop() for a clean shutdown.
absl::StatusOr<std::unique_ptr<PgCluster>> StartLoopbackCluster(const std::string& dir);

// "tps = 1234.5 (without initial connection time)" -> 1234.5; -1 if absent.
double ParseTps(const std::string& pgbench_output);

// A real pageserver on a scratch directory, with one tenant, and pagefs mounts of its timelines.
class PagefsEnv {
 public:
  explicit PagefsEnv(const BenchConfig& config);
  ~PagefsEnv();
  absl::Status Start(const std::string& tenant);
  // A root timeline when `ancestor` is empty, else a branch at the ancestor's head.
  absl::Status CreateTimeline(const std::string& id, const std::string& ancestor);
  // Mounts a timeline read-write at `mountpoint`; `metrics_port` > 0 serves pagefs metrics.
  // `extra_args`: more pagefs flags.
  absl::StatusOr<std::unique_ptr<testing::PagefsMount>> Mount(
      const std::string& timeline, const std::string& mountpoint, int metrics_port = 0,
      const std::vector<std::string>& extra_args = {});
  // RunMaintenance: the pageserver writes its in-memory layers to layer files.
  absl::Status Checkpoint();
  const std::string& dir() const { return scratch_.path(); }

 private:
  ScratchDir scratch_;
  std::string tenant_;
  std::unique_ptr<testing::PageserverProcess> server_;
  std::string transport_ = "tcp";  // PGBRANCH_BENCH_TRANSPORT
  std::unique_ptr<v1::PageService::Stub> stub_;
};

}  // namespace pgbranch::pagefs_bench
