#include "cli/migration_applier.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"

namespace pgbranch::cli {
namespace {

constexpr char kRelationsSql[] =
    "SELECT c.oid::text, c.relfilenode::text, c.oid::regclass::text FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'm', 'i') AND n.nspname NOT IN ('pg_catalog', "
    "'information_schema', 'pgbranch') AND n.nspname NOT LIKE 'pg\\_toast%' "
    "AND n.nspname NOT LIKE 'pg\\_temp%'";
constexpr char kLocksSql[] =
    "SELECT relation::text, mode FROM pg_catalog.pg_locks WHERE pid = pg_catalog.pg_backend_pid() "
    "AND locktype = 'relation' AND granted AND mode IN ('ShareLock', 'ShareRowExclusiveLock', "
    "'ExclusiveLock', 'AccessExclusiveLock')";

std::string Text(const std::optional<std::string>& v) { return v.value_or(""); }

int Strength(const std::string& mode) {
  if (mode == "AccessExclusiveLock") return 4;
  if (mode == "ExclusiveLock") return 3;
  if (mode == "ShareRowExclusiveLock") return 2;
  return 1;
}

}  // namespace

bool StatementReport::TakesAccessExclusive() const {
  return std::any_of(locks.begin(), locks.end(),
                     [](const LockTaken& l) { return l.mode == "AccessExclusiveLock"; });
}

absl::StatusOr<std::map<std::string, MigrationApplier::Relation>> MigrationApplier::Relations() {
  absl::StatusOr<SqlResult> r = session_->Exec(kRelationsSql);
  if (!r.ok()) return r.status();
  std::map<std::string, Relation> out;
  for (const auto& row : r->rows) out[Text(row[0])] = {Text(row[2]), Text(row[1])};
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> MigrationApplier::Locks() {
  absl::StatusOr<SqlResult> r = session_->Exec(kLocksSql);
  if (!r.ok()) return r.status();
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& row : r->rows) out.emplace_back(Text(row[0]), Text(row[1]));
  return out;
}

absl::Status MigrationApplier::Run(const std::string& sql, bool in_transaction,
                                   StatementReport* r) {
  absl::StatusOr<std::map<std::string, Relation>> before = Relations();
  if (!before.ok()) return before.status();
  std::set<std::pair<std::string, std::string>> locks_before;
  if (in_transaction) {
    auto l = Locks();
    if (!l.ok()) return l.status();
    locks_before.insert(l->begin(), l->end());
  }
  const absl::Time start = now_();
  absl::StatusOr<SqlResult> done = session_->Exec(sql);
  r->duration = now_() - start;
  if (!done.ok()) {
    r->error = std::string(done.status().message());
    return done.status();
  }
  if (in_transaction) {
    auto l = Locks();
    if (!l.ok()) return l.status();
    for (const auto& lock : *l) {
      auto rel = before->find(lock.first);
      // A relation the statement created is locked by its creator and blocks no one.
      if (rel == before->end() || locks_before.count(lock)) continue;
      // One entry per relation, with the strongest mode taken.
      auto same = std::find_if(r->locks.begin(), r->locks.end(),
                               [&](const LockTaken& t) { return t.relation == rel->second.name; });
      if (same == r->locks.end()) {
        r->locks.push_back({rel->second.name, lock.second});
      } else if (Strength(lock.second) > Strength(same->mode)) {
        same->mode = lock.second;
      }
    }
    std::sort(r->locks.begin(), r->locks.end(),
              [](const LockTaken& a, const LockTaken& b) { return a.relation < b.relation; });
  }
  absl::StatusOr<std::map<std::string, Relation>> after = Relations();
  if (!after.ok()) return after.status();
  for (const auto& [oid, rel] : *before) {
    auto a = after->find(oid);
    if (a != after->end() && a->second.filenode != rel.filenode) r->rewritten.push_back(rel.name);
  }
  std::sort(r->rewritten.begin(), r->rewritten.end());
  return absl::OkStatus();
}

ApplyReport MigrationApplier::Apply(const MigrationPlan& plan) {
  ApplyReport report;
  const absl::Time start = now_();
  auto fail = [&](int index, const absl::Status& s) {
    report.failed = index;
    report.error = std::string(s.message());
  };
  const bool has_transaction = plan.TransactionalCount() > 0;
  if (has_transaction) {
    absl::Status begun = session_->Exec("BEGIN").status();
    if (!begun.ok()) {
      fail(-1, begun);
      report.duration = now_() - start;
      return report;
    }
    for (size_t i = 0; i < plan.statements.size(); ++i) {
      const MigrationStatement& m = plan.statements[i];
      if (!m.transactional) continue;
      StatementReport r;
      r.sql = m.sql;
      absl::Status s = Run(m.sql, true, &r);
      report.statements.push_back(std::move(r));
      if (!s.ok()) {
        (void)session_->Exec("ROLLBACK");
        fail(static_cast<int>(i), s);
        report.duration = now_() - start;
        return report;
      }
    }
    if (before_commit_) {
      absl::StatusOr<SqlResult> txid = session_->Exec("SELECT txid_current()::text");
      absl::Status recorded = !txid.ok() ? txid.status()
                              : txid->rows.size() != 1 || txid->rows[0].empty() || !txid->rows[0][0]
                                  ? absl::InternalError("txid_current() returned no value")
                                  : before_commit_(*txid->rows[0][0]);
      if (!recorded.ok()) {
        (void)session_->Exec("ROLLBACK");
        report.error = absl::StrCat("before COMMIT: ", recorded.message());
        report.duration = now_() - start;
        return report;
      }
    }
    absl::Status committed = session_->Exec("COMMIT").status();
    if (!committed.ok()) {
      (void)session_->Exec("ROLLBACK");
      report.error = absl::StrCat("COMMIT: ", committed.message());
      report.duration = now_() - start;
      return report;
    }
    for (auto& r : report.statements) r.applied = true;
  }
  report.committed = true;
  for (size_t i = 0; i < plan.statements.size(); ++i) {
    const MigrationStatement& m = plan.statements[i];
    if (m.transactional) continue;
    StatementReport r;
    r.sql = m.sql;
    r.transactional = false;
    absl::Status s = Run(m.sql, false, &r);
    r.applied = s.ok();
    report.statements.push_back(std::move(r));
    if (!s.ok()) {
      fail(static_cast<int>(i), s);
      report.duration = now_() - start;
      return report;
    }
  }
  report.complete = true;
  report.duration = now_() - start;
  return report;
}

}  // namespace pgbranch::cli
