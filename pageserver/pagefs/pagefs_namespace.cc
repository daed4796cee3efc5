// pagefs: namespace operations. Each change is one atomic commit, issued (pipelined, in order)
// before it returns and durable at the next fsync/fsyncdir. A commit that cannot be issued leaves
// the in-memory state as it was (the rollbacks below); one that fails after it was issued
// poisons the store (PageFs::CommitFailed).
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "pageserver/pagefs/pagefs.h"
#include "pageserver/pagefs/pagefs_inode.h"

namespace pgbranch::pagefs {

namespace {
// A directory with more entries than this is not listed whole for lookups (one read per name).
constexpr size_t kMaxCompleteListing = 4096;
}  // namespace

int PageFs::ScanDirLocked(uint64_t ino, size_t max_entries, std::vector<DirListing>* out) {
  fs::KeyRange range = fs::DirEntryRange(ino);
  std::string start = range.start;
  size_t found = 0;
  while (true) {
    // At the head this sees every change issued before it (read-your-writes).
    auto page = store_->Scan(lsn_, start, range.end, 1000);
    if (!page.ok()) return ErrnoFor(page.status());
    for (const auto& [key, value] : page->entries) {
      auto parts = fs::ParseDirEntryKey(key);
      auto de = fs::DecodeDirEntry(value);
      if (!parts.ok() || !de.ok()) return EIO;
      out->push_back({std::string(parts->name), de->ino, fs::DirentType(de->type)});
    }
    found += page->entries.size();
    if (max_entries != 0 && found > max_entries) return E2BIG;
    if (!page->more || page->entries.empty()) break;
    start = page->entries.back().first + std::string(1, '\0');
  }
  return 0;
}

int PageFs::ListWholeDirLocked(Inode* dir) {
  dir->listing_tried = true;
  std::vector<DirListing> entries;
  int err = ScanDirLocked(dir->ino, kMaxCompleteListing, &entries);
  if (err == E2BIG) return 0;  // too large: stays incomplete
  if (err != 0) return err;
  // Entries already known are at least as new as the listing (mu_ is held throughout).
  for (const DirListing& e : entries) dirents_.emplace(std::make_pair(dir->ino, e.name), e.ino);
  dir->complete = true;
  return 0;
}

int64_t PageFs::LookupEntryLocked(uint64_t parent, const std::string& name) {
  auto key = std::make_pair(parent, name);
  auto it = dirents_.find(key);
  if (it != dirents_.end()) return static_cast<int64_t>(it->second);
  if (auto dir = FindLocked(parent); dir && dir->attr.IsDirectory()) {
    // The first lookup of a missing name in a directory lists it whole; from then on (and in a
    // directory this mount created) missing names cost no round trip.
    if (!dir->complete && !dir->listing_tried) {
      if (int err = ListWholeDirLocked(dir.get())) return -err;
    }
    if (dir->complete) {
      it = dirents_.find(key);
      return it == dirents_.end() ? 0 : static_cast<int64_t>(it->second);
    }
  }
  auto r = store_->Read(lsn_, {fs::DirEntryKey(parent, name)});
  if (!r.ok()) return -ErrnoFor(r.status());
  uint64_t child = 0;
  if ((*r)[0].has_value()) {
    auto de = fs::DecodeDirEntry(*(*r)[0]);
    if (!de.ok()) return -EIO;
    child = de->ino;
  }
  dirents_[key] = child;
  return static_cast<int64_t>(child);
}

int PageFs::ResolveLocked(uint64_t parent_ino, const std::string& name,
                          std::shared_ptr<Inode>* parent, std::shared_ptr<Inode>* child) {
  int err = 0;
  *parent = LoadLocked(parent_ino, &err);
  if (!*parent) return err;
  int64_t child_ino = LookupEntryLocked(parent_ino, name);
  if (child_ino < 0) return static_cast<int>(-child_ino);
  if (child_ino == 0) return ENOENT;
  *child = LoadLocked(static_cast<uint64_t>(child_ino), &err);
  return *child ? 0 : err;
}

int PageFs::Lookup(uint64_t parent, const std::string& name, fs::InodeAttr* attr, uint64_t* ino) {
  if (name.size() > fs::kMaxNameBytes) return ENAMETOOLONG;
  std::shared_ptr<Inode> child;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int err = 0;
    auto dir = LoadLocked(parent, &err);
    if (!dir) return err;
    int64_t child_ino = LookupEntryLocked(parent, name);
    if (child_ino < 0) return static_cast<int>(-child_ino);
    if (child_ino == 0) return ENOENT;
    child = LoadLocked(static_cast<uint64_t>(child_ino), &err);
    if (!child) return err;
    ++child->lookups;
    child->parent = parent;
  }
  std::lock_guard<std::mutex> lock(child->mu);
  *attr = child->attr;
  *ino = child->ino;
  return 0;
}

