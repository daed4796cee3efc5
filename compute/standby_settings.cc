#include "compute/standby_settings.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace pgbranch::compute {

std::vector<std::string> ApplyStandbyMinimums(const PgControlSummary& primary,
                                              std::map<std::string, std::string>* parameters) {
  struct Setting {
    const char* name;
    int primary_value;
    int postgres_default;  // PostgreSQL 15
  };
  const Setting settings[] = {
      {"max_connections", primary.max_connections, 100},
      {"max_worker_processes", primary.max_worker_processes, 8},
      {"max_wal_senders", primary.max_wal_senders, 10},
      {"max_prepared_transactions", primary.max_prepared_xacts, 0},
      {"max_locks_per_transaction", primary.max_locks_per_xact, 64},
  };
  std::vector<std::string> raised;
  for (const Setting& s : settings) {
    if (s.primary_value < 0) continue;  // pg_control too short to say
    int current = s.postgres_default;
    auto it = parameters->find(s.name);
    if (it != parameters->end() && !absl::SimpleAtoi(it->second, &current)) continue;
    if (current >= s.primary_value) continue;
    raised.push_back(absl::StrCat(s.name, ": ", current, " -> ", s.primary_value));
    (*parameters)[s.name] = absl::StrCat(s.primary_value);
  }
  return raised;
}

}  // namespace pgbranch::compute
