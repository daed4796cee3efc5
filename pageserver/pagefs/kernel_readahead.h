#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pgbranch::pagefs {

// The kernel's read-ahead window of a FUSE mount. The kernel starts every FUSE mount at its
// default window (128 KiB) and the INIT reply's max_readahead can only lower it, so a sequential
// reader of a pagefs file -- crash recovery reading a 16 MiB WAL segment, a sequential scan --
// gets 128 KiB READs and, past pagefs's own read-ahead (a synchronous 1 MiB fetch on a miss),
// waits for a round trip every MiB. The window is a property of the mount's backing device info
// (/sys/class/bdi/MAJOR:MINOR/read_ahead_kb), which root may raise once the kernel has processed
// the INIT reply (it lowers the window to the reply's max_readahead): the kernel then sends READs
// of up to max_pages (1 MiB) and keeps up to `kb` of them in flight ahead of the reader,
// asynchronously. Files opened before the change keep the window they opened with.
//
// Invariant: nothing here touches the mount itself. A pagefs thread that stat(2)s its own mount
// waits for a reply from its own FUSE workers; killed at that moment, the process can never
// finish exiting (the request is owned by a dead worker, and only the close of the process's
// own /dev/fuse descriptor would abort it). The device comes from /proc/self/mountinfo instead,
// and pagefs calls Set while it answers its first request after INIT (fuse_bridge.cc).
class KernelReadAhead {
 public:
  // The sysfs file of the device "MAJOR:MINOR": "/sys/class/bdi/0:58/read_ahead_kb".
  static std::string SysfsPath(dev_t dev);
  // The device ("MAJOR:MINOR") of the mount at `mountpoint` (absolute, without symlinks) in
  // `mountinfo` (the text of /proc/self/mountinfo): the last such mount, which hides earlier
  // ones. NotFound if none.
  static absl::StatusOr<std::string> DeviceOf(std::string_view mountinfo,
                                              const std::string& mountpoint);
  // Writes the window of device `device` ("MAJOR:MINOR") as `kb` KiB. `sysfs_root` replaces
  // "/sys/class/bdi" (tests).
  static absl::Status Set(const std::string& device, uint32_t kb,
                          const std::string& sysfs_root = "/sys/class/bdi");
};

}  // namespace pgbranch::pagefs
