// pgbranch-compute end to end (DESIGN.md section 6, tier 4 groundwork): a real pageserver, the
// real agent binary, pagefs and PostgreSQL 15. Needs root, /dev/fuse and postgresql-15.
// Timings are printed, never asserted.
#include <libpq-fe.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/net_util.h"
#include "tests/integration/compute/compute_fixture.h"

namespace pgbranch::testing {
namespace {

using std::chrono::steady_clock;

// Polls /status until `pred` holds (or 60 s): the last status seen.
YAML::Node WaitForStatus(const ComputeProcess& c,
                         const std::function<bool(const YAML::Node&)>& pred) {
  YAML::Node last;
  auto deadline = steady_clock::now() + std::chrono::seconds(60);
  while (steady_clock::now() < deadline) {
    absl::StatusOr<YAML::Node> s = c.Status();
    if (s.ok()) {
      last = *s;
      if (pred(last)) return last;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return last;
}

int64_t ParseRfc3339Micros(const std::string& s) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, s, &t, &err)) return -1;
  return absl::ToUnixMicros(t);
}

// Stops a compute with SIGTERM and checks the clean-suspend contract: exit 0, nothing mounted,
// no PostgreSQL left. Prints how long it took.
size_t CountOf(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

bool FileExists(const std::string& path) {
  std::ifstream in(path);
  return in.good();
}

void SuspendAndCheck(ComputeProcess* c, const char* what) {
  auto t0 = steady_clock::now();
  int code = c->StopWith(SIGTERM, 120);
  double ms = std::chrono::duration<double, std::milli>(steady_clock::now() - t0).count();
  printf("[timing] %s: SIGTERM -> exit %.0f ms\n", what, ms);
  EXPECT_EQ(code, 0) << c->Log();
  EXPECT_FALSE(IsMounted(c->mountpoint())) << c->mountpoint();
  EXPECT_TRUE(ProcessesMentioning(c->workdir() + "/").empty())
      << "processes of " << c->workdir() << " left behind";
  EXPECT_TRUE(absl::StrContains(c->Log(), "msg=Suspended")) << c->Log();
}

TEST_F(ComputeTest, NewRootBranchServesScramActivityAndSuspends) {
  auto main = NewCompute("main", "main");
  ASSERT_TRUE(main->Spawn().ok());
  absl::Status s = main->WaitRunning();
  ASSERT_TRUE(s.ok()) << s;
  printf("[timing] new root branch (initdb): spawn -> running %.0f ms\n",
         main->spawn_to_running_ms());
  EXPECT_TRUE(absl::StrContains(main->Log(), "Initialised a new database"));

  // SCRAM over TCP as the endpoint's role, in its own database.
  CommandResult r = main->Psql(
      "CREATE TABLE items (id int PRIMARY KEY, note text); "
      "INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, 100) g; "
      "SELECT current_user || ' ' || current_database() || ' ' || count(*) FROM items");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "CREATE TABLE\nINSERT 0 100\napp app 100\n");
  r = main->Psql("SELECT 1", "wrong-password");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.err, "password authentication failed")) << r.Describe();
  r = main->Psql("SHOW shared_buffers");
  EXPECT_EQ(r.out, "32MB\n") << r.Describe();

  // Nothing open: not busy (the agent's own connection does not count).
  YAML::Node st =
      WaitForStatus(*main, [](const YAML::Node& n) { return n["client_sessions"].as<int>() == 0; });
  ASSERT_TRUE(st.IsMap());
  EXPECT_EQ(st["state"].as<std::string>(), "running");
  EXPECT_EQ(st["pg_port"].as<int>(), main->pg_port());
  EXPECT_FALSE(st["busy"].as<bool>());
  EXPECT_EQ(st["autovacuum_workers"].as<int>(), 0);
  EXPECT_GT(st["startup_seconds"].as<double>(), 0);
  const int64_t started_at = ParseRfc3339Micros(st["started_at"].as<std::string>());
  EXPECT_GT(started_at, 0);

  // An idle-in-transaction session keeps the compute busy.
  PGconn* conn = PQconnectdb(main->ConnUri().c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  PQclear(PQexec(conn, "BEGIN"));
  PQclear(PQexec(conn, "SELECT count(*) FROM items"));
  st = WaitForStatus(*main, [](const YAML::Node& n) {
    return n["sessions"]["idle_in_transaction"].as<int>() == 1;
  });
  EXPECT_EQ(st["sessions"]["idle_in_transaction"].as<int>(), 1);
  EXPECT_EQ(st["sessions"]["active"].as<int>(), 0);
  EXPECT_EQ(st["client_sessions"].as<int>(), 1);
  EXPECT_TRUE(st["busy"].as<bool>());
  absl::StatusOr<std::string> port_text = [&]() -> absl::StatusOr<std::string> {
    std::ifstream in(main->workdir() + ".port");
    int port = 0;
    in >> port;
    return HttpGet(port, "/metrics");
  }();
  ASSERT_TRUE(port_text.ok()) << port_text.status();
  EXPECT_TRUE(
      absl::StrContains(*port_text, "pgbranch_compute_sessions{state=\"idle_in_transaction\"} 1"))
      << *port_text;
  EXPECT_TRUE(absl::StrContains(*port_text, "pgbranch_compute_up 1")) << *port_text;
  PQfinish(conn);

  st = WaitForStatus(*main, [](const YAML::Node& n) { return !n["busy"].as<bool>(); });
  EXPECT_FALSE(st["busy"].as<bool>());
  EXPECT_EQ(st["client_sessions"].as<int>(), 0);
  EXPECT_GT(ParseRfc3339Micros(st["last_active"].as<std::string>()), started_at)
      << "last_active must move when the compute was busy";

  SuspendAndCheck(main.get(), "after initdb");

  // Wake on the same timeline: the rows are there; the fast path is timed.
  ASSERT_TRUE(main->Spawn().ok());
  s = main->WaitRunning();
  ASSERT_TRUE(s.ok()) << s;
  printf("[timing] wake of an existing branch: spawn -> running %.0f ms\n",
         main->spawn_to_running_ms());
  r = main->Psql("SELECT count(*) FROM items");
  EXPECT_EQ(r.out, "100\n") << r.Describe();
  // Cleanly shut down: no replay, no promotion; a new root was initialised, not promoted.
  EXPECT_FALSE(absl::StrContains(main->Log(), "not shut down cleanly")) << main->Log();
  EXPECT_EQ(CountOf(main->Log(), "recovery=initdb"), 1u) << main->Log();
  EXPECT_EQ(CountOf(main->Log(), "recovery=none"), 1u) << main->Log();
  SuspendAndCheck(main.get(), "after wake");
}