void PageFs::TouchParentLocked(Inode* parent, int nlink_delta, std::vector<PageMutation>* muts) {
  std::lock_guard<std::mutex> lock(parent->mu);
  int64_t now = NowNs();
  parent->attr.mtime_ns = parent->attr.ctime_ns = now;
  parent->attr.nlink =
      static_cast<uint32_t>(static_cast<int64_t>(parent->attr.nlink) + nlink_delta);
  muts->push_back({fs::InodeKey(parent->ino), fs::EncodeInodeAttr(parent->attr), false});
}

int PageFs::MakeNodeLocked(uint64_t parent_ino, const std::string& name, fs::InodeAttr attr,
                           fs::InodeAttr* out, uint64_t* out_ino) {
  if (int err = CheckWritable()) return err;
  if (!fs::ValidateName(name).ok()) return name.size() > fs::kMaxNameBytes ? ENAMETOOLONG : EINVAL;
  int err = 0;
  auto parent = LoadLocked(parent_ino, &err);
  if (!parent) return err;
  if (!parent->attr.IsDirectory()) return ENOTDIR;
  int64_t existing = LookupEntryLocked(parent_ino, name);
  if (existing < 0) return static_cast<int>(-existing);
  if (existing > 0) return EEXIST;
  uint64_t ino = superblock_.next_ino;
  fs::Superblock sb = superblock_;
  ++sb.next_ino;
  int64_t now = NowNs();
  attr.atime_ns = attr.mtime_ns = attr.ctime_ns = now;
  bool is_dir = attr.IsDirectory();
  attr.nlink = is_dir ? 2 : 1;
  std::vector<PageMutation> muts = {
      {fs::DirEntryKey(parent_ino, name), fs::EncodeDirEntry({ino, attr.type()}), false},
      {fs::InodeKey(ino), fs::EncodeInodeAttr(attr), false},
      {fs::SuperblockKey(), fs::EncodeSuperblock(sb), false}};
  fs::InodeAttr parent_before;
  {
    std::lock_guard<std::mutex> l(parent->mu);
    parent_before = parent->attr;
  }
  TouchParentLocked(parent.get(), is_dir ? 1 : 0, &muts);
  if (int e = Commit(muts)) {
    std::lock_guard<std::mutex> l(parent->mu);
    parent->attr = parent_before;
    return e;
  }
  superblock_ = sb;
  auto inode = std::make_shared<Inode>(ino);
  inode->attr = attr;
  inode->complete = is_dir;  // new and empty: every entry it will have goes through dirents_
  inode->stored_blocks = 0;  // a new inode number: no page of it exists anywhere
  inode->parent = parent_ino;
  inode->lookups = 1;
  inodes_[ino] = inode;
  dirents_[{parent_ino, name}] = ino;
  *out = attr;
  *out_ino = ino;
  return 0;
}

