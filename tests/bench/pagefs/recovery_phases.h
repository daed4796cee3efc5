#pragma once

#include <string>

// The phases of one crash restart, parsed from the part of a PostgreSQL 15 server log that the
// restart wrote. Needs log_line_prefix to start with %m ("2026-11-30 17:00:08.123 UTC") and
// log_checkpoints = on. A phase that cannot be parsed is negative: the bench prints '-' for it.
namespace pgbranch::pagefs_bench {

struct RecoveryPhases {
  double redo_s = -1;        // "redo starts at" .. "redo done at" (log timestamps)
  double wal_bytes = -1;     // the two lines' LSNs: WAL replayed
  double checkpoint_s = -1;  // "checkpoint starting: end-of-recovery" .. its "checkpoint complete"

  // WAL bytes replayed per second of redo; negative if either is unknown.
  double ReplayBytesPerSecond() const {
    return redo_s > 0 && wal_bytes >= 0 ? wal_bytes / redo_s : -1;
  }
};

// The first restart found in `log` (the first "redo starts at" and what follows it).
RecoveryPhases ParseRecoveryPhases(const std::string& log);

}  // namespace pgbranch::pagefs_bench
