#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pageserver/pagefs/pagefs.h"
#include "pageserver/pagefs/startup_reads.h"

namespace pgbranch::pagefs {

// The file of StartupReads (StartupReads::kFileName at the mount's root), read, resolved into a
// prefetch plan, and written, from inside pagefs (never through the mount, like DirWalk). Every
// failure reads as "no file": the file is a hint, and a start without it only prefetches less
// exactly (PostgresCatalogPlan).
class StartupReadFile {
 public:
  // Where Save writes before it renames.
  static constexpr char kTempName[] = ".pagefs-startup-reads.tmp";
  // The file's text, "" if there is none or it cannot be read.
  static std::string Load(PageFs* pfs);
  // The pages of `files` that exist, as a prefetch plan in the file's order (each path resolved
  // by listing its directories; a path that no longer exists is skipped).
  static std::vector<PageFs::PrefetchFile> Plan(PageFs* pfs,
                                                const std::vector<StartupReads::File>& files);
  // `recorded` by path: the regular files below `data_dir` (relative to the root), in the order
  // recorded. Left out: its pg_wal (segments differ from start to start) and the template
  // databases base/1 and base/4 (read only when a CREATE DATABASE copies one).
  static std::vector<StartupReads::File> Name(PageFs* pfs, const std::string& data_dir,
                                              const std::vector<StartupReads::Recorded>& recorded);
  // Replaces the file with `text`: written to a temporary name, fsynced, then renamed over it
  // (so a crash leaves the old file or the new one, whole). 0 or an errno.
  static int Save(PageFs* pfs, const std::string& text);
  // What a start recorded, kept: named (Name), and saved unless the file already says the same.
  // 0 (*pages: the pages now in the file, 0 if nothing was written) or Save's errno.
  static int Keep(PageFs* pfs, const std::string& data_dir,
                  const std::vector<StartupReads::Recorded>& recorded, uint64_t* pages);
};

}  // namespace pgbranch::pagefs
