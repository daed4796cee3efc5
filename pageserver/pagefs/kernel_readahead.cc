#include "pageserver/pagefs/kernel_readahead.h"

#include <sys/sysmacros.h>

#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pgbranch::pagefs {
namespace {

// A mountinfo path field with its octal escapes (\040 for a space, \011, \012, \134) undone.
std::string Unescape(std::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && field[i + 1] >= '0' && field[i + 1] <= '3') {
      out.push_back(static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                      (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

}  // namespace

std::string KernelReadAhead::SysfsPath(dev_t dev) {
  return absl::StrCat("/sys/class/bdi/", major(dev), ":", minor(dev), "/read_ahead_kb");
}

absl::StatusOr<std::string> KernelReadAhead::DeviceOf(std::string_view mountinfo,
                                                      const std::string& mountpoint) {
  // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw": field 3 is the device,
  // field 5 the mount point.
  std::string device;
  const absl::string_view text(mountinfo.data(), mountinfo.size());
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() < 5 || Unescape(std::string_view(f[4].data(), f[4].size())) != mountpoint) {
      continue;
    }
    device = std::string(f[2]);
  }
  if (device.empty()) {
    return absl::NotFoundError(absl::StrCat("no mount at ", mountpoint, " in mountinfo"));
  }
  return device;
}

absl::Status KernelReadAhead::Set(const std::string& device, uint32_t kb,
                                  const std::string& sysfs_root) {
  const std::string path = absl::StrCat(sysfs_root, "/", device, "/read_ahead_kb");
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
