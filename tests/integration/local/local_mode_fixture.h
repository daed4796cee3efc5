#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/cpprest.h"
#include "tests/support/postgres_instance.h"

// Tier 4: local mode end to end, driven through the real `pgbranch` CLI (real pageserver, proxy,
// controller, compute agents, pagefs mounts and PostgreSQL 15). Needs root and /dev/fuse.
namespace pgbranch::testing {

// The ecommerce sample of the quick start (scripts/sql/ecommerce.sql), as SQL text.
std::string SampleSql();

// Every process's command line (arguments joined by spaces), keyed by pid.
std::vector<std::pair<std::string, std::string>> CommandLines();

class LocalMode {
 public:
  LocalMode();
  ~LocalMode();

  // `pgbranch local up` on a fresh state directory, with the test clock (and `extra_args`).
  absl::Status Up(const std::vector<std::string>& extra_args = {});
  void Down();

  // Runs `pgbranch --state-dir D ARGS...`.
  CommandResult Cli(const std::vector<std::string>& args, int timeout_seconds = 180,
                    const std::string& input = "") const;
  // The same with `-o json`, parsed; a null value (and a test failure) on error.
  web::json::value CliJson(const std::vector<std::string>& args) const;
  std::string Connstr(const std::string& endpoint) const;
  // psql -X -At -v ON_ERROR_STOP=1 -d URI -c SQL.
  CommandResult Psql(const std::string& uri, const std::string& sql,
                     int timeout_seconds = 120) const;
  // The trimmed output of a statement that must succeed.
  std::string Query(const std::string& uri, const std::string& sql) const;
  // Waits (up to `timeout`) until the endpoint's phase is `phase`.
  bool WaitPhase(const std::string& endpoint, const std::string& phase,
                 absl::Duration timeout = absl::Seconds(60)) const;
  // PostgreSQL postmasters running on this instance's computes.
  int PostmastersRunning() const;
  bool Mounted(const std::string& endpoint) const;

  const std::string& state_dir() const { return state_dir_; }
  int proxy_port() const { return proxy_port_; }

 private:
  std::string state_dir_;
  int proxy_port_ = 0;
  bool up_ = false;
};

}  // namespace pgbranch::testing