TEST_F(ComputeTest, CheckpointOnRequestRunsOnTheAgentsOwnConnection) {
  auto main = NewCompute("main", "main");
  ASSERT_TRUE(main->Spawn().ok());
  absl::Status s = main->WaitRunning();
  ASSERT_TRUE(s.ok()) << s;
  int port = 0;
  std::ifstream(main->workdir() + ".port") >> port;
  ASSERT_GT(port, 0);
  auto checkpoint = [&] {
    return net::HttpRequest("POST", port, "/checkpoint", "", absl::Seconds(30));
  };
  auto superuser = [&](const std::string& sql) {
    return RunAsPostgres({"/usr/lib/postgresql/15/bin/psql", "-h", main->workdir() + "/run", "-p",
                          absl::StrCat(main->pg_port()), "-U", "postgres", "-d", "postgres", "-X",
                          "-At", "-v", "ON_ERROR_STOP=1", "-c", sql},
                         "", 120);
  };
  CommandResult r = main->Psql("CREATE TABLE items AS SELECT g FROM generate_series(1, 1000) g");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  absl::StatusOr<std::string> body = checkpoint();
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_TRUE(absl::StrContains(*body, "\"checkpointed\":true")) << *body;
  // Nothing since: no checkpoint.
  body = checkpoint();
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_TRUE(absl::StrContains(*body, "\"checkpointed\":false")) << *body;
  // The agent's connection broken under it (its backend terminated): the next request
  // reconnects, and checkpoints what was written meanwhile.
  r = superuser(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
      "WHERE application_name = 'pgbranch-compute' AND pid <> pg_backend_pid()");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out, "0\n") << "the agent holds no connection to break";
  r = main->Psql("INSERT INTO items VALUES (-1)");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  body = checkpoint();
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_TRUE(absl::StrContains(*body, "\"checkpointed\":true")) << *body;
  r = superuser(
      "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), redo_lsn) < 1024 "
      "FROM pg_control_checkpoint()");
  EXPECT_EQ(r.out, "t\n") << r.Describe();
  // The checkpoints opened no session of their own: still nothing that keeps it from suspending.
  YAML::Node st =
      WaitForStatus(*main, [](const YAML::Node& n) { return n["client_sessions"].as<int>() == 0; });
  ASSERT_TRUE(st.IsMap());
  EXPECT_FALSE(st["busy"].as<bool>());
  SuspendAndCheck(main.get(), "after checkpoints on request");
}