int PageFs::Create(uint64_t parent, const std::string& name, uint32_t mode, int flags, uint32_t uid,
                   uint32_t gid, fs::InodeAttr* attr, uint64_t* ino) {
  std::shared_ptr<Inode> existing_inode;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t existing = LookupEntryLocked(parent, name);
    if (existing < 0) return static_cast<int>(-existing);
    if (existing == 0) {
      fs::InodeAttr a;
      a.mode = S_IFREG | (mode & 07777);
      a.uid = uid;
      a.gid = gid;
      int err = MakeNodeLocked(parent, name, a, attr, ino);
      if (err == 0) ++inodes_[*ino]->opens;
      return err;
    }
    if (flags & O_EXCL) return EEXIST;
    int err = 0;
    existing_inode = LoadLocked(static_cast<uint64_t>(existing), &err);
    if (!existing_inode) return err;
    ++existing_inode->lookups;
  }
  // O_CREAT without O_EXCL on an existing file: open it.
  if (int err = Open(existing_inode->ino, flags)) return err;
  std::lock_guard<std::mutex> lock(existing_inode->mu);
  *attr = existing_inode->attr;
  *ino = existing_inode->ino;
  return 0;
}

int PageFs::Mknod(uint64_t parent, const std::string& name, uint32_t mode, uint64_t rdev,
                  uint32_t uid, uint32_t gid, fs::InodeAttr* attr, uint64_t* ino) {
  fs::InodeAttr a;
  a.mode = mode;
  a.rdev = rdev;
  a.uid = uid;
  a.gid = gid;
  if (a.type() == fs::FileType::kUnknown || a.IsDirectory() || a.IsSymlink()) return EINVAL;
  std::lock_guard<std::mutex> lock(mu_);
  return MakeNodeLocked(parent, name, a, attr, ino);
}

int PageFs::Mkdir(uint64_t parent, const std::string& name, uint32_t mode, uint32_t uid,
                  uint32_t gid, fs::InodeAttr* attr, uint64_t* ino) {
  fs::InodeAttr a;
  a.mode = S_IFDIR | (mode & 07777);
  a.uid = uid;
  a.gid = gid;
  std::lock_guard<std::mutex> lock(mu_);
  return MakeNodeLocked(parent, name, a, attr, ino);
}

int PageFs::Symlink(uint64_t parent, const std::string& name, const std::string& target,
                    uint32_t uid, uint32_t gid, fs::InodeAttr* attr, uint64_t* ino) {
  if (target.empty() || target.size() > 4095) return ENAMETOOLONG;
  fs::InodeAttr a;
  a.mode = S_IFLNK | 0777;
  a.uid = uid;
  a.gid = gid;
  a.size = target.size();
  a.symlink_target = target;
  std::lock_guard<std::mutex> lock(mu_);
  return MakeNodeLocked(parent, name, a, attr, ino);
}

int PageFs::Readlink(uint64_t ino, std::string* target) {
  fs::InodeAttr attr;
  if (int err = GetAttr(ino, &attr)) return err;
  if (!attr.IsSymlink()) return EINVAL;
  *target = attr.symlink_target;
  return 0;
}

int PageFs::Link(uint64_t ino, uint64_t new_parent, const std::string& new_name,
                 fs::InodeAttr* attr) {
  if (int err = CheckWritable()) return err;
  if (!fs::ValidateName(new_name).ok()) return EINVAL;
  std::lock_guard<std::mutex> lock(mu_);
  int err = 0;
  auto inode = LoadLocked(ino, &err);
  if (!inode) return err;
  auto parent = LoadLocked(new_parent, &err);
  if (!parent) return err;
  if (!parent->attr.IsDirectory()) return ENOTDIR;
  int64_t existing = LookupEntryLocked(new_parent, new_name);
  if (existing < 0) return static_cast<int>(-existing);
  if (existing > 0) return EEXIST;
  std::vector<PageMutation> muts;
  fs::InodeAttr updated;
  {
    std::lock_guard<std::mutex> l(inode->mu);
    if (inode->attr.IsDirectory()) return EPERM;
    updated = inode->attr;
    ++updated.nlink;
    updated.ctime_ns = NowNs();
    muts.push_back(
        {fs::DirEntryKey(new_parent, new_name), fs::EncodeDirEntry({ino, updated.type()}), false});
    muts.push_back({fs::InodeKey(ino), fs::EncodeInodeAttr(updated), false});
  }
  TouchParentLocked(parent.get(), 0, &muts);
  if (int e = Commit(muts)) return e;
  {
    std::lock_guard<std::mutex> l(inode->mu);
    inode->attr.nlink = updated.nlink;
    inode->attr.ctime_ns = updated.ctime_ns;
    *attr = inode->attr;
  }
  ++inode->lookups;
  dirents_[{new_parent, new_name}] = ino;
  return 0;
}

