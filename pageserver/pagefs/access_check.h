#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <vector>

#include "pageserver/fs/fs_layout.h"

namespace pgbranch::pagefs {

// The POSIX permission rules for one caller (the uid and gid of the process behind a FUSE
// request), checked by pagefs itself.
//
// Why pagefs checks and not the kernel: with the `default_permissions` mount option the kernel
// checks from its cached attributes, but every change to a directory (create, unlink, rename)
// marks the directory's cached attributes stale, so the next operation in that directory first
// waits for a GETATTR round trip: one of the three round trips of an unlink, one of the four of
// a rename. Without the option the kernel checks nothing and pagefs, which holds every inode's
// attributes in memory, applies the same rules (the kernel's generic_permission, may_delete,
// chown_ok, setattr_prepare) on each request that reaches it.
//
// Differences from the kernel's checks, all on paths PostgreSQL does not take:
//  - uid 0 stands for the capabilities CAP_DAC_OVERRIDE, CAP_FOWNER and CAP_CHOWN;
//  - the search permission of the directories on a path is checked at LOOKUP: a name the kernel
//    has cached (looked up before by any process) is walked without a check. Opening, listing,
//    creating, deleting or changing anything still needs the permission on the object itself;
//  - a writer of a file who is not its owner may set its times to given values, not only to now;
//    setting the times of a file one may not write changes nothing and succeeds, unless it asks
//    for "now" (utimes(NULL): EACCES). The kernel sends its own cached times as given values,
//    with the credentials of whichever process caused the write-back (an unlink or rename by a
//    writer of the directory), and a refusal would be reported as a write error on the file.
class AccessCheck {
 public:
  // `load_groups` returns the caller's supplementary groups; it is called at most once, and only
  // when the answer depends on them (the caller is neither the owner nor in the owning group).
  AccessCheck(uid_t uid, gid_t gid, std::function<std::vector<gid_t>()> load_groups);

  uid_t uid() const { return uid_; }
  bool privileged() const { return uid_ == 0; }

  // R_OK, W_OK and X_OK bits in `mask` (0: existence only): 0 or EACCES.
  int May(const fs::InodeAttr& attr, int mask);
  // Removing `child` from `dir` (unlink, rmdir, rename away or over): write and search on `dir`,
  // and the sticky bit's rule. 0, EACCES or EPERM.
  int MayDelete(const fs::InodeAttr& dir, const fs::InodeAttr& child);
  // Whether the sticky bit of `dir` forbids removing `child`: 0 or EPERM.
  int StickyAllows(const fs::InodeAttr& dir, const fs::InodeAttr& child) const;
  // chmod: 0 or EPERM.
  int MayChmod(const fs::InodeAttr& attr) const;
  // chown: 0 or EPERM. Unset fields are not changed.
  int MayChown(const fs::InodeAttr& attr, std::optional<uid_t> uid, std::optional<gid_t> gid);
  // Setting a file's times: its owner or a writer of it. (The kernel lets only the owner set
  // given values, but with the writeback cache it sends "now" as a given value itself, after a
  // truncate or a write by any writer.)
  bool MaySetTimes(const fs::InodeAttr& attr);

 private:
  bool InGroup(gid_t gid);

  uid_t uid_;
  gid_t gid_;
  std::function<std::vector<gid_t>()> load_groups_;
  std::optional<std::vector<gid_t>> groups_;
};

}  // namespace pgbranch::pagefs
