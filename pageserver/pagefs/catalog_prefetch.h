#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pageserver/pagefs/pagefs.h"

namespace pgbranch::pagefs {

// What to prefetch for the start of a PostgreSQL 15 server on a new mount: every backend's first
// connection after a crash-recovery start rebuilds its relation cache (PostgreSQL removes the
// pg_internal.init files at such a start) from the system catalogs, reading the first pages of
// their indexes and heaps one at a time; cold, each is a round trip to the pageserver.
//
// The plan: in `data_dir` (relative to the mount's root, e.g. "pgdata"), the files of global/
// and of base/<oid>/ for every database but the templates (template1 is OID 1, template0 OID 4:
// no start reads them), whose name is a relfilenode below FirstNormalObjectId (16384: the
// catalogs' main forks) or pg_filenode.map; of each, the first `max_blocks` pages. The plan
// lists the directories it walks (PageFs::ReadDir, which loads their inodes in batches); a path
// that does not exist yields an empty plan, never an error.
std::vector<PageFs::PrefetchFile> PostgresCatalogPlan(PageFs* pfs, const std::string& data_dir,
                                                      uint32_t max_blocks);

}  // namespace pgbranch::pagefs
