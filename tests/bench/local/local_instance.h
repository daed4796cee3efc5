#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/bench/pagefs/pagefs_bench_util.h"
#include "tests/support/postgres_instance.h"

// A local-mode instance (pageserver, controller, proxy) for the sections of local-bench that
// time a branch's start: the CLI, the controller's API, and the logs each step writes.
namespace pgbranch::local_bench {

// The directory of the pgbranch binaries ($PGBRANCH_BIN_DIR, else the build's).
std::string BinDir();

// One local-mode instance in a scratch state directory; `local down` on destruction.
class LocalInstance {
 public:
  explicit LocalInstance(const std::string& base) : dir_(base) {}
  ~LocalInstance();
  LocalInstance(const LocalInstance&) = delete;
  LocalInstance& operator=(const LocalInstance&) = delete;

  absl::Status Up(const std::vector<std::string>& extra = {});
  testing::CommandResult Cli(const std::vector<std::string>& args) const;
  absl::StatusOr<std::string> Connstr(const std::string& endpoint) const;
  // `branch create name [--parent parent] --suspend-timeout suspend_timeout` (which waits until
  // its compute runs), then its connection string through the proxy.
  absl::StatusOr<std::string> CreateBranch(const std::string& name, const std::string& parent = "",
                                           const std::string& suspend_timeout = "0s") const;
  // Where the compute's PostgreSQL listens (waking it if needed).
  absl::StatusOr<int> DirectPort(const std::string& endpoint) const;
  // The endpoint's status.phase from the controller's API.
  absl::StatusOr<std::string> Phase(const std::string& endpoint) const;
  // Polls Phase until it is `phase` (at most 60 s).
  absl::Status WaitPhase(const std::string& endpoint, const std::string& phase) const;
  // DELETE of a branch or endpoint through the API, without waiting for it to go.
  absl::Status DeleteAsync(const std::string& kind_path) const;

  const std::string& dir() const { return dir_.path(); }
  std::string ComputeLog(const std::string& endpoint) const;
  std::string PostgresLog(const std::string& endpoint) const;
  std::string ControllerLog() const;
  // `s` unchanged when ok; otherwise with the tails of the logs of every compute that failed
  // (an error in compute.log, FATAL or PANIC in postgres.log) appended: the scratch directory
  // goes away with the instance, so a failed run must say why before it does.
  absl::Status Explain(absl::Status s) const;

 private:
  pagefs_bench::ScratchDir dir_;
  bool up_ = false;
  int controller_port_ = 0;
};

// The lines of a pgbranch log (`ts=... level=... msg="..." key=value ...`).
struct LogLine {
  absl::Time ts = absl::InfinitePast();
  std::string msg;
  std::string text;  // the whole line
  // The value of `key` ("" when absent).
  std::string Field(const std::string& key) const;
};
// The first line of `log` whose message is `msg` and whose fields hold every (key, value) of
// `match`; none when absent.
std::optional<LogLine> FindLogLine(const std::string& log, const std::string& msg,
                                   const std::vector<std::pair<std::string, std::string>>& match);
// The time of the first line of a PostgreSQL log (log_line_prefix '%m [%p] ', UTC) containing
// `needle`; InfinitePast when absent.
absl::Time PostgresLogTime(const std::string& log, const std::string& needle);

// `uri` with its port replaced.
std::string ConnectionOnPort(const std::string& uri, int port);

}  // namespace pgbranch::local_bench
