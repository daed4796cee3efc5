#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pageserver/pagefs/pagefs.h"

namespace pgbranch::pagefs {

// What a PostgreSQL 15 server on a new mount will read first if it crashed: the WAL from its
// last checkpoint's redo point on, which crash recovery replays front to back. Read ahead into
// pagefs's cache from the mount on (PageFs::ReadAhead), it arrives while PostgreSQL starts, and
// the replay's reads wait for fetches in flight instead of starting them.
//
// The plan: global/pg_control in `data_dir` (relative to the mount's root) gives the redo point
// and its timeline (ControlFileData.checkPointCopy: redo at byte 40, ThisTimeLineID at 48; the
// layout of PostgreSQL 15, little-endian); the segment holding it, named as PostgreSQL names it
// (timeline, then the segment number in two 8-digit hex halves) with the segment size taken from
// that file's size, is read from the redo point's page to its end, then each next segment while
// its first page's header says it is that segment (xlp_pageaddr, at byte 8, is the segment's
// start LSN: a recycled segment still holds an older one, a fresh one zeros), up to `max_bytes`
// in all. Anything missing or odd (a clean shutdown is no different: its redo point is the end
// of WAL) yields a shorter plan, never an error: the plan is a hint.
struct WalReadAhead {
  uint64_t ino;
  uint64_t from_block, to_block;  // [from, to)
};
std::vector<WalReadAhead> PostgresWalPlan(PageFs* pfs, const std::string& data_dir,
                                          uint64_t max_bytes);

// The name of WAL segment `segno` of timeline `tli` for segments of `seg_size` bytes.
std::string WalSegmentName(uint32_t tli, uint64_t segno, uint64_t seg_size);

}  // namespace pgbranch::pagefs
