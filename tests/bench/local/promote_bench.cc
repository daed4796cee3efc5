// local-bench --only promote: `pgbranch branch promote` of a one-column migration with a
// backfill into a parent of ~1 GB (quick: ~40 MB): rehearsal, restore point, apply, and what the
// restore point costs in storage, next to the same steps done by hand on PostgreSQL 15 on the
// local disk (a copy of the database for the rehearsal and for the restore point).
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/cpprest.h"
#include "tests/bench/local/local_instance.h"
#include "tests/bench/local/local_sections.h"

namespace pgbranch::local_bench {
namespace {

namespace pb = pagefs_bench;
using testing::CommandResult;
using testing::RunCommand;

// ~170 bytes a row on the heap plus its primary key: 5.6 M rows are ~1 GB. VACUUM sets the hint
// bits and the visibility map a long-lived table has, so the migration is not charged with them.
constexpr char kVacuum[] = "VACUUM ANALYZE customers";
std::string LoadSql(int64_t rows) {
  return absl::StrCat(
      "CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, signed_up date NOT "
      "NULL, notes text); "
      "INSERT INTO customers SELECT g, 'customer' || g || '@example.com', "
      "date '2020-01-01' + (g % 1500)::int, repeat(md5(g::text), 3) "
      "FROM generate_series(1, ",
      rows, ") g");
}

// The migration: one column, a backfill of the first 10% of the rows (contiguous ids, so about
// 10% of the heap pages), an index on the new column.
std::string MigrationSql(int64_t rows) {
  return absl::StrCat(
      "ALTER TABLE customers ADD COLUMN loyalty_tier text;\n"
      "UPDATE customers SET loyalty_tier = CASE WHEN id % 10 = 0 THEN 'gold' ELSE 'silver' END "
      "WHERE id <= ",
      rows / 10,
      ";\n"
      "CREATE INDEX customers_loyalty_tier_idx ON customers (loyalty_tier);\n");
}

std::string MiB(double bytes) { return absl::StrFormat("%.1f MiB", bytes / (1 << 20)); }

int64_t JsonNumber(const web::json::value& v) {
  if (v.is_string()) return std::stoll(v.as_string());
  return static_cast<int64_t>(v.as_double());
}

// The pageserver's own count of a timeline's page versions (history included): `diverged` of
// `pagectl timeline info` (docs/sizes-and-lsns.md).
absl::StatusOr<int64_t> DivergedBytes(const LocalInstance& inst, const std::string& timeline) {
  std::string port(
      absl::StripAsciiWhitespace(pb::FileTail(inst.dir() + "/run/pageserver.port", 64)));
  CommandResult r = RunCommand({BinDir() + "/pagectl", "--pageserver", "127.0.0.1:" + port, "-o",
                                "json", "timeline", "info", "--tenant", "default", timeline},
                               "", 60);
  if (r.exit_code != 0) return absl::InternalError("pagectl: " + r.Describe());
  web::json::value v = web::json::value::parse(r.out);
  return JsonNumber(v.at("diverged_bytes"));
}

// A CHECKPOINT on the endpoint's PostgreSQL (as the superuser, on its Unix socket: the app role
// may not), so the pages a statement dirtied are on the pageserver before they are counted.
absl::Status Checkpoint(pb::Libpq* pq, const LocalInstance& inst, const std::string& endpoint) {
  absl::StatusOr<int> port = inst.DirectPort(endpoint);
  if (!port.ok()) return port.status();
  return pq->Query(absl::StrCat("host=", inst.dir(), "/computes/", endpoint, "/run port=", *port,
                                " user=postgres dbname=postgres"),
                   "CHECKPOINT");
}

absl::StatusOr<int64_t> SqlNumber(pb::Libpq* pq, const std::string& uri, const std::string& sql) {
  std::string value;
  if (auto s = pq->Query(uri, sql, &value); !s.ok()) return s;
  return std::stoll(value);
}

double Seconds(const web::json::value& doc, std::initializer_list<const char*> path) {
  const web::json::value* v = &doc;
  for (const char* key : path) {
    if (!v->has_field(key)) return -1;
    v = &v->at(key);
  }
  return v->as_double() / 1000;
}

std::string SecsOrDash(double s) { return s < 0 ? "-" : pb::Secs(s); }

struct Baseline {
  double rehearsal = 0, rehearsal_migration = 0, restore_point = 0, apply = 0;
  int64_t restore_point_bytes = 0;
  int64_t apply_wal_bytes = 0, apply_growth_bytes = 0;  // WAL the apply wrote; database growth
};

// The same migration by hand on PostgreSQL 15 on the local disk: rehearse on a copy of the
// database (CREATE DATABASE ... TEMPLATE, a file copy), keep another copy as the restore point,
// apply in one transaction.
absl::StatusOr<Baseline> RunLocalDisk(const pb::BenchConfig& config, int64_t rows,
                                      int64_t* db_bytes) {
  pb::ScratchDir local_dir(config.base_dir);
  absl::StatusOr<std::unique_ptr<pb::PgCluster>> local =
      pb::StartLoopbackCluster(local_dir.path() + "/pg");
  if (!local.ok()) return local.status();
  const std::string admin = (*local)->TcpUri("postgres");
  const std::string shop = (*local)->TcpUri("shop");
  auto pq = pb::Libpq::Get();
  if (!pq.ok()) return pq.status();
  if (auto s = (*pq)->Query(admin, "CREATE DATABASE shop"); !s.ok()) return s;
  pb::Progress("local disk: loading");
  if (auto s = (*pq)->Query(shop, LoadSql(rows)); !s.ok()) return s;
  if (auto s = (*pq)->Query(shop, kVacuum); !s.ok()) return s;
  auto size = SqlNumber(*pq, shop, "SELECT pg_database_size(current_database())");
  if (!size.ok()) return size.status();
  *db_bytes = *size;
  const std::string migration = "BEGIN;\n" + MigrationSql(rows) + "COMMIT;";

  Baseline b;
  pb::Progress("local disk: rehearsal on a copy");
  double t0 = pb::NowSeconds();
  if (auto s = (*pq)->Query(admin, "CREATE DATABASE shop_rehearsal TEMPLATE shop"); !s.ok()) {
    return s;
  }
  double t1 = pb::NowSeconds();
  if (auto s = (*pq)->Query((*local)->TcpUri("shop_rehearsal"), migration); !s.ok()) return s;
  double t2 = pb::NowSeconds();
  if (auto s = (*pq)->Query(admin, "DROP DATABASE shop_rehearsal"); !s.ok()) return s;
  b.rehearsal = pb::NowSeconds() - t0;
  b.rehearsal_migration = t2 - t1;

  pb::Progress("local disk: restore point (a copy)");
  t0 = pb::NowSeconds();
  if (auto s = (*pq)->Query(admin, "CREATE DATABASE shop_before TEMPLATE shop"); !s.ok()) return s;
  b.restore_point = pb::NowSeconds() - t0;
  auto rp = SqlNumber(*pq, admin, "SELECT pg_database_size('shop_before')");
  if (!rp.ok()) return rp.status();
  b.restore_point_bytes = *rp;

  pb::Progress("local disk: apply");
  auto lsn = [&]() -> absl::StatusOr<std::string> {
    std::string v;
    if (auto s = (*pq)->Query(shop, "SELECT pg_current_wal_lsn()::text", &v); !s.ok()) return s;
    return v;
  };
  absl::StatusOr<std::string> lsn_before = lsn();
  if (!lsn_before.ok()) return lsn_before.status();
  t0 = pb::NowSeconds();
  if (auto s = (*pq)->Query(shop, migration); !s.ok()) return s;
  b.apply = pb::NowSeconds() - t0;
  auto wal = SqlNumber(
      *pq, shop,
      absl::StrCat("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '", *lsn_before, "')::bigint"));
  if (!wal.ok()) return wal.status();
  b.apply_wal_bytes = *wal;
  auto after = SqlNumber(*pq, shop, "SELECT pg_database_size(current_database())");
  if (!after.ok()) return after.status();
  b.apply_growth_bytes = *after - *db_bytes;
  if (auto s = (*local)->Stop(); !s.ok()) return s;
  return b;
}

}  // namespace

absl::Status RunPromote(const pb::BenchConfig& config) {
  const int64_t rows = config.quick ? 200'000 : 5'600'000;
  LocalInstance inst(config.base_dir);
  if (auto s = inst.Up(); !s.ok()) return s;
  absl::StatusOr<std::string> uri = inst.CreateBranch("main");
  if (!uri.ok()) return uri.status();
  absl::StatusOr<pb::Libpq*> pq = pb::Libpq::Get();
  if (!pq.ok()) return pq.status();
  pb::Progress(absl::StrCat("pagefs: loading ", rows, " rows into main"));
  double t0 = pb::NowSeconds();
  if (auto s = (*pq)->Query(*uri, LoadSql(rows)); !s.ok()) return inst.Explain(s);
  if (auto s = (*pq)->Query(*uri, kVacuum); !s.ok()) return inst.Explain(s);
  const double load = pb::NowSeconds() - t0;
  auto db_size = SqlNumber(*pq, *uri, "SELECT pg_database_size(current_database())");
  if (!db_size.ok()) return db_size.status();
  auto table_size = SqlNumber(*pq, *uri, "SELECT pg_total_relation_size('customers')");
  if (!table_size.ok()) return table_size.status();

  // The developer's branch, where the migration is written and tried first.
  absl::StatusOr<std::string> feature = inst.CreateBranch("feature", "main");
  if (!feature.ok()) return feature.status();
  pb::ScratchDir files(config.base_dir);
  const std::string migration_file = files.path() + "/loyalty.sql";
  std::ofstream(migration_file) << MigrationSql(rows);
  pb::Progress("pagefs: the migration on the feature branch");
  if (auto s = (*pq)->Query(*feature, MigrationSql(rows)); !s.ok()) return inst.Explain(s);

  if (auto s = Checkpoint(*pq, inst, "main"); !s.ok()) return s;
  auto main_before = DivergedBytes(inst, "main");
  if (!main_before.ok()) return main_before.status();
  pb::Progress("pagefs: pgbranch branch promote feature");
  t0 = pb::NowSeconds();
  CommandResult r =
      inst.Cli({"-o", "json", "branch", "promote", "feature", "--file", migration_file});
  const double promote_wall = pb::NowSeconds() - t0;
  if (r.exit_code != 0) return inst.Explain(absl::InternalError("promote: " + r.Describe()));
  web::json::value doc = web::json::value::parse(r.out);
  if (doc.at("result").as_string() != "Promoted") {
    return absl::InternalError("promote: " + r.out);
  }
  const std::string restore_point = doc.at("restorePoint").as_string();
  if (auto s = Checkpoint(*pq, inst, "main"); !s.ok()) return s;
  auto main_after = DivergedBytes(inst, "main");
  if (!main_after.ok()) return main_after.status();
  auto rp_own = DivergedBytes(inst, restore_point);
  if (!rp_own.ok()) return rp_own.status();
  std::string tiers;
  if (auto s = (*pq)->Query(*uri, "SELECT count(loyalty_tier) FROM customers", &tiers); !s.ok()) {
    return s;
  }
  if (std::stoll(tiers) != rows / 10) {
    return absl::InternalError(
        absl::StrCat("after promote, main has ", tiers, " backfilled rows, not ", rows / 10));
  }

  int64_t local_db_bytes = 0;
  absl::StatusOr<Baseline> local = RunLocalDisk(config, rows, &local_db_bytes);
  if (!local.ok()) return local.status();

  const double rehearsal = Seconds(doc, {"rehearsal", "totalMs"});
  const double rehearsal_migration = Seconds(doc, {"rehearsal", "apply", "durationMs"});
  const double restore = Seconds(doc, {"restorePointMs"});
  const double apply = Seconds(doc, {"applied", "durationMs"});

  pb::Table t(absl::StrCat("Promote a one-column migration with a 10% backfill into a parent of ",
                           MiB(*db_size), " (local mode) versus by hand on the local disk"),
              {"phase", "pgbranch (pagefs)", "local disk, by hand", "how, by hand"});
  t.Add({"rehearsal, all", SecsOrDash(rehearsal), pb::Secs(local->rehearsal),
         "CREATE DATABASE TEMPLATE, migrate, DROP"});
  t.Add({"  of which the migration", SecsOrDash(rehearsal_migration),
         pb::Secs(local->rehearsal_migration), "on the copy"});
  t.Add({"restore point", SecsOrDash(restore), pb::Secs(local->restore_point),
         "CREATE DATABASE TEMPLATE (a full copy)"});
  t.Add({"apply to the parent", SecsOrDash(apply), pb::Secs(local->apply), "one transaction"});
  t.Add({"promote, end to end", pb::Secs(promote_wall),
         pb::Secs(local->rehearsal + local->restore_point + local->apply), "sum of the three"});
  t.Add({"restore point: its own pages", MiB(static_cast<double>(*rp_own)),
         MiB(static_cast<double>(local->restore_point_bytes)), "pg_database_size of the copy"});
  t.Add({"parent: page versions the apply wrote",
         MiB(static_cast<double>(*main_after - *main_before)),
         MiB(static_cast<double>(local->apply_wal_bytes + local->apply_growth_bytes)),
         "WAL of the apply + database growth"});
  t.Add({"  of which WAL / growth, by hand", "-",
         absl::StrCat(MiB(static_cast<double>(local->apply_wal_bytes)), " / ",
                      MiB(static_cast<double>(local->apply_growth_bytes))),
         "pg_wal_lsn_diff, pg_database_size"});
  t.Note(absl::StrCat("parent: ", rows, " rows, customers ", MiB(static_cast<double>(*table_size)),
                      " (pg_total_relation_size), database ", MiB(static_cast<double>(*db_size)),
                      " on pagefs, ", MiB(static_cast<double>(local_db_bytes)),
                      " on the local disk; loaded in ", pb::Secs(load),
                      " through the proxy (one INSERT ... SELECT generate_series)"));
  t.Note(absl::StrCat(
      "migration (--file, 3 statements): ADD COLUMN loyalty_tier text; UPDATE of the ", rows / 10,
      " rows with id <= ", rows / 10, " (10%, contiguous); CREATE INDEX on the new column"));
  t.Note(
      "pgbranch times: the promote JSON report (rehearsal.totalMs: branch + compute start + "
      "migration + schema comparison + deletion; restorePointMs; applied.durationMs); end to end: "
      "the CLI process, after the same migration was run on the feature branch");
  t.Note(
      "storage: `diverged` of `pagectl timeline info` (page versions a timeline holds, history "
      "included, after a CHECKPOINT of the parent): the restore point's own, and the parent's "
      "growth across the promote (heap, index, WAL), which is what the restore point keeps "
      "readable (target: O(changed pages), not O(database))");
  t.Print();
  return absl::OkStatus();
}

}  // namespace pgbranch::local_bench