int PageFs::Unlink(uint64_t parent_ino, const std::string& name) {
  if (int err = CheckWritable()) return err;
  std::shared_ptr<Inode> parent, child;
  bool reclaim = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (int err = ResolveLocked(parent_ino, name, &parent, &child)) return err;
    std::vector<PageMutation> muts = {{fs::DirEntryKey(parent_ino, name), "", true}};
    {
      std::unique_lock<std::mutex> l(child->mu);
      WaitForFlush(child.get(), l);
      if (child->attr.IsDirectory()) return EISDIR;
      fs::InodeAttr updated = child->attr;
      updated.nlink = updated.nlink > 0 ? updated.nlink - 1 : 0;
      updated.ctime_ns = NowNs();
      // The last link and no open: a small file goes in this commit; a large one becomes an
      // orphan here and is deleted after it. Still open: it lives on (as an orphan) until its
      // last release.
      bool last = updated.nlink == 0 && child->opens == 0;
      reclaim = last && !AppendDeleteIfSmall(child->ino, updated.size, &muts);
      if (!last || reclaim) {
        muts.push_back({fs::InodeKey(child->ino), fs::EncodeInodeAttr(updated), false});
        if (updated.nlink == 0) muts.push_back({fs::OrphanKey(child->ino), "", false});
      }
      TouchParentLocked(parent.get(), 0, &muts);
      if (int e = Commit(muts)) return e;
      child->attr.nlink = updated.nlink;
      child->attr.ctime_ns = updated.ctime_ns;
      if (last) {
        MarkDeletedLocked(child.get());
        cache_.EraseFrom(child->ino, 0);
      }
    }
    dirents_[{parent_ino, name}] = 0;
  }
  // The name is gone (issued first: every later commit lands after it); the pages go now,
  // without holding the namespace lock.
  if (reclaim) ReclaimAfterUnlink(child->ino, fs::kMaxFileSize);
  return 0;
}

int PageFs::Release(uint64_t ino) {
  std::shared_ptr<Inode> inode;
  bool reclaim = false;
  uint64_t size = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    inode = FindLocked(ino);
    if (!inode) return 0;
    if (inode->opens > 0) --inode->opens;
    if (inode->opens > 0 || options_.read_only) return 0;
    std::unique_lock<std::mutex> l(inode->mu);
    // Only the last close of an unlinked file deletes anything, and only it waits for a flush of
    // the file in flight (whose pages the deletion must follow). Any other close returns at once:
    // waiting here would hold mu_, and with it every lookup, open and namespace change, for as
    // long as another thread issues a large flush. (mu_ is held throughout: no unlink, link or
    // open changes nlink or opens meanwhile.)
    if (inode->attr.nlink != 0 || inode->deleted || inode->attr.IsDirectory()) return 0;
    WaitForFlush(inode.get(), l);
    if (inode->attr.nlink == 0 && !inode->deleted) {
      // The last close of an unlinked file (an orphan since its last unlink): delete it now.
      MarkDeletedLocked(inode.get());
      reclaim = true;
      size = inode->attr.size;
    }
  }
  if (reclaim) {
    cache_.EraseFrom(ino, 0);
    ReclaimAfterUnlink(ino, size);
  }
  return 0;
}