TEST_F(ComputeTest, BranchOfARunningComputeAndReadOnlyEndpoint) {
  auto main = NewCompute("main", "main");
  ASSERT_TRUE(main->Spawn().ok());
  absl::Status s = main->WaitRunning();
  ASSERT_TRUE(s.ok()) << s;
  CommandResult r = main->Psql(
      "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 10)");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();

  // A child taken while main runs carries main's postmaster.pid: the agent must cope.
  ASSERT_TRUE(CreateBranch("dev", "main").ok());
  auto dev = NewCompute("dev", "dev");
  ASSERT_TRUE(dev->Spawn().ok());
  s = dev->WaitRunning();
  ASSERT_TRUE(s.ok()) << s;
  printf("[timing] branch of a running database (crash recovery): spawn -> running %.0f ms\n",
         dev->spawn_to_running_ms());
  // A crash image with little WAL after its last checkpoint: crash recovery, no promotion.
  EXPECT_TRUE(absl::StrContains(dev->Log(), "recovery=crash")) << dev->Log();
  // Its postmaster was spawned before the mount and let run after it (gated_child.h).
  EXPECT_TRUE(absl::StrContains(dev->Log(), "spawned_ahead=true")) << dev->Log();
  EXPECT_FALSE(FileExists(dev->mountpoint() + "/pgdata/standby.signal"));
  r = dev->Psql("SELECT count(*) FROM items");
  EXPECT_EQ(r.out, "10\n") << r.Describe();
  r = dev->Psql("INSERT INTO items VALUES (11); SELECT count(*) FROM items");
  EXPECT_EQ(r.out, "INSERT 0 1\n11\n") << r.Describe();
  r = main->Psql("SELECT count(*) FROM items");
  EXPECT_EQ(r.out, "10\n") << "an insert on the branch reached its parent: " << r.Describe();
  // The child did not inherit the parent's compute settings.
  r = dev->Psql("SHOW port");
  EXPECT_EQ(r.out, absl::StrCat(dev->pg_port(), "\n")) << r.Describe();

  // Read-only: a hot standby on an ephemeral child of dev.
  ASSERT_TRUE(CreateBranch("dev--ro-reader", "dev").ok());
  auto ro = NewCompute("reader", "dev--ro-reader", /*read_only=*/true);
  ASSERT_TRUE(ro->Spawn().ok());
  s = ro->WaitRunning();
  ASSERT_TRUE(s.ok()) << s;
  printf("[timing] read-only endpoint (hot standby): spawn -> running %.0f ms\n",
         ro->spawn_to_running_ms());
  EXPECT_TRUE(absl::StrContains(ro->Log(), "recovery=standby")) << ro->Log();
  EXPECT_FALSE(absl::StrContains(ro->Log(), "recovery=promote")) << ro->Log();
  EXPECT_TRUE(absl::StrContains(ro->Log(), "spawned_ahead=true")) << ro->Log();
  r = ro->Psql("SELECT pg_is_in_recovery()");
  EXPECT_EQ(r.out, "t\n") << r.Describe();
  r = ro->Psql("SELECT count(*) FROM items");
  EXPECT_EQ(r.out, "11\n") << r.Describe();
  r = ro->Psql("INSERT INTO items VALUES (12)");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.err, "read-only transaction")) << r.Describe();

  // PostgreSQL dying under the agent: state failed, cleanup, exit 1 (the controller restarts).
  pid_t postmaster = 0;
  {
    // Closed at once: an open file would keep the mount busy.
    std::ifstream pid_file(ro->mountpoint() + "/pgdata/postmaster.pid");
    ASSERT_TRUE(pid_file >> postmaster) << "no postmaster.pid";
  }
  ASSERT_EQ(kill(postmaster, SIGKILL), 0);
  EXPECT_EQ(ro->WaitExit(120), 1) << ro->Log();
  EXPECT_TRUE(absl::StrContains(ro->Log(), "PostgreSQL exited unexpectedly")) << ro->Log();
  EXPECT_FALSE(IsMounted(ro->mountpoint()));
  EXPECT_TRUE(ProcessesMentioning(ro->workdir() + "/").empty());

  SuspendAndCheck(dev.get(), "branch");
  SuspendAndCheck(main.get(), "parent");
}

