// AccessCheck: the POSIX permission rules pagefs applies itself (the mount has no
// default_permissions): owner, group and other classes, supplementary groups read only when
// needed, uid 0, the sticky bit, chmod/chown and times.
#include "pageserver/pagefs/access_check.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "gtest/gtest.h"

namespace pgbranch::pagefs {
namespace {

fs::InodeAttr Attr(uint32_t mode, uint32_t uid, uint32_t gid) {
  fs::InodeAttr a;
  a.mode = mode;
  a.uid = uid;
  a.gid = gid;
  a.nlink = 1;
  return a;
}

// A caller whose supplementary groups are `groups`; counts how often they were loaded.
struct Groups {
  std::vector<gid_t> groups;
  int loads = 0;
  AccessCheck Caller(uid_t uid, gid_t gid) {
    return AccessCheck(uid, gid, [this] {
      ++loads;
      return groups;
    });
  }
};

TEST(AccessCheckTest, OwnerGroupAndOtherClasses) {
  Groups g;
  fs::InodeAttr f = Attr(S_IFREG | 0640, 100, 200);
  AccessCheck owner = g.Caller(100, 999);
  EXPECT_EQ(owner.May(f, R_OK | W_OK), 0);
  EXPECT_EQ(owner.May(f, X_OK), EACCES);
  AccessCheck member = g.Caller(101, 200);
  EXPECT_EQ(member.May(f, R_OK), 0);
  EXPECT_EQ(member.May(f, W_OK), EACCES);
  AccessCheck other = g.Caller(102, 300);
  EXPECT_EQ(other.May(f, R_OK), EACCES);
  EXPECT_EQ(other.May(f, 0), 0);  // existence only
  // The owner class decides for the owner even when others may more (mode 0077).
  EXPECT_EQ(owner.May(Attr(S_IFREG | 0077, 100, 200), R_OK), EACCES);
}

TEST(AccessCheckTest, SupplementaryGroupsOnlyWhenTheyMatter) {
  Groups g;
  g.groups = {5, 200};
  AccessCheck c = g.Caller(101, 300);
  EXPECT_EQ(c.May(Attr(S_IFREG | 0600, 100, 200), R_OK), EACCES);  // group bits = other bits
  EXPECT_EQ(g.loads, 0);
  EXPECT_EQ(c.May(Attr(S_IFREG | 0640, 100, 200), R_OK), 0);  // via supplementary group 200
  EXPECT_EQ(c.May(Attr(S_IFREG | 0640, 100, 201), R_OK), EACCES);
  EXPECT_EQ(g.loads, 1);  // loaded once
  // Group bits that deny what others may: a member is denied.
  EXPECT_EQ(c.May(Attr(S_IFREG | 0604, 100, 200), R_OK), EACCES);
}

TEST(AccessCheckTest, RootReadsAndWritesAllButExecutesOnlyExecutables) {
  Groups g;
  AccessCheck root = g.Caller(0, 0);
  EXPECT_EQ(root.May(Attr(S_IFREG | 0000, 100, 200), R_OK | W_OK), 0);
  EXPECT_EQ(root.May(Attr(S_IFREG | 0600, 100, 200), X_OK), EACCES);
  EXPECT_EQ(root.May(Attr(S_IFREG | 0001, 100, 200), X_OK), 0);
  EXPECT_EQ(root.May(Attr(S_IFDIR | 0000, 100, 200), X_OK | W_OK), 0);
}

TEST(AccessCheckTest, DeleteNeedsWriteAndSearchAndTheStickyRule) {
  Groups g;
  fs::InodeAttr dir = Attr(S_IFDIR | 0777, 100, 200);
  fs::InodeAttr sticky = Attr(S_IFDIR | 01777, 100, 200);
  fs::InodeAttr theirs = Attr(S_IFREG | 0666, 101, 200);
  AccessCheck c = g.Caller(102, 300);
  EXPECT_EQ(c.MayDelete(dir, theirs), 0);
  EXPECT_EQ(c.MayDelete(sticky, theirs), EPERM);
  EXPECT_EQ(g.Caller(101, 300).MayDelete(sticky, theirs), 0);  // the file's owner
  EXPECT_EQ(g.Caller(100, 300).MayDelete(sticky, theirs), 0);  // the directory's owner
  EXPECT_EQ(g.Caller(0, 0).MayDelete(sticky, theirs), 0);
  EXPECT_EQ(c.MayDelete(Attr(S_IFDIR | 0755, 100, 200), theirs), EACCES);
  EXPECT_EQ(c.MayDelete(Attr(S_IFDIR | 0776, 100, 200), theirs), EACCES);  // no search
}

TEST(AccessCheckTest, ChmodChownAndTimes) {
  Groups g;
  g.groups = {201};
  fs::InodeAttr f = Attr(S_IFREG | 0644, 100, 200);
  AccessCheck owner = g.Caller(100, 200);
  AccessCheck other = g.Caller(101, 300);
  EXPECT_EQ(owner.MayChmod(f), 0);
  EXPECT_EQ(other.MayChmod(f), EPERM);
  EXPECT_EQ(g.Caller(0, 0).MayChmod(f), 0);
  EXPECT_EQ(owner.MayChown(f, 101, std::nullopt), EPERM);  // give it away
  EXPECT_EQ(owner.MayChown(f, 100, std::nullopt), 0);      // to itself
  EXPECT_EQ(owner.MayChown(f, std::nullopt, 201), 0);      // to one of its groups
  EXPECT_EQ(owner.MayChown(f, std::nullopt, 202), EPERM);  // not one of its groups
  EXPECT_EQ(other.MayChown(f, std::nullopt, 200), EPERM);  // not the owner
  EXPECT_EQ(g.Caller(0, 0).MayChown(f, 5, 6), 0);
  EXPECT_TRUE(owner.MaySetTimes(f));
  EXPECT_FALSE(other.MaySetTimes(f));
  EXPECT_TRUE(other.MaySetTimes(Attr(S_IFREG | 0646, 100, 200)));  // a writer
}

}  // namespace
}  // namespace pgbranch::pagefs
