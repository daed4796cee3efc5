#include "tests/integration/local/local_mode_fixture.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace pgbranch::testing {
namespace {

namespace fs = std::filesystem;

std::string BinDir() {
  const char* d = std::getenv("PGBRANCH_BIN_DIR");
  return d && *d ? d : PGBRANCH_DEFAULT_BIN_DIR;
}

}  // namespace

// Every process's command line, arguments joined by spaces.
std::vector<std::pair<std::string, std::string>> CommandLines() {
  std::vector<std::pair<std::string, std::string>> out;
  std::error_code ec;
  for (const auto& p : fs::directory_iterator("/proc", ec)) {
    std::string name = p.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream in(p.path() / "cmdline");
    std::stringstream buf;
    buf << in.rdbuf();
    std::string cmd = buf.str();
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    out.emplace_back(name, cmd);
  }
  return out;
}

LocalMode::LocalMode() {
  char tmpl[] = "/tmp/pgb-local-XXXXXX";  // short: socket paths live below it
  state_dir_ = ::mkdtemp(tmpl);
}

LocalMode::~LocalMode() {
  Down();
  std::error_code ec;
  if (!std::getenv("PGBRANCH_KEEP_TEST_STATE")) fs::remove_all(state_dir_, ec);
}

absl::Status LocalMode::Up(const std::vector<std::string>& extra_args) {
  std::vector<std::string> args = {"local", "up", "--proxy-port", "0", "--test-clock"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  CommandResult r = Cli(args);
  if (r.exit_code != 0) return absl::InternalError("local up failed: " + r.Describe());
  up_ = true;
  web::json::value status = CliJson({"local", "status"});
  proxy_port_ = status.has_field("proxyPort") ? status.at("proxyPort").as_integer() : 0;
  return absl::OkStatus();
}

void LocalMode::Down() {
  if (!up_) return;
  up_ = false;
  CommandResult r = Cli({"local", "down"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(PostmastersRunning(), 0) << "local down left PostgreSQL running";
  // Nothing of this instance is left: pageserver, controller, proxy, agents, pagefs.
  for (const auto& [pid, cmd] : CommandLines()) {
    EXPECT_EQ(cmd.find(state_dir_), std::string::npos)
        << "left running: pid " << pid << ": " << cmd;
  }
}

CommandResult LocalMode::Cli(const std::vector<std::string>& args, int timeout_seconds,
                             const std::string& input) const {
  std::vector<std::string> argv = {BinDir() + "/pgbranch", "--state-dir", state_dir_};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, input, timeout_seconds);
}

web::json::value LocalMode::CliJson(const std::vector<std::string>& args) const {
  std::vector<std::string> with = {"-o", "json"};
  with.insert(with.end(), args.begin(), args.end());
  CommandResult r = Cli(with);
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  try {
    return web::json::value::parse(r.out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON: " << r.out;
    return web::json::value::null();
  }
}

std::string LocalMode::Connstr(const std::string& endpoint) const {
  CommandResult r = Cli({"connstr", endpoint});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  return std::string(absl::StripAsciiWhitespace(r.out));
}

CommandResult LocalMode::Psql(const std::string& uri, const std::string& sql,
                              int timeout_seconds) const {
  return RunCommand({"/usr/lib/postgresql/15/bin/psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d",
                     uri, "-c", sql},
                    "", timeout_seconds);
}

std::string LocalMode::Query(const std::string& uri, const std::string& sql) const {
  CommandResult r = Psql(uri, sql);
  EXPECT_EQ(r.exit_code, 0) << sql << ": " << r.Describe();
  return std::string(absl::StripAsciiWhitespace(r.out));
}

bool LocalMode::WaitPhase(const std::string& endpoint, const std::string& phase,
                          absl::Duration timeout) const {
  absl::Time deadline = absl::Now() + timeout;
  std::string last;
  while (absl::Now() < deadline) {
    CommandResult r = Cli({"-o", "json", "endpoint", "get", endpoint});
    if (r.exit_code == 0) {
      try {
        auto v = web::json::value::parse(r.out);
        last = v.at("status").at("phase").as_string();
        if (last == phase) return true;
      } catch (const std::exception&) {
      }
    }
    ::usleep(100'000);
  }
  ADD_FAILURE() << "endpoint " << endpoint << " did not reach " << phase << " (last: " << last
                << ")";
  return false;
}

int LocalMode::PostmastersRunning() const {
  int n = 0;
  const std::string needle = state_dir_ + "/computes/";
  for (const auto& [pid, cmd] : CommandLines()) {
    // The postmaster: ".../bin/postgres -D <state>/computes/<ep>/mnt/pgdata ..."
    if (cmd.find("bin/postgres") != std::string::npos && cmd.find(needle) != std::string::npos) {
      ++n;
    }
  }
  return n;
}

bool LocalMode::Mounted(const std::string& endpoint) const {
  std::ifstream in("/proc/mounts");
  std::string dev, mnt, rest;
  const std::string want = state_dir_ + "/computes/" + endpoint + "/mnt";
  while (in >> dev >> mnt && std::getline(in, rest)) {
    if (mnt == want) return true;
  }
  return false;
}

std::string SampleSql() {
  std::ifstream in(std::string(PGBRANCH_SOURCE_DIR) + "/scripts/sql/ecommerce.sql");
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

}  // namespace pgbranch::testing