int PageFs::Rmdir(uint64_t parent_ino, const std::string& name) {
  if (int err = CheckWritable()) return err;
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<Inode> parent, child;
  if (int err = ResolveLocked(parent_ino, name, &parent, &child)) return err;
  if (!child->attr.IsDirectory()) return ENOTDIR;
  fs::KeyRange range = fs::DirEntryRange(child->ino);
  auto page = store_->Scan(lsn_, range.start, range.end, 1);
  if (!page.ok()) return ErrnoFor(page.status());
  if (!page->entries.empty()) return ENOTEMPTY;
  std::vector<PageMutation> muts = {{fs::DirEntryKey(parent_ino, name), "", true},
                                    {fs::InodeKey(child->ino), "", true}};
  TouchParentLocked(parent.get(), -1, &muts);
  if (int e = Commit(muts)) return e;
  {
    std::lock_guard<std::mutex> l(child->mu);
    child->attr.nlink = 0;
    child->deleted = true;
  }
  dirents_[{parent_ino, name}] = 0;
  for (auto it = dirents_.lower_bound({child->ino, ""});
       it != dirents_.end() && it->first.first == child->ino;) {
    it = dirents_.erase(it);
  }
  return 0;
}

int PageFs::Rename(uint64_t parent_ino, const std::string& name, uint64_t new_parent_ino,
                   const std::string& new_name, unsigned int flags) {
  if (int err = CheckWritable()) return err;
  if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE)) return EINVAL;
  if (!fs::ValidateName(new_name).ok()) return EINVAL;
  std::unique_lock<std::mutex> lock(mu_);
  int err = 0;
  auto parent = LoadLocked(parent_ino, &err);
  if (!parent) return err;
  auto new_parent = LoadLocked(new_parent_ino, &err);
  if (!new_parent) return err;
  if (!new_parent->attr.IsDirectory()) return ENOTDIR;
  int64_t src_ino = LookupEntryLocked(parent_ino, name);
  if (src_ino < 0) return static_cast<int>(-src_ino);
  if (src_ino == 0) return ENOENT;
  int64_t dst_ino = LookupEntryLocked(new_parent_ino, new_name);
  if (dst_ino < 0) return static_cast<int>(-dst_ino);
  if (dst_ino == src_ino) return 0;
  if (dst_ino > 0 && (flags & RENAME_NOREPLACE)) return EEXIST;
  auto src = LoadLocked(static_cast<uint64_t>(src_ino), &err);
  if (!src) return err;
  bool src_dir = src->attr.IsDirectory();
  if (src_dir) {
    // A directory cannot move below itself.
    for (uint64_t p = new_parent_ino, hops = 0; hops < 4096; ++hops) {
      if (p == src->ino) return EINVAL;
      auto pi = FindLocked(p);
      if (!pi || pi->parent == 0 || pi->parent == p) break;
      p = pi->parent;
    }
  }
  std::vector<PageMutation> muts = {{fs::DirEntryKey(parent_ino, name), "", true},
                                    {fs::DirEntryKey(new_parent_ino, new_name),
                                     fs::EncodeDirEntry({src->ino, src->attr.type()}), false}};
  std::shared_ptr<Inode> dst;
  fs::InodeAttr dst_updated;
  bool last_dst = false;     // a replaced file whose last link and open are gone
  bool reclaim_dst = false;  // ... too large to delete in the rename's commit
  int dst_parent_nlink = 0;
  if (dst_ino > 0) {
    dst = LoadLocked(static_cast<uint64_t>(dst_ino), &err);
    if (!dst) return err;
    bool dst_dir = dst->attr.IsDirectory();
    if (src_dir && !dst_dir) return ENOTDIR;
    if (!src_dir && dst_dir) return EISDIR;
    if (dst_dir) {
      fs::KeyRange range = fs::DirEntryRange(dst->ino);
      auto page = store_->Scan(lsn_, range.start, range.end, 1);
      if (!page.ok()) return ErrnoFor(page.status());
      if (!page->entries.empty()) return ENOTEMPTY;
      muts.push_back({fs::InodeKey(dst->ino), "", true});
      dst_parent_nlink = -1;
    } else {
      // The target loses a link (and its ctime changes, POSIX): with other links it survives;
      // with none left it becomes an orphan in this commit and is deleted after it.
      std::unique_lock<std::mutex> l(dst->mu);
      WaitForFlush(dst.get(), l);
      dst_updated = dst->attr;
      dst_updated.nlink = dst_updated.nlink > 0 ? dst_updated.nlink - 1 : 0;
      dst_updated.ctime_ns = NowNs();
      last_dst = dst_updated.nlink == 0 && dst->opens == 0;
      reclaim_dst = last_dst && !AppendDeleteIfSmall(dst->ino, dst_updated.size, &muts);
      if (!last_dst || reclaim_dst) {
        muts.push_back({fs::InodeKey(dst->ino), fs::EncodeInodeAttr(dst_updated), false});
        if (dst_updated.nlink == 0) muts.push_back({fs::OrphanKey(dst->ino), "", false});
      }
    }
  }
  fs::InodeAttr src_attr;
  {
    std::lock_guard<std::mutex> l(src->mu);
    src_attr = src->attr;
    src_attr.ctime_ns = NowNs();
    muts.push_back({fs::InodeKey(src->ino), fs::EncodeInodeAttr(src_attr), false});
  }
  int moved_dir = src_dir && parent_ino != new_parent_ino ? 1 : 0;
  if (parent_ino == new_parent_ino) {
    TouchParentLocked(parent.get(), dst_parent_nlink, &muts);
  } else {
    TouchParentLocked(parent.get(), -moved_dir, &muts);
    TouchParentLocked(new_parent.get(), moved_dir + dst_parent_nlink, &muts);
  }
  if (int e = Commit(muts)) return e;
  {
    std::lock_guard<std::mutex> l(src->mu);
    src->attr.ctime_ns = src_attr.ctime_ns;
  }
  if (src_dir) src->parent = new_parent_ino;
  if (dst) {
    std::lock_guard<std::mutex> l(dst->mu);
    if (dst->attr.IsDirectory()) {
      dst->attr.nlink = 0;
      dst->deleted = true;
    } else {
      dst->attr.nlink = dst_updated.nlink;
      dst->attr.ctime_ns = dst_updated.ctime_ns;
      if (last_dst) MarkDeletedLocked(dst.get());
    }
  }
  if (last_dst) cache_.EraseFrom(dst->ino, 0);
  dirents_[{parent_ino, name}] = 0;
  dirents_[{new_parent_ino, new_name}] = src->ino;
  lock.unlock();
  // The rename is issued; the replaced file's pages go now (after it), without the namespace
  // lock.
  if (reclaim_dst) ReclaimAfterUnlink(dst->ino, fs::kMaxFileSize);
  return 0;
}

