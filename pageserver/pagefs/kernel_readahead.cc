#include "pageserver/pagefs/kernel_readahead.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace pgbranch::pagefs {
namespace {

std::string BdiName(dev_t dev) { return absl::StrCat(major(dev), ":", minor(dev)); }

}  // namespace

std::string KernelReadAhead::SysfsPath(dev_t dev) {
  return absl::StrCat("/sys/class/bdi/", BdiName(dev), "/read_ahead_kb");
}

absl::Status KernelReadAhead::Set(const std::string& mountpoint, uint32_t kb,
                                  const std::string& sysfs_root) {
  struct stat st;
  if (stat(mountpoint.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot stat the mount point ", mountpoint, ": ", strerror(errno)));
  }
  const std::string path = absl::StrCat(sysfs_root, "/", BdiName(st.st_dev), "/read_ahead_kb");
  std::ofstream out(path);
  if (out) out << kb << "\n";
  out.close();
  if (!out) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", path,
                     " (the kernel's read-ahead window needs root): sequential reads "
                     "keep the kernel's default window"));
  }
  return absl::OkStatus();
}

}  // namespace pgbranch::pagefs
