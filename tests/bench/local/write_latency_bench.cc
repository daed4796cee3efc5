// local-bench --only write: single-row INSERT and UPDATE latency, one client, through the proxy
// versus directly to the compute's PostgreSQL (on pagefs) versus PostgreSQL on the local disk.
#include <fstream>
#include <memory>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/bench/local/local_instance.h"
#include "tests/bench/local/local_sections.h"

namespace pgbranch::local_bench {
namespace {

namespace pb = pagefs_bench;
using testing::CommandResult;
using testing::RunCommand;

constexpr char kSetup[] =
    "CREATE TABLE IF NOT EXISTS wi (id bigserial PRIMARY KEY, v int); "
    "CREATE TABLE IF NOT EXISTS wu (id int PRIMARY KEY, v int); "
    "INSERT INTO wu SELECT g, 0 FROM generate_series(1, 1000) g ON CONFLICT DO NOTHING";

// pgbench's "latency average" in seconds for `script`, one client, `seconds` long.
absl::StatusOr<double> LatencyOf(const std::string& uri, const std::string& script,
                                 const std::string& seconds) {
  CommandResult r = RunCommand(
      {std::string(pb::kPgBin) + "/pgbench", "-n", "-c", "1", "-T", seconds, "-f", script, uri}, "",
      600);
  if (r.exit_code != 0) return absl::InternalError("pgbench: " + r.Describe());
  std::smatch m;
  if (!std::regex_search(r.out, m, std::regex("latency average = ([0-9.]+) ms"))) {
    return absl::InternalError("no latency in pgbench output: " + r.out);
  }
  return std::stod(m[1]) / 1000;
}

}  // namespace

absl::Status RunWriteLatency(const pb::BenchConfig& config) {
  LocalInstance inst(config.base_dir);
  // Plain TCP everywhere, as in the proxy section: the table compares the paths, not TLS.
  if (auto s = inst.Up({"--no-tls"}); !s.ok()) return s;
  absl::StatusOr<std::string> uri = inst.CreateBranch("main");
  if (!uri.ok()) return uri.status();
  absl::StatusOr<pb::Libpq*> pq = pb::Libpq::Get();
  if (!pq.ok()) return pq.status();
  if (auto s = (*pq)->Query(*uri, kSetup); !s.ok()) return s;
  absl::StatusOr<int> direct_port = inst.DirectPort("main");
  if (!direct_port.ok()) return direct_port.status();
  const std::string direct = ConnectionOnPort(*uri, *direct_port);

  // PostgreSQL 15 on the local disk, same durability (fsync, synchronous_commit on), over TCP.
  pb::ScratchDir local_dir(config.base_dir);
  absl::StatusOr<std::unique_ptr<pb::PgCluster>> local =
      pb::StartLoopbackCluster(local_dir.path() + "/pg");
  if (!local.ok()) return local.status();
  if (auto s = (*local)->Sql(kSetup); !s.ok()) return s;
  const std::string local_uri = (*local)->TcpUri("postgres");

  const std::string insert_sql = local_dir.path() + "/insert.sql";
  const std::string update_sql = local_dir.path() + "/update.sql";
  std::ofstream(insert_sql) << "INSERT INTO wi (v) VALUES (1);\n";
  std::ofstream(update_sql)
      << "\\set id random(1, 1000)\nUPDATE wu SET v = v + 1 WHERE id = :id;\n";
  const std::string seconds = config.quick ? "3" : "10";

  pb::Table t("Single-row write latency, one client (pgbench latency average)",
              {"statement", "local disk, direct", "pagefs, direct", "pagefs, via proxy",
               "proxy / local", "proxy hop", "target", "met"});
  for (const auto& [what, script] :
       {std::pair<std::string, std::string>{"INSERT one row", insert_sql},
        std::pair<std::string, std::string>{"UPDATE one row", update_sql}}) {
    double l = 0, d = 0, p = 0;
    // Alternate twice to even out drift on a small machine.
    for (int round = 0; round < 2; ++round) {
      pb::Progress(absl::StrCat(what, ": round ", round + 1));
      absl::StatusOr<double> a = LatencyOf(local_uri, script, seconds);
      if (!a.ok()) return a.status();
      absl::StatusOr<double> b = LatencyOf(direct, script, seconds);
      if (!b.ok()) return b.status();
      absl::StatusOr<double> c = LatencyOf(*uri, script, seconds);
      if (!c.ok()) return c.status();
      l += *a / 2;
      d += *b / 2;
      p += *c / 2;
    }
    auto ms = [](double x) { return absl::StrFormat("%.3f ms", x * 1e3); };
    t.Add({what, ms(l), ms(d), ms(p), pb::Ratio(p / l), absl::StrFormat("%+.0f µs", (p - d) * 1e6),
           "≤ 1.30x", pb::OkIf(p / l <= 1.3)});
  }
  t.Note(absl::StrCat(
      "pgbench -n -c 1 -T ", seconds,
      ", simple protocol, autocommit (each statement commits: WAL flushed with fsync); TCP on "
      "127.0.0.1 without TLS on every path (local up --no-tls); the local-disk PostgreSQL has "
      "the default configuration, the compute the one pgbranch-compute writes"));
  t.Note("proxy hop: via proxy minus pagefs direct (the relay's share of each round trip)");
  t.Print();
  return (*local)->Stop();
}

}  // namespace pgbranch::local_bench