bool PageFs::ListFromMemoryLocked(uint64_t ino, std::vector<DirListing>* out) {
  const size_t first = out->size();
  for (auto it = dirents_.lower_bound({ino, std::string()});
       it != dirents_.end() && it->first.first == ino; ++it) {
    if (it->second == 0) continue;  // a known-absent name
    auto child = FindLocked(it->second);
    if (!child) {
      out->resize(first);  // its type is unknown here: the store lists it
      return false;
    }
    uint8_t dtype;
    {
      std::lock_guard<std::mutex> lock(child->mu);
      dtype = fs::DirentType(child->attr.type());
    }
    out->push_back({it->first.second, it->second, dtype});
  }
  return true;
}

int PageFs::ReadDir(uint64_t ino, std::vector<DirListing>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  int err = 0;
  auto dir = LoadLocked(ino, &err);
  if (!dir) return err;
  if (!dir->attr.IsDirectory()) return ENOTDIR;
  out->clear();
  out->push_back({".", ino, DT_DIR});
  out->push_back({"..", dir->parent ? dir->parent : ino, DT_DIR});
  if (dir->complete && ListFromMemoryLocked(ino, out)) return 0;
  err = ScanDirLocked(ino, 0, out);
  if (err != 0) return err;
  PreloadEntriesLocked(ino, *out);
  // dirents_ now holds every entry (the listing's, and this mount's newer ones, which it keeps:
  // mu_ is held throughout), as after ListWholeDirLocked: the next opendir lists from memory
  // instead of scanning again (PostgreSQL's start opens each database directory ~3 times:
  // temporary files, unlogged relations before and after redo), and missing names need no
  // round trip.
  if (out->size() - 2 <= kMaxCompleteListing) {
    dir->complete = true;
    dir->listing_tried = true;
  }
  return 0;
}

}  // namespace pgbranch::pagefs
