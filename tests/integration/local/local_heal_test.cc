// Daemons heal and status tells the truth (issue 9), through the real CLI against real
// processes: `kill -9` of each daemon then `local up` repairs without touching running computes;
// the controller restarts a dead proxy or pageserver by itself; `local down` after a controller
// crash leaves no process and no mount; running endpoints stay reachable while the controller is
// down; an unreachable pageserver shows in the endpoint's status and in the client's error; a
// 63-character endpoint name works; changed postgresParameters are reloaded or applied by an
// announced restart.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/integration/local/local_mode_fixture.h"

namespace pgbranch::testing {
namespace {

// The pid of the first process whose command line (arguments joined by spaces) holds `needle`.
pid_t PidOf(const std::string& needle) {
  for (const auto& [pid, cmd] : CommandLines()) {
    if (cmd.find(needle) != std::string::npos && std::atoi(pid.c_str()) != ::getpid()) {
      return std::atoi(pid.c_str());
    }
  }
  return 0;
}

// Polls `done` every 100 ms until it holds or `timeout` passes (a bound, not a measurement).
bool Eventually(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(60)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    ::usleep(100'000);
  }
  return done();
}

std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/mounts");
  std::string dev, mnt, rest;
  while (in >> dev >> mnt && std::getline(in, rest)) {
    if (mnt.rfind(dir + "/", 0) == 0) out.push_back(mnt);
  }
  return out;
}

class LocalHealTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status s = local_.Up();
    ASSERT_TRUE(s.ok()) << s;
  }

  std::string ControllerNeedle() const {
    return absl::StrCat("--state-dir ", local_.state_dir(), " local controller");
  }
  std::string PageserverNeedle() const {
    return absl::StrCat("--port-file ", local_.state_dir(), "/run/pageserver.port");
  }
  std::string ProxyNeedle() const {
    return absl::StrCat("--port-file ", local_.state_dir(), "/run/proxy.port");
  }
  void Kill9(const std::string& needle) {
    pid_t pid = PidOf(needle);
    ASSERT_NE(pid, 0) << "not running: " << needle;
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    ASSERT_TRUE(Eventually([&] { return PidOf(needle) != pid; }, absl::Seconds(10)));
  }
  void CreateBranch(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"branch", "create"};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = local_.Cli(argv);
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  }
  std::string PostmasterStart(const std::string& uri) {
    return local_.Query(uri, "SELECT pg_postmaster_start_time()");
  }
  // The endpoint's condition of `type` as "status/reason: message" ("" if absent).
  std::string Condition(const std::string& endpoint, const std::string& type) {
    CommandResult r = local_.Cli({"-o", "json", "endpoint", "get", endpoint});
    if (r.exit_code != 0) return "";
    try {
      web::json::value v = web::json::value::parse(r.out);
      if (!v.at("status").has_field("conditions")) return "";
      for (const auto& c : v.at("status").at("conditions").as_array()) {
        if (c.at("type").as_string() != type) continue;
        return absl::StrCat(c.at("status").as_string(), "/", c.at("reason").as_string(), ": ",
                            c.has_field("message") ? c.at("message").as_string() : "");
      }
    } catch (const std::exception&) {
    }
    return "";
  }

  LocalMode local_;
};

