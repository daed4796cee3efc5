#pragma once

#include <map>
#include <string>
#include <vector>

#include "compute/postgres_process.h"

// A read-only endpoint runs PostgreSQL as a hot standby of the branch's data directory, and a hot
// standby refuses to start ("insufficient parameter settings") when one of max_connections,
// max_worker_processes, max_wal_senders, max_prepared_transactions or max_locks_per_transaction
// is lower than the primary's, which pg_control records. A read-write endpoint with
// `max_connections: "200"` would otherwise make every read-only endpoint of its branch fail.
namespace pgbranch::compute {

// Raises each of those settings in `parameters` (the endpoint's own value, else PostgreSQL 15's
// default) to at least the primary's value from `primary`; values it cannot parse are left for
// PostgreSQL to judge. Returns one "name: from -> to" line per raised setting.
// Invariant: never lowers a setting, never touches another one.
std::vector<std::string> ApplyStandbyMinimums(const PgControlSummary& primary,
                                              std::map<std::string, std::string>* parameters);

}  // namespace pgbranch::compute