// A branch of a running database is a crash image: with more WAL after the parent's last
// checkpoint than crash recovery's synchronous checkpoint is worth (recovery_choice.h), the agent
// starts it as a standby and promotes it at the end of pg_wal. Everything committed on the parent
// before the branch must be there (replay of all of pg_wal), nothing uncommitted, and the
// promoted branch must take writes and keep them across a restart (which then is a clean start:
// no second promotion). A branch of the promoted branch (a new timeline) with little WAL is
// crash recovery on that timeline.
TEST_F(ComputeTest, PromotedBranchOfARunningDatabaseHasCommittedRowsTakesWritesAndRestarts) {
  auto main = NewCompute("main", "main");
  ASSERT_TRUE(main->Spawn().ok());
  absl::Status s = main->WaitRunning();
  ASSERT_TRUE(s.ok()) << s;
  CommandResult r = main->Psql(
      "CREATE TABLE items (id int PRIMARY KEY, note text); "
      "INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, 20000) g");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  // As the superuser over the agent's socket (the endpoint's role may not checkpoint).
  r = RunAsPostgres({"/usr/lib/postgresql/15/bin/psql", "-h", main->workdir() + "/run", "-p",
                     absl::StrCat(main->pg_port()), "-U", "postgres", "-d", "app", "-X", "-At",
                     "-v", "ON_ERROR_STOP=1", "-c", "CHECKPOINT"},
                    "", 120);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  // After the last checkpoint: only in WAL (with ~4 MB of filler: a promotion).
  r = main->Psql(
      "CREATE TABLE filler AS SELECT g, repeat('x', 1000) AS pad FROM generate_series(1, 4000) g; "
      "INSERT INTO items SELECT g, 'late ' || g FROM generate_series(20001, 25000) g; "
      "UPDATE items SET note = 'updated' WHERE id <= 100; DELETE FROM items WHERE id > 24990");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();

  // In flight at the branch point: a transaction with more subtransactions than the
  // subtransaction cache holds (a hot standby would wait for it to end, forever).
  PGconn* open_tx = PQconnectdb(main->ConnUri().c_str());
  ASSERT_EQ(PQstatus(open_tx), CONNECTION_OK) << PQerrorMessage(open_tx);
  std::string sql = "BEGIN;";
  for (int i = 0; i < 80; ++i) {
    absl::StrAppend(&sql, " SAVEPOINT s", i, "; INSERT INTO items VALUES (", 100000 + i,
                    ", 'uncommitted');");
  }
  PGresult* res = PQexec(open_tx, sql.c_str());
  ASSERT_EQ(PQresultStatus(res), PGRES_COMMAND_OK) << PQerrorMessage(open_tx);
  PQclear(res);
  // The last commit right before the branch.
  r = main->Psql("INSERT INTO items VALUES (0, 'last before the branch')");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();

  ASSERT_TRUE(CreateBranch("dev", "main").ok());
  PQclear(PQexec(open_tx, "COMMIT"));
  PQfinish(open_tx);

  auto dev = NewCompute("dev", "dev");
  ASSERT_TRUE(dev->Spawn().ok());
  s = dev->WaitRunning();
  ASSERT_TRUE(s.ok()) << s;
  printf("[timing] promoted branch: spawn -> running %.0f ms\n", dev->spawn_to_running_ms());
  EXPECT_TRUE(absl::StrContains(dev->Log(), "recovery=promote")) << dev->Log();
  EXPECT_FALSE(FileExists(dev->mountpoint() + "/pgdata/standby.signal"));
  EXPECT_FALSE(FileExists(dev->mountpoint() + "/pgdata/promote"));
  // A promotion has other arguments: the postmaster spawned ahead was discarded, another ran.
  EXPECT_TRUE(absl::StrContains(dev->Log(), "spawned_ahead=false")) << dev->Log();

  const char* kSummary =
      "SELECT count(*), count(*) FILTER (WHERE note = 'updated'), "
      "count(*) FILTER (WHERE note = 'uncommitted'), max(id), "
      "(SELECT note FROM items WHERE id = 0) FROM items";
  r = dev->Psql(kSummary);
  EXPECT_EQ(r.out, "24991|100|0|24990|last before the branch\n") << r.Describe();
  r = dev->Psql("SELECT pg_is_in_recovery()");
  EXPECT_EQ(r.out, "f\n") << r.Describe();
  r = dev->Psql(
      "INSERT INTO items SELECT g, 'on dev' FROM generate_series(30001, 30500) g; "
      "CREATE TABLE dev_only (x int); INSERT INTO dev_only VALUES (42)");
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  // The parent saw none of it, and its in-flight transaction committed there only.
  r = main->Psql("SELECT count(*), count(*) FILTER (WHERE note = 'uncommitted') FROM items");
  EXPECT_EQ(r.out, "25071|80\n") << r.Describe();

  SuspendAndCheck(dev.get(), "promoted branch");
  ASSERT_TRUE(dev->Spawn().ok());
  s = dev->WaitRunning();
  ASSERT_TRUE(s.ok()) << s;
  printf("[timing] promoted branch, restart: spawn -> running %.0f ms\n",
         dev->spawn_to_running_ms());
  EXPECT_EQ(CountOf(dev->Log(), "recovery=promote"), 1u) << "the restart was not clean:\n"
                                                         << dev->Log();
  r = dev->Psql(
      "SELECT count(*), count(*) FILTER (WHERE note = 'on dev'), (SELECT x FROM dev_only) "
      "FROM items");
  EXPECT_EQ(r.out, "25491|500|42\n") << r.Describe();
  r = dev->Psql("INSERT INTO dev_only VALUES (43); SELECT sum(x) FROM dev_only");
  EXPECT_EQ(r.out, "INSERT 0 1\n85\n") << r.Describe();

  // A crash of the promoted branch (a branch of it while it runs is the same image), little WAL
  // after its restart's shutdown checkpoint on the new timeline: crash recovery, with
  // everything committed.
  ASSERT_TRUE(CreateBranch("dev2", "dev").ok());
  auto dev2 = NewCompute("dev2", "dev2");
  ASSERT_TRUE(dev2->Spawn().ok());
  s = dev2->WaitRunning();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(absl::StrContains(dev2->Log(), "recovery=crash")) << dev2->Log();
  r = dev2->Psql("SELECT count(*), (SELECT sum(x) FROM dev_only) FROM items");
  EXPECT_EQ(r.out, "25491|85\n") << r.Describe();
  r = dev2->Psql("INSERT INTO dev_only VALUES (1)");
  EXPECT_EQ(r.exit_code, 0) << r.Describe();

  SuspendAndCheck(dev2.get(), "branch of the promoted branch");
  SuspendAndCheck(dev.get(), "promoted branch after restart");
  SuspendAndCheck(main.get(), "parent");
}

