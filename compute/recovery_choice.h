#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "compute/postgres_process.h"

// How a read-write start replays a data directory that was not shut down cleanly (a branch of a
// running database is a crash image of it; so is a compute that crashed).
//
//   crash recovery: replay, then a synchronous end-of-recovery checkpoint: it writes what the
//     replay dirtied and fsyncs each file through pagefs, so it costs in proportion to the WAL
//     replayed. Same timeline, nothing copied.
//   standby + promotion: replay, then an end-of-recovery record on a new timeline (the WAL
//     segment holding the end of WAL is copied to it, a history file written) and the same
//     checkpoint in the background, where it competes with the role step and the first queries.
//
// A branch taken at its parent's head replays little (the controller has the parent's compute
// CHECKPOINT before branching once anything was written since its last one): crash recovery
// then is the cheaper (measured: README.md, issue 11). Much WAL to replay (a crashed compute, a
// branch at an old LSN) keeps the promotion, whose checkpoint does not delay the start.
namespace pgbranch::compute {

enum class RecoveryMode { kNone, kCrash, kPromote };

// At most about this much WAL after the redo point (within a WAL segment): crash recovery.
constexpr uint64_t kCrashRecoveryMaxWalBytes = 2 << 20;

// The xlp_pageaddr of a WAL segment file's first page (in pg_wal), or nullopt when the file
// cannot be read or holds no valid first page header for the timeline `tli`.
using FirstPageAddress =
    std::function<std::optional<uint64_t>(const std::string& file, uint32_t tli)>;

// The mode for `control` (a read-write start; kNone for a clean data directory). `wal_files`:
// the names in pg_wal. Promotion when the WAL runs past redo + kCrashRecoveryMaxWalBytes (the
// segment holding that LSN is a written one, not a recycled file: its first page says its own
// address), or when a history file names a timeline after the checkpoint's (crash recovery
// would not follow the switch); crash recovery otherwise, and always with wal_level minimal
// (archive recovery refuses its WAL) or a pg_control too short to say.
RecoveryMode ChooseRecovery(const PgControlSummary& control,
                            const std::vector<std::string>& wal_files,
                            const FirstPageAddress& first_page_address);

// pg_wal's file name of the segment `segno` of timeline `tli` ("%08X%08X%08X").
std::string WalFileName(uint32_t tli, uint64_t segno, uint32_t segment_size);

// The names in `data_dir`/pg_wal (empty when it cannot be listed).
std::vector<std::string> ListWalFiles(const std::string& data_dir);

// Reads the first page header of pg_wal/`file` under `data_dir`: FirstPageAddress for real files.
std::optional<uint64_t> ReadFirstPageAddress(const std::string& data_dir, const std::string& file,
                                             uint32_t tli);

}  // namespace pgbranch::compute