TEST_F(LocalHealTest, LocalUpRepairsKilledDaemonsWithoutTouchingComputes) {
  CreateBranch({"main"});
  const std::string uri = local_.Connstr("main");
  local_.Query(uri, "CREATE TABLE t (v int); INSERT INTO t SELECT generate_series(1, 100)");
  const std::string started = PostmasterStart(uri);

  // The controller alone (nothing supervises the others then).
  Kill9(ControllerNeedle());
  web::json::value st = local_.CliJson({"local", "status"});
  EXPECT_FALSE(st.at("processes").at("controller").as_bool()) << "status tells the truth";
  CommandResult up = local_.Cli({"local", "up"});
  ASSERT_EQ(up.exit_code, 0) << up.Describe();
  EXPECT_TRUE(absl::StrContains(up.out, "repaired: restarted the controller")) << up.out;
  EXPECT_EQ(PostmasterStart(uri), started) << "the running compute was left alone";
  local_.Query(uri, "INSERT INTO t SELECT generate_series(101, 200)");

  // The controller and the proxy: the compute is untouched.
  Kill9(ControllerNeedle());
  Kill9(ProxyNeedle());
  up = local_.Cli({"local", "up"});
  ASSERT_EQ(up.exit_code, 0) << up.Describe();
  EXPECT_TRUE(absl::StrContains(up.out, "the controller")) << up.out;
  EXPECT_TRUE(absl::StrContains(up.out, "pgbranch-proxy")) << up.out;
  EXPECT_EQ(local_.Connstr("main"), uri) << "same ports, same connection string";
  EXPECT_EQ(PostmasterStart(uri), started) << "the running compute was left alone";

  // All three. Every acknowledged row survives. (A pageserver that dies while pagefs has a
  // commit in flight fails that commit: PostgreSQL PANICs on the failed fsync and the compute
  // restarts; see docs/local-mode-healing.md.)
  Kill9(ControllerNeedle());
  Kill9(ProxyNeedle());
  Kill9(PageserverNeedle());
  up = local_.Cli({"local", "up"});
  ASSERT_EQ(up.exit_code, 0) << up.Describe();
  EXPECT_TRUE(absl::StrContains(up.out, "pgbranch-pageserver")) << up.out;
  EXPECT_TRUE(absl::StrContains(up.out, "the controller")) << up.out;
  EXPECT_TRUE(absl::StrContains(up.out, "pgbranch-proxy")) << up.out;
  st = local_.CliJson({"local", "status"});
  EXPECT_TRUE(st.at("healthy").as_bool()) << st.serialize();
  EXPECT_EQ(local_.Connstr("main"), uri) << "same ports, same connection string";
  EXPECT_TRUE(Eventually([&] {
    return local_.Psql(uri, "INSERT INTO t VALUES (201)").exit_code == 0;
  })) << "writes work again";
  EXPECT_EQ(local_.Query(uri, "SELECT count(*), sum(v) FROM t"), "201|20301");
  if (PostmasterStart(uri) != started) {
    std::cout << "note: PostgreSQL restarted after the pageserver's kill (a commit was in "
                 "flight)\n";
  }

  // Nothing to repair: says so, changes nothing.
  const std::string now_started = PostmasterStart(uri);
  up = local_.Cli({"local", "up"});
  ASSERT_EQ(up.exit_code, 0) << up.Describe();
  EXPECT_TRUE(absl::StrContains(up.out, "nothing to repair")) << up.out;
  EXPECT_EQ(PostmasterStart(uri), now_started);
}

TEST_F(LocalHealTest, ControllerRestartsAKilledProxyAndPageserver) {
  CreateBranch({"main"});
  const std::string uri = local_.Connstr("main");
  local_.Query(uri, "CREATE TABLE t (v int); INSERT INTO t SELECT generate_series(1, 50)");
  const std::string started = PostmasterStart(uri);
  // The mount reaches the pageserver on its Unix socket (the state directory's path is short),
  // the pageserver serves it, and the kill below and the restart keep it.
  const std::string sock = local_.state_dir() + "/run/ps.sock";
  EXPECT_NE(PidOf("pagefs --pageserver unix:" + sock), 0) << "pagefs is not on the Unix socket";
  EXPECT_NE(PidOf("--listen-unix " + sock), 0) << "the pageserver does not serve it";
  // Commits go over the commit channel (the default), which the pageserver's kill breaks and
  // pagefs reconnects once the restarted pageserver serves it again.
  const std::string channel = local_.state_dir() + "/run/pc.sock";
  EXPECT_NE(PidOf("--commit-channel unix:" + channel), 0) << "pagefs is not on the commit channel";
  EXPECT_NE(PidOf("--commit-socket " + channel), 0) << "the pageserver does not serve it";

  auto controller_log = [&] {
    std::ifstream log(local_.state_dir() + "/logs/controller.log");
    std::stringstream text;
    text << log.rdbuf();
    return text.str();
  };
  for (const auto& [needle, name] : std::vector<std::pair<std::string, std::string>>{
           {ProxyNeedle(), "pgbranch-proxy"}, {PageserverNeedle(), "pgbranch-pageserver"}}) {
    pid_t before = PidOf(needle);
    Kill9(needle);
    // Restarted once it listens again (writes before that fail: see docs/local-mode-healing.md).
    EXPECT_TRUE(Eventually([&] {
      pid_t now = PidOf(needle);
      return now != 0 && now != before && absl::StrContains(controller_log(), "Restarted " + name);
    })) << "not restarted: "
        << needle << "\n"
        << controller_log();
    // Back on the same address: the same connection string works, the rows are there.
    EXPECT_TRUE(Eventually([&] { return local_.Psql(uri, "SELECT 1").exit_code == 0; }));
    EXPECT_EQ(local_.Query(uri, "SELECT count(*) FROM t"), "50");
    if (name == "pgbranch-proxy") {
      EXPECT_EQ(PostmasterStart(uri), started);
    }
  }
  EXPECT_TRUE(Eventually([&] {
    return local_.Psql(uri, "INSERT INTO t VALUES (51)").exit_code == 0;
  })) << "writes work again";
  EXPECT_EQ(local_.Query(uri, "SELECT count(*) FROM t"), "51");
  EXPECT_TRUE(local_.CliJson({"local", "status"}).at("healthy").as_bool());
  EXPECT_NE(PidOf("--listen-unix " + sock), 0) << "the restarted pageserver serves the socket";
  EXPECT_NE(PidOf("--commit-socket " + channel), 0) << "and the commit channel";
}