// A start that stops before the promotion leaves no standby.signal behind, and the next start
// promotes.
TEST_F(ComputeTest, StopBeforeThePromotionLeavesNoStandbySignal) {
  auto main = NewCompute("main", "main");
  ASSERT_TRUE(main->Spawn().ok());
  absl::Status s = main->WaitRunning();
  ASSERT_TRUE(s.ok()) << s;
  // ~4 MB of WAL after the last checkpoint: the branch is promoted, not crash-recovered.
  CommandResult r = main->Psql(
      "CREATE TABLE items (id int); INSERT INTO items SELECT generate_series(1, 1000); "
      "CREATE TABLE filler AS SELECT g, repeat('x', 1000) AS pad FROM generate_series(1, 4000) g");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_TRUE(CreateBranch("dev", "main").ok());

  auto dev = NewCompute("dev", "dev");
  ASSERT_TRUE(dev->Spawn().ok());
  // Stop it as soon as the agent has decided to promote (standby.signal written).
  auto deadline = steady_clock::now() + std::chrono::seconds(60);
  while (steady_clock::now() < deadline &&
         !absl::StrContains(dev->Log(), "not shut down cleanly")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(absl::StrContains(dev->Log(), "not shut down cleanly")) << dev->Log();
  int code = dev->StopWith(SIGTERM, 120);
  EXPECT_EQ(code, 0) << dev->Log();
  EXPECT_FALSE(IsMounted(dev->mountpoint()));

  // The agent checks for the stop before it starts PostgreSQL: it stopped with the file written.
  EXPECT_TRUE(absl::StrContains(dev->Log(), "Removed the signal file of an unfinished promotion"))
      << dev->Log();

  ASSERT_TRUE(dev->Spawn().ok());
  s = dev->WaitRunning();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(CountOf(dev->Log(), "recovery=promote"), 1u) << dev->Log();
  r = dev->Psql("SELECT count(*), pg_is_in_recovery() FROM items");
  EXPECT_EQ(r.out, "1000|f\n") << r.Describe();
  SuspendAndCheck(dev.get(), "branch");
  SuspendAndCheck(main.get(), "parent");
}

TEST_F(ComputeTest, StopDuringStartIsCleanAndTheNextStartWorks) {
  auto main = NewCompute("main", "main");
  ASSERT_TRUE(main->Spawn().ok());
  // As soon as it serves /status (mounting or in initdb: whichever step it is in must stop).
  YAML::Node st = WaitForStatus(*main, [](const YAML::Node& n) { return n.IsMap(); });
  ASSERT_TRUE(st.IsMap()) << main->Log();
  SuspendAndCheck(main.get(), "during start");
  ASSERT_TRUE(main->Spawn().ok());
  absl::Status s = main->WaitRunning();
  ASSERT_TRUE(s.ok()) << s;
  CommandResult r = main->Psql("SELECT current_database()");
  EXPECT_EQ(r.out, "app\n") << r.Describe();
  SuspendAndCheck(main.get(), "after an interrupted start");
}

TEST_F(ComputeTest, UnreachablePageserverFailsWithAMessageAndNoMount) {
  auto c = NewCompute("dead", "main");
  ComputeProcess::Options o;
  o.name = "dead";
  o.timeline = "main";
  o.pageserver = absl::StrCat("127.0.0.1:", FreePort());  // nobody listens
  c = std::make_unique<ComputeProcess>(dir_.path(), o);
  ASSERT_TRUE(c->Spawn().ok());
  int code = c->WaitExit(120);
  EXPECT_NE(code, 0) << c->Log();
  EXPECT_NE(code, -1) << "the agent did not give up:\n" << c->Log();
  EXPECT_TRUE(absl::StrContains(c->Log(), "pagefs could not mount timeline main")) << c->Log();
  EXPECT_FALSE(IsMounted(c->mountpoint()));
  EXPECT_TRUE(ProcessesMentioning(c->workdir() + "/").empty());
}

TEST_F(ComputeTest, ReadOnlyEndpointOfAnUninitialisedBranchFails) {
  auto c = NewCompute("ro-empty", "main", /*read_only=*/true);
  ASSERT_TRUE(c->Spawn().ok());
  int code = c->WaitExit(120);
  EXPECT_EQ(code, 1) << c->Log();
  EXPECT_TRUE(absl::StrContains(c->Log(), "holds no PostgreSQL data directory")) << c->Log();
  EXPECT_FALSE(IsMounted(c->mountpoint()));
}

// Local mode's spare agent (operator/local/spare_agent.h): `--spare-under DIR` waits for one
// line "CONFIG<TAB>LOG" on stdin. The end of stdin first is a clean exit; a malformed line or a
// configuration outside DIR is refused; a good line moves the agent's output to LOG, where a
// configuration that cannot be read is then reported.
// The parent of `pid` (0 if it is gone).
pid_t ParentOf(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = stat.rfind(')');  // "pid (comm) S ppid ..."
  if (paren == std::string::npos) return 0;
  std::istringstream rest(stat.substr(paren + 2));
  char state;
  pid_t ppid = 0;
  rest >> state >> ppid;
  return ppid;
}

// A spare agent starts `pagefs --spare DIR` while it waits; the mount of the compute it is handed
// is served by that very process (no second pagefs starts), which stops with the compute.
TEST_F(ComputeTest, ASpareAgentsPagefsServesItsMount) {
  {
    // initdb first: a new root's start ends with a restart on a fresh mount (a second pagefs).
    auto first = NewCompute("first", "main");
    ASSERT_TRUE(first->Spawn().ok());
    absl::Status s = first->WaitRunning();
    ASSERT_TRUE(s.ok()) << s;
    ASSERT_EQ(first->StopWith(SIGTERM), 0) << first->Log();
  }
  ComputeProcess::Options o;
  o.name = "spare";
  o.pageserver = server_->address();
  o.timeline = "main";
  o.spare = true;
  ComputeProcess c(dir_.path(), o);
  ASSERT_TRUE(c.Spawn().ok());
  const std::string needle = "pagefs --spare " + dir_.path() + "/";
  std::vector<pid_t> spares;
  for (int i = 0; i < 400 && spares.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    spares = ProcessesMentioning(needle);
  }
  ASSERT_EQ(spares.size(), 1u) << "the spare agent started no spare pagefs: " << c.Log();
  const pid_t spare = spares[0];
  EXPECT_EQ(ParentOf(spare), c.pid());
  EXPECT_FALSE(IsMounted(c.mountpoint()));

  ASSERT_TRUE(c.HandOver().ok());
  absl::Status s = c.WaitRunning();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(IsMounted(c.mountpoint()));
  EXPECT_EQ(ParentOf(spare), c.pid()) << "the spare pagefs is gone";
  for (pid_t p : ProcessesMentioning("pagefs --pageserver")) {
    if (p == spare) continue;
    EXPECT_NE(ParentOf(p), c.pid()) << "the agent started a second pagefs: " << p;
  }
  // Its command line now shows the arguments it was handed (ps, local mode's process scans).
  std::vector<pid_t> serving = ProcessesMentioning("--timeline main");
  EXPECT_NE(std::find(serving.begin(), serving.end(), spare), serving.end())
      << "the handed-over pagefs still shows its spare command line";
  EXPECT_TRUE(ProcessesMentioning(needle).empty());
  std::ifstream in(c.workdir() + "/pagefs.log");
  EXPECT_TRUE(in.good()) << "the handed-over pagefs writes no log";
  CommandResult r = c.Psql("CREATE TABLE t AS SELECT 42 AS v; SELECT v FROM t");
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_TRUE(absl::StrContains(r.out, "42")) << r.out;

  EXPECT_EQ(c.StopWith(SIGTERM), 0) << c.Log();
  EXPECT_FALSE(IsMounted(c.mountpoint()));
  EXPECT_TRUE(ProcessesMentioning(needle).empty()) << "pagefs outlived its compute";
}

TEST(ComputeSpareTest, WaitsForOneLineOnStdinAndRefusesBadOnes) {
  const std::string bin = PageserverProcess::BinDir() + "/pgbranch-compute";
  char tmpl[] = "/tmp/pgb-spare-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string root = dir + "/computes/";

  CommandResult r = RunCommand({bin, "--spare-under", root}, "", 60);
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  // Its spare pagefs read the end of its socket when the agent exited, and exited too.
  std::vector<pid_t> left;
  for (int i = 0; i < 200; ++i) {
    left = ProcessesMentioning("pagefs --spare " + root);
    if (left.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_TRUE(left.empty()) << "a spare agent that was never used left its spare pagefs";

  r = RunCommand({bin, "--spare-under", root}, "no tab here\n", 60);
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_TRUE(absl::StrContains(r.err, "CONFIG<TAB>LOG")) << r.err;

  r = RunCommand({bin, "--spare-under", root}, "/etc/compute.yaml\t" + dir + "/x.log\n", 60);
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_TRUE(absl::StrContains(r.err, "is not below " + root)) << r.err;

  r = RunCommand({bin, "--spare-under", root, "--config", root + "a/compute.yaml"}, "", 60);
  EXPECT_EQ(r.exit_code, 2) << r.Describe();

  const std::string log = dir + "/compute.log";
  r = RunCommand({bin, "--spare-under", root}, root + "a/compute.yaml\t" + log + "\n", 60);
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_EQ(r.err, "") << "the agent's output goes to the compute's log once it has one";
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(absl::StrContains(text, root + "a/compute.yaml")) << text;
  RunCommand({"rm", "-rf", dir});
}

}  // namespace
}  // namespace pgbranch::testing
