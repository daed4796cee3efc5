#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pageserver/proto/pageserver.grpc.pb.h"
#include "tests/support/pageserver_process.h"
#include "tests/support/postgres_instance.h"

namespace pgbranch::testing {

// One real `pgbranch-compute` process run by a test: its config and workdir live in the test's
// directory, its stderr in workdir.log. Killed (SIGKILL) on destruction if still running.
class ComputeProcess {
 public:
  struct Options {
    std::string name;  // endpoint name; also names the workdir
    std::string pageserver;
    std::string tenant = "t1";
    std::string timeline;
    bool read_only = false;
    std::string password = "s3cret-pw";
    std::map<std::string, std::string> parameters;
    // Started as a spare (`--spare-under` the test's directory, stdin a pipe): Spawn writes the
    // config; HandOver sends it as local mode's controller does.
    bool spare = false;
  };

  ComputeProcess(std::string base_dir, Options options);
  ~ComputeProcess();

  // Writes the config and spawns the agent (does not wait).
  absl::Status Spawn();
  // A spare's hand-over: "CONFIG<TAB>LOG" and a newline on its stdin, which is then closed.
  absl::Status HandOver();
  // Polls /status until state is running; an error (with the agent's log) if it exits or fails.
  absl::Status WaitRunning(int timeout_seconds = 120);
  // GET /status, parsed.
  absl::StatusOr<YAML::Node> Status() const;
  // Sends `sig` and waits for the exit code (or -1 after `timeout_seconds`).
  int StopWith(int sig, int timeout_seconds = 120);
  // Waits for the agent to exit on its own: its exit code, -1 on timeout.
  int WaitExit(int timeout_seconds);
  // Runs `sql` with psql over TCP as the endpoint's role (SCRAM); `password` overrides.
  CommandResult Psql(const std::string& sql, const std::string& password = "") const;

  std::string ConnUri(const std::string& password = "") const;
  std::string Log() const;
  std::string workdir() const { return base_dir_ + "/" + options_.name; }
  std::string mountpoint() const { return workdir() + "/mnt"; }
  int pg_port() const { return pg_port_; }
  pid_t pid() const { return pid_; }
  // Milliseconds from Spawn() to the first /status that said running (0 until then).
  double spawn_to_running_ms() const { return spawn_to_running_ms_; }

 private:
  std::string base_dir_;
  Options options_;
  int pg_port_ = 0;
  pid_t pid_ = -1;
  int spare_stdin_ = -1;  // the pipe to a spare's stdin, until HandOver
  std::chrono::steady_clock::time_point spawned_at_;
  double spawn_to_running_ms_ = 0;
};

// A loopback TCP port nobody listens on right now.
int FreePort();
// Whether `path` is listed in /proc/self/mounts.
bool IsMounted(const std::string& path);
// PIDs of processes whose command line mentions `needle`.
std::vector<pid_t> ProcessesMentioning(const std::string& needle);
// GET http://127.0.0.1:port/path: the body, or an error.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path);

// A real pageserver with tenant t1 (root timeline `main`) in a fresh directory.
class ComputeTest : public ::testing::Test {
 protected:
  void SetUp() override;
  absl::Status CreateBranch(const std::string& id, const std::string& parent);
  std::unique_ptr<ComputeProcess> NewCompute(const std::string& name, const std::string& timeline,
                                             bool read_only = false);

  TempDir dir_;
  std::unique_ptr<PageserverProcess> server_;
  std::unique_ptr<pageserver::v1::PageService::Stub> stub_;
};

}  // namespace pgbranch::testing