TEST_F(LocalHealTest, DownAfterAControllerCrashLeavesNoProcessAndNoMount) {
  CreateBranch({"main"});
  CreateBranch({"dev", "--parent", "main"});
  local_.Query(local_.Connstr("main"), "CREATE TABLE t (v int)");
  local_.Query(local_.Connstr("dev"), "SELECT 1");
  ASSERT_EQ(local_.PostmastersRunning(), 2);
  Kill9(ControllerNeedle());
  local_.Down();  // checks that no process of the state directory is left
  EXPECT_TRUE(MountsUnder(local_.state_dir()).empty());
  EXPECT_EQ(PidOf(local_.state_dir()), 0);
}

TEST_F(LocalHealTest, RunningEndpointsStayReachableWhileTheControllerIsDown) {
  CreateBranch({"main"});
  CreateBranch({"dev", "--parent", "main", "--suspend-timeout", "1s"});
  const std::string main_uri = local_.Connstr("main");
  const std::string dev_uri = local_.Connstr("dev");
  local_.Query(main_uri, "CREATE TABLE t (v int); INSERT INTO t VALUES (1)");
  ASSERT_TRUE(local_.WaitPhase("dev", "Suspended"));

  Kill9(ControllerNeedle());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(local_.Query(main_uri, "SELECT count(*) FROM t"), "1");
  }
  local_.Query(main_uri, "INSERT INTO t VALUES (2)");
  CommandResult woken = local_.Psql(dev_uri, "SELECT 1", 60);
  EXPECT_NE(woken.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(woken.err,
                                "the pgbranch controller is not running; run `pgbranch local up`"))
      << woken.err;

  CommandResult up = local_.Cli({"local", "up"});
  ASSERT_EQ(up.exit_code, 0) << up.Describe();
  EXPECT_EQ(local_.Query(dev_uri, "SELECT 1"), "1");
  EXPECT_EQ(local_.Query(main_uri, "SELECT count(*) FROM t"), "2");
}

TEST_F(LocalHealTest, AnUnreachablePageserverShowsInStatusAndInTheClientsError) {
  CreateBranch({"main"});
  const std::string uri = local_.Connstr("main");
  local_.Query(uri, "CREATE TABLE t (v int); INSERT INTO t VALUES (1)");
  // Stopped, not dead: the supervisor has nothing to restart, and the port still accepts.
  pid_t pageserver = PidOf(PageserverNeedle());
  ASSERT_NE(pageserver, 0);
  ASSERT_EQ(::kill(pageserver, SIGSTOP), 0);
  EXPECT_TRUE(Eventually([&] {
    return absl::StartsWith(Condition("main", "PageserverReachable"), "False/Unreachable");
  })) << Condition("main", "PageserverReachable");
  EXPECT_TRUE(local_.WaitPhase("main", "Degraded"));
  CommandResult psql = local_.Psql(uri, "SELECT 1", 60);
  EXPECT_NE(psql.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(psql.err, "the pageserver at")) << psql.err;
  EXPECT_FALSE(absl::StrContains(psql.err, "Input/output error")) << psql.err;

  ASSERT_EQ(::kill(pageserver, SIGCONT), 0);
  EXPECT_TRUE(local_.WaitPhase("main", "Running"));
  EXPECT_EQ(Condition("main", "PageserverReachable"), "");
  EXPECT_EQ(local_.Query(uri, "SELECT count(*) FROM t"), "1");
}

