#include "pageserver/pagefs/access_check.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace pgbranch::pagefs {

AccessCheck::AccessCheck(uid_t uid, gid_t gid, std::function<std::vector<gid_t>()> load_groups)
    : uid_(uid), gid_(gid), load_groups_(std::move(load_groups)) {}

bool AccessCheck::InGroup(gid_t gid) {
  if (gid == gid_) return true;
  if (!groups_) groups_ = load_groups_ ? load_groups_() : std::vector<gid_t>();
  return std::find(groups_->begin(), groups_->end(), gid) != groups_->end();
}

int AccessCheck::May(const fs::InodeAttr& attr, int mask) {
  mask &= R_OK | W_OK | X_OK;
  if (mask == 0) return 0;
  if (privileged()) {
    // Reading and writing anything; searching any directory; executing a file that some class
    // may execute.
    if (!(mask & X_OK) || attr.IsDirectory() || (attr.mode & (S_IXUSR | S_IXGRP | S_IXOTH))) {
      return 0;
    }
    return EACCES;
  }
  uint32_t bits;  // the rwx bits of the caller's class, as R_OK/W_OK/X_OK
  if (attr.uid == uid_) {
    bits = (attr.mode >> 6) & 7;
  } else if (((attr.mode >> 3) & 7) == (attr.mode & 7)) {
    bits = attr.mode & 7;  // group and others alike: no need to know the caller's groups
  } else if (InGroup(attr.gid)) {
    bits = (attr.mode >> 3) & 7;
  } else {
    bits = attr.mode & 7;
  }
  return (bits & static_cast<uint32_t>(mask)) == static_cast<uint32_t>(mask) ? 0 : EACCES;
}

int AccessCheck::StickyAllows(const fs::InodeAttr& dir, const fs::InodeAttr& child) const {
  if (!(dir.mode & S_ISVTX) || privileged()) return 0;
  return dir.uid == uid_ || child.uid == uid_ ? 0 : EPERM;
}

int AccessCheck::MayDelete(const fs::InodeAttr& dir, const fs::InodeAttr& child) {
  if (int err = May(dir, W_OK | X_OK)) return err;
  return StickyAllows(dir, child);
}

int AccessCheck::MayChmod(const fs::InodeAttr& attr) const {
  return privileged() || attr.uid == uid_ ? 0 : EPERM;
}

int AccessCheck::MayChown(const fs::InodeAttr& attr, std::optional<uid_t> uid,
                          std::optional<gid_t> gid) {
  if (privileged()) return 0;
  // The owner may "change" the owner to itself, and the group to one of its own groups.
  if (uid && !(*uid == attr.uid && attr.uid == uid_)) return EPERM;
  if (gid && *gid != attr.gid && !(attr.uid == uid_ && InGroup(*gid))) return EPERM;
  if (gid && *gid == attr.gid && attr.uid != uid_) return EPERM;
  return 0;
}

bool AccessCheck::MaySetTimes(const fs::InodeAttr& attr) {
  return privileged() || attr.uid == uid_ || May(attr, W_OK) == 0;
}

}  // namespace pgbranch::pagefs
