// Section 2: new branch to first query (DESIGN.md section 7: p50 <= 300 ms). A main timeline
// holds a PostgreSQL 15 database that was shut down cleanly; each iteration creates a branch at
// its head (CreateTimeline), mounts it with a new pagefs process, starts `postgres` on it and
// polls with connection attempts until `SELECT 1` answers.
#include <signal.h>
#include <sys/wait.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/bench/pagefs/sections.h"

namespace pgbranch::pagefs_bench {

absl::Status RunBranchBench(const BenchConfig& config) {
  int iterations = config.quick ? 20 : 40;
  int rows = config.quick ? 100000 : 1000000;
  PagefsEnv env(config);
  absl::Status s = env.Start("branch");
  if (!s.ok()) return s;
  auto pq = Libpq::Get();
  if (!pq.ok()) return pq.status();
  std::string sock = env.dir() + "/sock";

  // The main branch: a database with a table, checkpointed and shut down cleanly.
  {
    Progress("branch: preparing the main timeline (initdb, a table, clean shutdown)");
    auto mount = env.Mount("main", env.dir() + "/mnt-main");
    if (!mount.ok()) return mount.status();
    auto port = FreeLoopbackPort();
    if (!port.ok()) return port.status();
    PgCluster main(env.dir() + "/mnt-main/pgdata", sock, *port, env.dir() + "/main.log");
    auto t = main.InitDb();
    if (!t.ok()) return t.status();
    std::vector<std::string> conf = {"listen_addresses = ''", "shared_buffers = 128MB"};
    for (std::string& l : PagefsComputeSettings()) conf.push_back(std::move(l));
    s = main.Configure(conf);
    if (s.ok()) s = main.Start();
    if (s.ok()) {
      s =
          main.Sql(absl::StrCat("CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM "
                                "generate_series(1, ",
                                rows, ") g; CHECKPOINT"));
    }
    if (s.ok()) s = main.Stop();
    if (!s.ok()) return s;
    if (int rc = (*mount)->Unmount(); rc != 0) {
      return absl::InternalError(absl::StrCat("pagefs exited with ", rc, " at unmount"));
    }
  }

  Samples create, mount_s, start, query, total;
  std::string checked;
  for (int i = 0; i < iterations; ++i) {
    std::string id = absl::StrCat("b", i);
    std::string mnt = absl::StrCat(env.dir(), "/mnt-", id);
    auto port = FreeLoopbackPort();
    if (!port.ok()) return port.status();
    std::string conninfo = absl::StrCat("host=", sock, " port=", *port,
                                        " dbname=postgres user=postgres connect_timeout=5");

    double t0 = NowSeconds();
    s = env.CreateTimeline(id, "main");
    if (!s.ok()) return s;
    double t1 = NowSeconds();
    auto mount = env.Mount(id, mnt);
    if (!mount.ok()) return mount.status();
    double t2 = NowSeconds();
    std::string log = absl::StrCat(env.dir(), "/", id, ".log");
    auto pid = SpawnAsPostgres({"postgres", "-D", mnt + "/pgdata", "-p", std::to_string(*port),
                                "-k", sock, "-c", "listen_addresses="},
                               log);
    if (!pid.ok()) return pid.status();
    double t3 = 0;
    s = (*pq)->WaitAndQuery(conninfo, "SELECT 1", 60, &t3);
    double t4 = NowSeconds();
    if (s.ok() && i == 0) {
      // The branch holds main's data (not timed).
      s = (*pq)->Query(conninfo, "SELECT count(*) FROM t", &checked);
    }
    // Cleanup (not timed): immediate shutdown, then unmount.
    kill(*pid, SIGQUIT);
    int status;
    waitpid(*pid, &status, 0);
    int rc = (*mount)->Unmount();
    if (!s.ok()) {
      return absl::InternalError(absl::StrCat(s.message(), "\nserver log:\n", FileTail(log, 1500)));
    }
    if (rc != 0) return absl::InternalError(absl::StrCat("pagefs exited with ", rc));
    create.Add(t1 - t0);
    mount_s.Add(t2 - t1);
    start.Add(t3 - t2);
    query.Add(t4 - t3);
    total.Add(t4 - t0);
  }

  Table table(absl::StrFormat("New branch to first query (%d branches of a cleanly stopped main)",
                              iterations),
              {"step", "p50", "p90", "max", "target", "ok?"});
  auto row = [&](const std::string& what, const Samples& x, const std::string& target,
                 const std::string& ok) {
    table.Add({what, Ms(x.Quantile(0.5)), Ms(x.Quantile(0.9)), Ms(x.Max()), target, ok});
  };
  row("CreateTimeline RPC", create, "", "");
  row("pagefs mount (process start to mounted)", mount_s, "", "");
  row("postgres start to first accepted connection", start, "", "");
  row("SELECT 1 on that connection", query, "", "");
  row("total: branch to first query", total, "<= 300 ms p50", OkIf(total.Quantile(0.5) <= 0.3));
  table.Note(absl::StrCat("main holds a ", rows,
                          "-row table; the first branch read count(*) = ", checked, " from it"));
  table.Note(
      "postgres is started directly (not pg_ctl) and polled with libpq connection attempts every "
      "1 ms; each branch is a new pagefs process; cleanup (immediate shutdown, unmount) untimed");
  table.Print();
  return absl::OkStatus();
}

}  // namespace pgbranch::pagefs_bench
