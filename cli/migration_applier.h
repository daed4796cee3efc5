#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cli/migration_plan.h"
#include "cli/sql_session.h"

// Applies a MigrationPlan through one SqlSession and says what each statement did: the
// transactional statements in one transaction (all or nothing), then the non-transactional ones
// one by one. The same code runs the rehearsal and the promotion (and can run the operator's).
namespace pgbranch::cli {

struct LockTaken {
  std::string relation;  // as regclass prints it: ecommerce.customers
  std::string mode;      // AccessExclusiveLock, ShareLock, ...
};

struct StatementReport {
  std::string sql;
  bool transactional = true;
  bool applied = false;  // ran without error (in the transaction: and the transaction committed)
  absl::Duration duration;
  std::string error;  // the server's message when this statement failed
  // Locks this statement took on relations that existed before it, from ShareLock up (they
  // block writes; AccessExclusiveLock blocks reads too): the strongest per relation, by name. Only
  // seen inside the transaction: a non-transactional statement has released its locks when it
  // returns.
  std::vector<LockTaken> locks;
  // Relations that existed before and got a new file (relfilenode): rewritten, with the time
  // and the locks that take on a big table.
  std::vector<std::string> rewritten;

  bool TakesAccessExclusive() const;
};

struct ApplyReport {
  std::vector<StatementReport> statements;  // in plan order; statements not reached are absent
  bool committed = false;                   // the transaction committed (or had no statements)
  bool complete = false;                    // every statement applied
  int failed = -1;                          // index of the failing statement, or -1
  std::string error;                        // why it stopped (a statement's or COMMIT's error)
  absl::Duration duration;
};

class MigrationApplier {
 public:
  explicit MigrationApplier(
      SqlSession* session, std::function<absl::Time()> now = [] { return absl::Now(); })
      : session_(session), now_(std::move(now)) {}

  // Nothing of the transactional part stays on failure in it (ROLLBACK). A non-transactional
  // statement that fails leaves the committed transaction and the statements before it applied.
  ApplyReport Apply(const MigrationPlan& plan);

  // Called after the transactional statements ran and before COMMIT, with the transaction's id
  // (txid_current()). An error rolls the transaction back (the report's error says why). The
  // operator's Promotion records the id durably here: after a crash, txid_status(id) on the same
  // database tells whether the transaction committed, so it is never applied twice.
  void SetBeforeCommit(std::function<absl::Status(const std::string& txid)> hook) {
    before_commit_ = std::move(hook);
  }

 private:
  struct Relation {
    std::string name;
    std::string filenode;
  };
  // oid -> relation, of the user's tables, indexes and materialized views.
  absl::StatusOr<std::map<std::string, Relation>> Relations();
  // (oid, mode) of the relation locks this session holds.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Locks();
  // Runs one statement and fills `r`; observes locks when `in_transaction`.
  absl::Status Run(const std::string& sql, bool in_transaction, StatementReport* r);

  SqlSession* session_;
  std::function<absl::Time()> now_;
  std::function<absl::Status(const std::string& txid)> before_commit_;
};

}  // namespace pgbranch::cli
