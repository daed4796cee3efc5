// local-bench --only depth: a new branch → first query through the proxy, at branch depth 1, 8
// and 32, with `branch create` waiting (the default) and with --wait=false; where the time goes.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/bench/local/local_instance.h"
#include "tests/bench/local/local_sections.h"

namespace pgbranch::local_bench {
namespace {

namespace pb = pagefs_bench;
using testing::CommandResult;

constexpr int kAllDepths[] = {1, 8, 32};

// PGBRANCH_BENCH_DEPTHS ("1" or "1,8"): measure only these of kAllDepths (default all).
std::vector<int> Depths() {
  std::vector<int> out;
  const char* only = getenv("PGBRANCH_BENCH_DEPTHS");
  for (int d : kAllDepths) {
    if (only == nullptr ||
        absl::StrCat(",", only, ",").find(absl::StrCat(",", d, ",")) != std::string::npos) {
      out.push_back(d);
    }
  }
  return out;
}

// The samples of one (depth, mode): end to end, and each step of the start path.
struct Runs {
  pb::Samples total, cli, timeline, spawn, mount, to_redo, replay, promote, role, after;
  pb::Samples pages;  // t's heap pages at the parent before the branch
  int first_try_errors = 0;
  std::string first_error;
};

double Since(absl::Time from, absl::Time to) {
  if (from == absl::InfinitePast() || to == absl::InfinitePast()) return 0;
  return absl::ToDoubleSeconds(to - from);
}

// PGBRANCH_BENCH_DEPTH_GROWING=1: the earlier workload, where every write added 500 rows to t, so
// the table the parent checkpoints and the branch's first query scans grew with depth (~3x from
// depth 1 to depth 32), not only the ancestry.
bool Growing() {
  const char* g = getenv("PGBRANCH_BENCH_DEPTH_GROWING");
  return g != nullptr && std::string(g) == "1";
}

// The first query of a measured branch: a scan of all of t counting the rows of the parent's last
// write (so it sees that write or fails the check).
std::string FirstQuery(const std::string& tag) {
  if (Growing()) return "SELECT count(*) FROM t";
  return absl::StrCat("SELECT count(*) FROM t WHERE note = '", tag, "'");
}

// Commits a few hundred rows and an update on `uri` (WAL since the parent's last checkpoint, as
// an application leaves it); what FirstQuery(tag) answers afterwards. The rows of the previous
// write go first and VACUUM makes their space reusable: t keeps the same size at every depth
// (10,500 rows, `*pages` heap pages), so only the ancestry differs between depths.
absl::StatusOr<std::string> Write(pb::Libpq* pq, const std::string& uri, const std::string& tag,
                                  std::string* pages = nullptr) {
  const bool growing = Growing();
  std::string count;
  absl::Status s = pq->Query(
      uri,
      absl::StrCat(growing ? "" : "DELETE FROM t WHERE v > 10000; ", "INSERT INTO t SELECT ",
                   growing ? "g" : "10000 + g", ", '", tag, "' FROM generate_series(1, 500) g; ",
                   "UPDATE t SET note = '", tag, "' WHERE v % 97 = ", tag.size() % 97, "; ",
                   growing ? "SELECT count(*) FROM t" : ""),
      growing ? &count : nullptr);
  if (!s.ok()) return s;
  if (!growing) {
    if (s = pq->Query(uri, "VACUUM t"); !s.ok()) return s;
    if (s = pq->Query(uri, FirstQuery(tag), &count); !s.ok()) return s;
  }
  if (pages != nullptr) {
    if (s = pq->Query(uri, "SELECT pg_relation_size('t') / 8192", pages); !s.ok()) return s;
  }
  return count;
}

// A branch of `parent` with its endpoint, written to; waits until it runs.
absl::StatusOr<std::string> NewLevel(const LocalInstance& inst, pb::Libpq* pq,
                                     const std::string& parent, const std::string& name) {
  absl::StatusOr<std::string> uri = inst.CreateBranch(name, parent);
  if (!uri.ok()) return uri.status();
  absl::StatusOr<std::string> n = Write(pq, *uri, name);
  if (!n.ok()) return n.status();
  return *uri;
}

// One measured branch: `branch create` of `parent`, then SELECT count(*) through the proxy
// (which must see every row the parent committed before the command).
absl::Status MeasureOne(const LocalInstance& inst, pb::Libpq* pq, const std::string& parent,
                        const std::string& parent_uri, const std::string& name, bool wait,
                        Runs* runs) {
  const std::string tag = "before-" + name;
  std::string pages;
  absl::StatusOr<std::string> expected = Write(pq, parent_uri, tag, &pages);
  if (!expected.ok()) return expected.status();
  runs->pages.Add(std::atof(pages.c_str()));
  std::vector<std::string> args = {
      "branch", "create", name, "--parent", parent, "--suspend-timeout", "0s"};
  if (!wait) args.push_back("--wait=false");
  const absl::Time wall0 = absl::Now();
  const double t0 = pb::NowSeconds();
  CommandResult c = inst.Cli(args);
  const double t1 = pb::NowSeconds();
  if (c.exit_code != 0) return absl::InternalError(c.Describe());
  // The connection string as the command printed it; else (`--wait=false` before it printed
  // one) `pgbranch connstr`, a second command the user needs, timed with the rest.
  std::smatch m;
  absl::StatusOr<std::string> uri;
  if (std::regex_search(c.out, m, std::regex("psql '([^']+)'"))) {
    uri = m[1].str();
  } else {
    uri = inst.Connstr(name);
  }
  if (!uri.ok()) return uri.status();
  std::string value;
  absl::Status s = pq->Query(*uri, FirstQuery(tag), &value);
  if (!s.ok()) {
    // The client had to retry: counted, and the time measured until it got its answer.
    if (runs->first_try_errors++ == 0) runs->first_error = std::string(s.message());
    const double deadline = pb::NowSeconds() + 60;
    while (!s.ok() && pb::NowSeconds() < deadline) {
      usleep(1000);
      s = pq->Query(*uri, FirstQuery(tag), &value);
    }
    if (!s.ok()) return s;
  }
  const double t2 = pb::NowSeconds();
  if (value != *expected) {
    return absl::DataLossError(absl::StrCat("branch ", name, " of ", parent, " has ", value,
                                            " rows; its parent had committed ", *expected));
  }
  runs->total.Add(t2 - t0);
  runs->cli.Add(t1 - t0);
  const absl::Time wall2 = wall0 + absl::Seconds(t2 - t0);
  // Where the time went, from the logs of the controller, the agent and PostgreSQL.
  std::optional<LogLine> created =
      FindLogLine(inst.ControllerLog(), "Created timeline", {{"branch", name}});
  std::string clog = inst.ComputeLog(name);
  std::optional<LogLine> agent = FindLogLine(clog, "Starting compute", {{"endpoint", name}});
  std::optional<LogLine> started = FindLogLine(clog, "Started PostgreSQL", {{"endpoint", name}});
  std::string plog = inst.PostgresLog(name);
  absl::Time pg_start = PostgresLogTime(plog, "starting PostgreSQL");
  absl::Time redo_start = PostgresLogTime(plog, "redo starts at");
  absl::Time redo_done = PostgresLogTime(plog, "redo done at");
  absl::Time ready = PostgresLogTime(plog, "database system is ready to accept connections");
  if (redo_start == absl::InfinitePast()) redo_start = redo_done = pg_start;
  absl::Time never = absl::InfinitePast();
  runs->timeline.Add(Since(wall0, created ? created->ts : never));
  runs->spawn.Add(Since(created ? created->ts : never, agent ? agent->ts : never));
  runs->mount.Add(started ? std::atof(started->Field("mount_seconds").c_str()) : 0);
  runs->to_redo.Add(Since(pg_start, redo_start));
  runs->replay.Add(Since(redo_start, redo_done));
  runs->promote.Add(Since(redo_done, ready));
  runs->role.Add(started ? std::atof(started->Field("role_seconds").c_str()) : 0);
  runs->after.Add(Since(started ? started->ts : never, wall2));
  pb::Progress(absl::StrCat(name, ": ", pb::Ms(t2 - t0), " (create ", pb::Ms(t1 - t0), ")"));
  // PGBRANCH_BENCH_KEEP_LOGS=DIR: the branch's compute directory's logs are copied there first.
  if (const char* keep = getenv("PGBRANCH_BENCH_KEEP_LOGS")) {
    std::string from = absl::StrCat(inst.dir(), "/computes/", name);
    std::string to = absl::StrCat(keep, "/", name);
    std::filesystem::create_directories(to);
    for (const char* f : {"compute.log", "postgres.log", "pagefs.log"}) {
      std::error_code ec;
      std::filesystem::copy_file(absl::StrCat(from, "/", f), absl::StrCat(to, "/", f),
                                 std::filesystem::copy_options::overwrite_existing, ec);
    }
    std::error_code ec;
    std::filesystem::copy_file(absl::StrCat(inst.dir(), "/computes/", parent, "/postgres.log"),
                               absl::StrCat(to, "/parent-postgres.log"),
                               std::filesystem::copy_options::overwrite_existing, ec);
    std::filesystem::copy_file(absl::StrCat(inst.dir(), "/logs/controller.log"),
                               absl::StrCat(keep, "/controller.log"),
                               std::filesystem::copy_options::overwrite_existing, ec);
  }
  // Two computes at most besides the chain's head: the machine has 2 cores.
  CommandResult d = inst.Cli({"branch", "delete", name});
  if (d.exit_code != 0) return absl::InternalError(d.Describe());
  return absl::OkStatus();
}

absl::Status RunChain(LocalInstance& inst, const pb::BenchConfig& config) {
  absl::StatusOr<std::string> uri = inst.CreateBranch("main");
  if (!uri.ok()) return uri.status();
  absl::StatusOr<pb::Libpq*> pq = pb::Libpq::Get();
  if (!pq.ok()) return pq.status();
  if (auto s = (*pq)->Query(*uri,
                            "CREATE TABLE t AS SELECT g AS v, 'main'::text AS note "
                            "FROM generate_series(1, 10000) g");
      !s.ok()) {
    return s;
  }
  int runs_per_mode = config.quick ? 2 : 7;
  // PGBRANCH_BENCH_DEPTH_RUNS=N: N runs per (depth, mode) instead.
  if (const char* n = getenv("PGBRANCH_BENCH_DEPTH_RUNS")) runs_per_mode = std::max(1, atoi(n));
  // The chain: main is level 0, level k a branch of level k-1, each written to while its
  // parent's compute still ran (each is a crash image of its parent). A branch of level d-1 has
  // depth d.
  std::map<std::pair<int, bool>, Runs> results;
  auto measure = [&](int depth, const std::string& parent, const std::string& parent_uri, int i,
                     bool wait) {
    std::string name = absl::StrCat("d", depth, wait ? "w" : "n", i);
    return MeasureOne(inst, *pq, parent, parent_uri, name, wait, &results[{depth, wait}]);
  };
  std::string head = "main", head_uri = *uri;
  int level = 0;
  // Extends the chain to `to`; the computes of the levels in `keep` keep running.
  auto extend = [&](int to, const std::set<int>& keep,
                    std::map<int, std::pair<std::string, std::string>>* kept) -> absl::Status {
    if (keep.count(level)) (*kept)[level] = {head, head_uri};
    while (level < to) {
      ++level;
      std::string name = absl::StrCat("l", level);
      absl::StatusOr<std::string> next = NewLevel(inst, *pq, head, name);
      if (!next.ok()) return next.status();
      if (!keep.count(level - 1)) {
        if (auto s = inst.DeleteAsync("endpoints/" + head); !s.ok()) return s;
      }
      head = name;
      head_uri = *next;
      if (keep.count(level)) (*kept)[level] = {head, head_uri};
      pb::Progress(absl::StrCat("chain level ", level));
    }
    return absl::OkStatus();
  };
  if (Growing()) {
    // As before: each depth's runs after the previous depth's, only the chain's head running.
    for (int depth : Depths()) {
      std::map<int, std::pair<std::string, std::string>> kept;
      if (auto s = extend(depth - 1, {}, &kept); !s.ok()) return s;
      for (int i = 0; i < runs_per_mode; ++i) {
        for (bool wait : {true, false}) {
          if (auto s = measure(depth, head, head_uri, i, wait); !s.ok()) return s;
        }
      }
    }
  } else {
    // The whole chain first, the parent of each measured depth kept running (one per depth);
    // then the depths interleaved run by run, so drift (the machine's load, the instance's
    // growing state) falls on every depth alike and only the ancestry differs.
    std::set<int> parents;
    for (int depth : Depths()) parents.insert(depth - 1);
    std::map<int, std::pair<std::string, std::string>> kept;
    if (auto s = extend(*parents.rbegin(), parents, &kept); !s.ok()) return s;
    for (int i = 0; i < runs_per_mode; ++i) {
      for (bool wait : {true, false}) {
        for (int depth : Depths()) {
          const auto& [parent, parent_uri] = kept.at(depth - 1);
          if (auto s = measure(depth, parent, parent_uri, i, wait); !s.ok()) return s;
        }
      }
    }
  }

  pb::Table t("New branch of a running parent → first query through the proxy, by branch depth",
              {"depth", "branch create", "runs", "p50", "p90", "max", "create cmd p50",
               "client retries", "t pages p50", "p50 / depth 1", "target", "met"});
  for (bool wait : {true, false}) {
    const double base = results[{1, wait}].total.Quantile(0.5);
    for (int depth : Depths()) {
      const Runs& x = results[{depth, wait}];
      const double ratio = x.total.Quantile(0.5) / base;
      t.Add({std::to_string(depth), wait ? "waits" : "--wait=false",
             std::to_string(x.total.count()), pb::Ms(x.total.Quantile(0.5)),
             pb::Ms(x.total.Quantile(0.9)), pb::Ms(x.total.Max()), pb::Ms(x.cli.Quantile(0.5)),
             std::to_string(x.first_try_errors), absl::StrCat(x.pages.Quantile(0.5)),
             pb::Ratio(ratio), depth == 1 ? "≤ 150 ms" : "≤ 150 ms, ≤ 1.10x",
             pb::OkIf(x.total.Quantile(0.5) <= 0.15 && (depth == 1 || ratio <= 1.1))});
    }
  }
  t.Note(
      "from `pgbranch branch create X --parent P` (P's compute running, rows just committed on "
      "it) to the first row of SELECT count(*) on X through the proxy, TLS; the count must equal "
      "P's; the URI the command printed, else (--wait=false, when it prints none) that of a "
      "`pgbranch connstr` run right after, timed too");
  t.Note(
      "the chain: main is depth 0, each level a branch of the previous written to (500 rows + "
      "an update) while its parent ran; client retries: first attempts that failed (the client "
      "then retried every ms; the time includes the retries)");
  t.Note(Growing() ? "PGBRANCH_BENCH_DEPTH_GROWING=1: each write added 500 rows to t (t grows with "
                     "depth; t pages: its heap pages at the parent before the branch)"
                   : "each write replaces the previous write's 500 rows and VACUUMs t, so t (t "
                     "pages: its heap pages at the parent before the branch) is the same at every "
                     "depth; the first query counts the rows of the parent's last write");
  for (bool wait : {true, false}) {
    const Runs& x = results[{1, wait}];
    if (x.first_try_errors > 0) t.Note(absl::StrCat("first failed attempt: ", x.first_error));
  }
  t.Print();

  pb::Table b(
      "Where the time goes (p50 of each step, from the controller's, agent's and "
      "PostgreSQL's logs)",
      {"depth", "branch create", "→ timeline", "→ agent", "mount", "pg start → redo", "WAL replay",
       "→ ready (promotion)", "role", "running → first row"});
  for (bool wait : {true, false}) {
    for (int depth : Depths()) {
      const Runs& x = results[{depth, wait}];
      b.Add({std::to_string(depth), wait ? "waits" : "--wait=false",
             pb::Ms(x.timeline.Quantile(0.5)), pb::Ms(x.spawn.Quantile(0.5)),
             pb::Ms(x.mount.Quantile(0.5)), pb::Ms(x.to_redo.Quantile(0.5)),
             pb::Ms(x.replay.Quantile(0.5)), pb::Ms(x.promote.Quantile(0.5)),
             pb::Ms(x.role.Quantile(0.5)), pb::Ms(x.after.Quantile(0.5))});
    }
  }
  b.Note(
      "→ timeline: command start (CLI process, API call, branch reconcile, CreateTimeline) to "
      "the controller's `Created timeline`; → agent: to the compute agent's first log line; "
      "mount: pagefs mount; pg start → redo: PostgreSQL's first log line to `redo starts at`; "
      "WAL replay: to `redo done at`; → ready: promotion to `ready to accept connections`; role: "
      "the role/password check; running → first row: the agent reporting running to the "
      "client's first row (status polls, the CLI's wait, routing, connect + TLS + SCRAM, query)");
  b.Note("log times have millisecond resolution; steps absent from a log count 0");
  b.Print();
  return absl::OkStatus();
}

}  // namespace

absl::Status RunFirstQuery(const pb::BenchConfig& config) {
  LocalInstance inst(config.base_dir);
  if (auto s = inst.Up(); !s.ok()) return s;
  return inst.Explain(RunChain(inst, config));
}

}  // namespace pgbranch::local_bench
