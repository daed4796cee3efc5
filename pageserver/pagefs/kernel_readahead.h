#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace pgbranch::pagefs {

// The kernel's read-ahead window of a FUSE mount. The kernel starts every FUSE mount at its
// default window (128 KiB) and the INIT reply's max_readahead can only lower it, so a sequential
// reader of a pagefs file -- crash recovery reading a 16 MiB WAL segment, a sequential scan --
// gets 128 KiB READs and, past pagefs's own read-ahead (a synchronous 1 MiB fetch on a miss),
// waits for a round trip every MiB. The window is a property of the mount's backing device info
// (/sys/class/bdi/MAJOR:MINOR/read_ahead_kb), which root may raise after INIT: the kernel then
// sends READs of up to max_pages (1 MiB) and keeps up to `kb` of them in flight ahead of the
// reader, asynchronously. Files opened before the change keep the window they opened with.
// It pays only together with pagefs's far read-ahead of WAL and its waiting for pages in flight
// (PageFs::Read): alone, the kernel's concurrent 1 MiB READs fetched the same pages twice and
// waited behind each other's Read RPCs (docs/pagefs.md, "Cold crash recovery").
class KernelReadAhead {
 public:
  // The sysfs file of the mount whose st_dev is `dev`: "/sys/class/bdi/0:58/read_ahead_kb".
  static std::string SysfsPath(dev_t dev);
  // Sets the window of the mount at `mountpoint` (an existing, initialised FUSE mount: stat(2)
  // of its root must be answerable) to `kb` KiB. `sysfs_root` replaces "/sys/class/bdi" (tests).
  static absl::Status Set(const std::string& mountpoint, uint32_t kb,
                          const std::string& sysfs_root = "/sys/class/bdi");
};

}  // namespace pgbranch::pagefs