TEST_F(LocalHealTest, ASixtyThreeCharacterEndpointNameWorks) {
  const std::string name = "long-" + std::string(58, 'n');
  ASSERT_EQ(name.size(), 63u);
  CreateBranch({name});
  const std::string uri = local_.Connstr(name);
  local_.Query(uri, "CREATE TABLE t (v int); INSERT INTO t VALUES (63)");
  EXPECT_EQ(local_.Query(uri, "SELECT v FROM t"), "63");
  EXPECT_EQ(local_.Query(uri, "SHOW cluster_name"), name);
}

TEST_F(LocalHealTest, ChangedPostgresParametersAreReloadedOrAppliedByAnAnnouncedRestart) {
  CreateBranch({"main"});
  const std::string uri = local_.Connstr("main");
  EXPECT_EQ(local_.Query(uri, "SHOW work_mem"), "4MB");
  const std::string started = PostmasterStart(uri);
  auto apply = [&](const std::string& parameters) {
    std::string manifest = absl::StrCat(
        "apiVersion: pgbranch.io/v1alpha1\nkind: Endpoint\nmetadata: {name: main}\n"
        "spec: {branch: main, postgresParameters: {",
        parameters, "}}\n");
    CommandResult r = local_.Cli({"apply", "-f", "-"}, 60, manifest);
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  };

  // Reloadable (pg_settings.context 'user'): an open session sees it, no restart.
  PostgresPipe session;
  ASSERT_TRUE(session
                  .Start({"/usr/lib/postgresql/15/bin/psql", "-X", "-At", "-v", "ON_ERROR_STOP=1",
                          "-d", uri})
                  .ok());
  ASSERT_TRUE(session.Write("SELECT pg_backend_pid();\n").ok());
  absl::StatusOr<std::string> backend = session.ReadLine(60);
  ASSERT_TRUE(backend.ok()) << backend.status();
  apply("work_mem: 8MB");
  EXPECT_TRUE(Eventually([&] {
    return absl::StartsWith(Condition("main", "ParametersApplied"), "True/Reloaded");
  })) << Condition("main", "ParametersApplied");
  EXPECT_EQ(local_.Query(uri, "SHOW work_mem"), "8MB");
  ASSERT_TRUE(session.Write("SELECT pg_backend_pid(); SHOW work_mem;\n").ok());
  absl::StatusOr<std::string> same = session.ReadLine(60);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(*same, *backend) << "the same session";
  absl::StatusOr<std::string> shown = session.ReadLine(60);
  ASSERT_TRUE(shown.ok()) << shown.status();
  EXPECT_EQ(*shown, "8MB");
  ASSERT_TRUE(session.Write("\\q\n").ok());
  EXPECT_EQ(PostmasterStart(uri), started) << "a reload, not a restart";

  // Restart-only (context 'postmaster'): a restart, announced in the endpoint's status.
  apply("work_mem: 8MB, shared_buffers: 32MB");
  EXPECT_TRUE(Eventually([&] {
    return absl::StartsWith(Condition("main", "ParametersApplied"), "True/Restarted");
  })) << Condition("main", "ParametersApplied");
  EXPECT_TRUE(absl::StrContains(Condition("main", "ParametersApplied"), "shared_buffers"));
  EXPECT_TRUE(local_.WaitPhase("main", "Running"));
  EXPECT_EQ(local_.Query(uri, "SHOW shared_buffers"), "32MB");
  EXPECT_EQ(local_.Query(uri, "SHOW work_mem"), "8MB");
  EXPECT_NE(PostmasterStart(uri), started) << "restarted";
}

}  // namespace
}  // namespace pgbranch::testing
