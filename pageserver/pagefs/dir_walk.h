#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pageserver/pagefs/pagefs.h"

namespace pgbranch::pagefs {

// Walks a PageFs's directories from inside pagefs (never through the mount), for the plans that
// pagefs makes at mount time from a PostgreSQL data directory (catalog_prefetch, wal_prefetch).
// Every error reads as "absent": the plans are hints.
class DirWalk {
 public:
  // The entries of directory `ino` other than "." and ".."; empty on any error.
  static std::vector<DirListing> Entries(PageFs* pfs, uint64_t ino);
  // The inode of the entry `name` of directory `dir` if it is of `type` (DT_DIR, DT_REG, ...).
  static std::optional<uint64_t> Child(PageFs* pfs, uint64_t dir, const std::string& name,
                                       uint8_t type);
  // The directory at `path` ("pgdata", "a/b"), relative to the mount's root.
  static std::optional<uint64_t> Dir(PageFs* pfs, const std::string& path);
};

}  // namespace pgbranch::pagefs
