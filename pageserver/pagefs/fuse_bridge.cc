#include "pageserver/pagefs/fuse_bridge.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/hop_trace.h"
#include "pageserver/pagefs/access_check.h"

namespace pgbranch::pagefs {
namespace {

FuseContext* Ctx(fuse_req_t req) { return static_cast<FuseContext*>(fuse_req_userdata(req)); }

// Measures one operation for the metrics: from the request's arrival to pagefs's reply.
// Copyable, so that whoever replies (for fsync, possibly another thread) can record it.
class OpTimer {
 public:
  OpTimer(fuse_req_t req, const char* op)
      : metrics_(Ctx(req)->metrics), op_(op), start_(std::chrono::steady_clock::now()) {
    HopTrace::Mark("fuse_op_in", 0, op);
    FuseContext* ctx = Ctx(req);
    if (ctx->after_init_pending.load(std::memory_order_acquire) &&
        ctx->after_init_pending.exchange(false)) {
      ctx->after_init();
    }
  }
  // The operation is handled and about to be answered with `err`.
  void Done(int err) const {
    Handled(err);
    Replied(err);
  }
  // The handler is done (the hop trace's mark), whoever replies.
  void Handled(int err) const { HopTrace::Mark("fuse_op_done", static_cast<uint64_t>(err), op_); }
  // The reply `err` is sent: the latency metric.
  void Replied(int err) const {
    if (metrics_ == nullptr) return;
    metrics_->ObserveOp(
        op_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(), err);
  }

 private:
  PageFsMetrics* metrics_;
  const char* op_;
  std::chrono::steady_clock::time_point start_;
};

void ToStat(uint64_t ino, const fs::InodeAttr& a, struct stat* st) {
  memset(st, 0, sizeof(*st));
  st->st_ino = ino;
  st->st_mode = a.mode;
  st->st_nlink = a.nlink;
  st->st_uid = a.uid;
  st->st_gid = a.gid;
  st->st_rdev = a.rdev;
  st->st_size = static_cast<off_t>(a.size);
  st->st_blksize = fs::kPageSize;
  st->st_blocks = static_cast<blkcnt_t>((a.size + 511) / 512);
  st->st_atim = {a.atime_ns / 1'000'000'000, a.atime_ns % 1'000'000'000};
  st->st_mtim = {a.mtime_ns / 1'000'000'000, a.mtime_ns % 1'000'000'000};
  st->st_ctim = {a.ctime_ns / 1'000'000'000, a.ctime_ns % 1'000'000'000};
}

// The caller of a request, for pagefs's own permission checks (access_check.h: the mount has no
// default_permissions). Its supplementary groups are read only if a check needs them.
AccessCheck Caller(fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  return AccessCheck(c->uid, c->gid, [req] {
    std::vector<gid_t> groups(32);
    int n = fuse_req_getgroups(req, static_cast<int>(groups.size()), groups.data());
    if (n > static_cast<int>(groups.size())) {
      groups.resize(static_cast<size_t>(n));
      n = fuse_req_getgroups(req, n, groups.data());
    }
    groups.resize(static_cast<size_t>(std::clamp(n, 0, static_cast<int>(groups.size()))));
    return groups;
  });
}

// 0 if the caller may `mask` (R_OK, W_OK, X_OK) on inode `ino`; an errno otherwise.
int Check(fuse_req_t req, AccessCheck& who, uint64_t ino, int mask) {
  fs::InodeAttr attr;
  if (int err = Ctx(req)->fs->GetAttr(ino, &attr)) return err;
  return who.May(attr, mask);
}

// Whether the caller may add an entry to directory `parent` (create, mknod, mkdir, symlink,
// link): write and search on it.
int CheckAddEntry(fuse_req_t req, uint64_t parent) {
  AccessCheck who = Caller(req);
  return Check(req, who, parent, W_OK | X_OK);
}

// The attributes of `name` in `parent` without counting a kernel lookup. ENOENT if absent.
int Peek(fuse_req_t req, uint64_t parent, const char* name, fs::InodeAttr* attr) {
  uint64_t ino = 0;
  if (int err = Ctx(req)->fs->Lookup(parent, name, attr, &ino)) return err;
  Ctx(req)->fs->Forget(ino, 1);
  return 0;
}

// Whether the caller may remove `name` from `parent` (unlink, rmdir): write and search on the
// directory, and the sticky bit's rule (which needs the entry's owner).
int CheckDelete(fuse_req_t req, AccessCheck& who, uint64_t parent, const char* name) {
  fs::InodeAttr dir, child;
  if (int err = Ctx(req)->fs->GetAttr(parent, &dir)) return err;
  if (int err = who.May(dir, W_OK | X_OK)) return err;
  if (!(dir.mode & S_ISVTX) || who.privileged()) return 0;
  if (int err = Peek(req, parent, name, &child)) return err;
  return who.StickyAllows(dir, child);
}

// Tells WalFiles about the entry `name` of `parent` the kernel is about to learn.
void NoteEntry(fuse_req_t req, uint64_t parent, const char* name, uint64_t ino,
               const fs::InodeAttr& attr) {
  if (Ctx(req)->TracksWal()) Ctx(req)->wal_files.Note(parent, name, ino, S_ISDIR(attr.mode));
  if (Ctx(req)->volatile_files != nullptr) {
    Ctx(req)->volatile_files->Note(parent, name, ino, S_ISDIR(attr.mode));
  }
}

// Tells the trackers that the kernel forgot `ino`.
void ForgetEntry(fuse_req_t req, uint64_t ino) {
  if (Ctx(req)->TracksWal()) Ctx(req)->wal_files.Forget(ino);
  if (Ctx(req)->volatile_files != nullptr) Ctx(req)->volatile_files->Forget(ino);
}

void ReplyEntry(fuse_req_t req, uint64_t ino, const fs::InodeAttr& attr) {
  fuse_entry_param e;
  memset(&e, 0, sizeof(e));
  e.ino = ino;
  e.generation = 1;
  e.attr_timeout = Ctx(req)->entry_timeout;
  e.entry_timeout = Ctx(req)->entry_timeout;
  ToStat(ino, attr, &e.attr);
  fuse_reply_entry(req, &e);
}

void OpInit(void* userdata, fuse_conn_info* conn) {
  auto* ctx = static_cast<FuseContext*>(userdata);
  // Big writes and reads; the kernel may cache pages across opens (single writer).
  conn->max_write = 1 << 20;
  conn->max_readahead = 1 << 20;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  // Read-ahead and posix_fadvise(WILLNEED) (PostgreSQL's prefetch: recovery_prefetch,
  // effective_io_concurrency) reach us as background reads. The kernel keeps at most
  // max_background of them pending and drops read-ahead past congestion_threshold (defaults 12
  // and 9); let more wait here, where concurrent misses share one Read RPC (ReadBatcher).
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  // The kernel's writeback cache: write(2) is a copy into the page cache, not a round trip per
  // call (PostgreSQL writes 8 KiB at a time), and the kernel keeps the size and times itself, so
  // an lseek(SEEK_END) after a write needs no GETATTR. The data reaches pagefs as large WRITEs at
  // writeback, close and fsync; fsync (and O_DSYNC, which the kernel turns into an fsync of the
  // range) first writes back and waits for the WRITEs, then sends FSYNC, which commits and waits
  // for durability as before. Nothing that an fsync acknowledged changes: unsynced data could be
  // lost in a crash before, and still can. Times come back as SETATTR (kept at ns resolution).
  // The price: with it the kernel keeps a regular file's ctime itself and sends it (a SETATTR
  // round trip) right after each unlink, rename or link of the file.
  if (ctx->allow_writeback_cache && !ctx->fs->read_only() &&
      (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    conn->time_gran = 1;
    ctx->writeback_cache = true;
  } else {
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  }
  // Every change passes through this mount, so the kernel's cached pages never go stale: do not
  // let an mtime change (any write) drop the whole file from the page cache.
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  OpTimer t(req, "lookup");
  fs::InodeAttr attr;
  uint64_t ino = 0;
  AccessCheck who = Caller(req);
  int err = Check(req, who, parent, X_OK);
  if (err == 0) err = Ctx(req)->fs->Lookup(parent, name, &attr, &ino);
  t.Done(err == ENOENT ? 0 : err);
  if (err == ENOENT) {
    // A negative entry the kernel may cache: only this mount changes the namespace.
    fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    e.entry_timeout = Ctx(req)->entry_timeout;
    fuse_reply_entry(req, &e);
    return;
  }
  if (err) {
    fuse_reply_err(req, err);
    return;
  }
  NoteEntry(req, parent, name, ino, attr);
  ReplyEntry(req, ino, attr);
}

void OpForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  OpTimer t(req, "forget");
  Ctx(req)->fs->Forget(ino, nlookup);
  ForgetEntry(req, ino);
  t.Done(0);
  fuse_reply_none(req);
}

void OpForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) {
    Ctx(req)->fs->Forget(forgets[i].ino, forgets[i].nlookup);
    ForgetEntry(req, forgets[i].ino);
  }
  fuse_reply_none(req);
}

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  OpTimer t(req, "getattr");
  fs::InodeAttr attr;
  int err = Ctx(req)->fs->GetAttr(ino, &attr);
  t.Done(err);
  if (err) {
    fuse_reply_err(req, err);
    return;
  }
  struct stat st;
  ToStat(ino, attr, &st);
  fuse_reply_attr(req, &st, Ctx(req)->entry_timeout);
}

int64_t TimespecNs(const timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return TimespecNs(ts);
}

// Whether the caller may make the changes in `to_set` to inode `ino` (the rules of chmod, chown,
// truncate and utimes; access_check.h). Times the caller may not set are dropped from `to_set`
// rather than refused: the kernel writes back its own cached times with the credentials of any
// process that caused it (an unlink or rename by a writer of the directory), and a refusal would
// surface as a write error on the file.
int CheckSetattr(fuse_req_t req, fuse_ino_t ino, const struct stat& attr, int* to_set,
                 fuse_file_info* fi) {
  AccessCheck who = Caller(req);
  fs::InodeAttr cur;
  if (int err = Ctx(req)->fs->GetAttr(ino, &cur)) return err;
  if (*to_set & FUSE_SET_ATTR_MODE) {
    if (int err = who.MayChmod(cur)) return err;
  }
  if (*to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
    if (*to_set & FUSE_SET_ATTR_UID) uid = attr.st_uid;
    if (*to_set & FUSE_SET_ATTR_GID) gid = attr.st_gid;
    if (int err = who.MayChown(cur, uid, gid)) return err;
  }
  // ftruncate comes with the handle, which the kernel has checked is open for writing.
  if ((*to_set & FUSE_SET_ATTR_SIZE) && fi == nullptr) {
    if (int err = who.May(cur, W_OK)) return err;
  }
  constexpr int kTimes = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_CTIME |
                         FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW;
  if ((*to_set & kTimes) && !who.MaySetTimes(cur)) {
    if ((*to_set & ~kTimes) == 0 && (*to_set & (FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)))
      return EACCES;  // utimes(NULL) by someone who may not write: refused, as the kernel does
    *to_set &= ~kTimes;
  }
  return 0;
}

void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  OpTimer t(req, "setattr");
  const int asked = to_set;
  if (int err = CheckSetattr(req, ino, *attr, &to_set, fi)) {
    t.Done(err);
    fuse_reply_err(req, err);
    return;
  }
  fs::InodeAttr in;
  int flags = 0;
  if (to_set & FUSE_SET_ATTR_MODE) flags |= PageFs::kSetMode, in.mode = attr->st_mode;
  if (to_set & FUSE_SET_ATTR_UID) flags |= PageFs::kSetUid, in.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) flags |= PageFs::kSetGid, in.gid = attr->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) flags |= PageFs::kSetSize, in.size = attr->st_size;
  if (to_set & FUSE_SET_ATTR_ATIME)
    flags |= PageFs::kSetAtime, in.atime_ns = TimespecNs(attr->st_atim);
  if (to_set & FUSE_SET_ATTR_MTIME)
    flags |= PageFs::kSetMtime, in.mtime_ns = TimespecNs(attr->st_mtim);
  if (to_set & FUSE_SET_ATTR_CTIME)
    flags |= PageFs::kSetCtime, in.ctime_ns = TimespecNs(attr->st_ctim);
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) flags |= PageFs::kSetAtime, in.atime_ns = NowNs();
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) flags |= PageFs::kSetMtime, in.mtime_ns = NowNs();
  fs::InodeAttr out;
  int err = (asked != 0 && to_set == 0)
                ? Ctx(req)->fs->GetAttr(ino, &out)  // nothing the caller may change: a no-op
                : Ctx(req)->fs->SetAttr(ino, flags, in, &out);
  t.Done(err);
  if (err) {
    fuse_reply_err(req, err);
    return;
  }
  struct stat st;
  ToStat(ino, out, &st);
  fuse_reply_attr(req, &st, Ctx(req)->entry_timeout);
}

void OpReadlink(fuse_req_t req, fuse_ino_t ino) {
  std::string target;
  int err = Ctx(req)->fs->Readlink(ino, &target);
  if (err) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_readlink(req, target.c_str());
}

void OpMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  OpTimer t(req, "mknod");
  const fuse_ctx* c = fuse_req_ctx(req);
  fs::InodeAttr attr;
  uint64_t ino;
  int err = CheckAddEntry(req, parent);
  if (err == 0) {
    err = Ctx(req)->fs->Mknod(parent, name, mode & ~c->umask, rdev, c->uid, c->gid, &attr, &ino);
  }
  t.Done(err);
  if (err) {
    fuse_reply_err(req, err);
    return;
  }
  NoteEntry(req, parent, name, ino, attr);
  ReplyEntry(req, ino, attr);
}

void OpMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  OpTimer t(req, "mkdir");
  const fuse_ctx* c = fuse_req_ctx(req);
  fs::InodeAttr attr;
  uint64_t ino;
  int err = CheckAddEntry(req, parent);
  if (err == 0) {
    err = Ctx(req)->fs->Mkdir(parent, name, mode & ~c->umask, c->uid, c->gid, &attr, &ino);
  }
  t.Done(err);
  if (err) {
    fuse_reply_err(req, err);
    return;
  }
  NoteEntry(req, parent, name, ino, attr);
  ReplyEntry(req, ino, attr);
}

void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  OpTimer t(req, "unlink");
  AccessCheck who = Caller(req);
  int err = CheckDelete(req, who, parent, name);
  if (err == 0) err = Ctx(req)->fs->Unlink(parent, name);
  t.Done(err);
  fuse_reply_err(req, err);
}

void OpRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  OpTimer t(req, "rmdir");
  AccessCheck who = Caller(req);
  int err = CheckDelete(req, who, parent, name);
  if (err == 0) err = Ctx(req)->fs->Rmdir(parent, name);
  t.Done(err);
  fuse_reply_err(req, err);
}

void OpSymlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  OpTimer t(req, "symlink");
  const fuse_ctx* c = fuse_req_ctx(req);
  fs::InodeAttr attr;
  uint64_t ino;
  int err = CheckAddEntry(req, parent);
  if (err == 0) err = Ctx(req)->fs->Symlink(parent, name, link, c->uid, c->gid, &attr, &ino);
  t.Done(err);
  if (err) {
    fuse_reply_err(req, err);
    return;
  }
  ReplyEntry(req, ino, attr);
}

// Whether the caller may rename `name` in `parent` to `newname` in `newparent`: write and search
// on both directories, the sticky bit's rule for the entry and for the one it replaces, and write
// on a directory that moves to another parent (its ".." changes).
int CheckRename(fuse_req_t req, AccessCheck& who, uint64_t parent, const char* name,
                uint64_t newparent, const char* newname) {
  fs::InodeAttr dir, newdir, child, target;
  if (int err = Ctx(req)->fs->GetAttr(parent, &dir)) return err;
  if (int err = who.May(dir, W_OK | X_OK)) return err;
  if (newparent != parent) {
    if (int err = Ctx(req)->fs->GetAttr(newparent, &newdir)) return err;
    if (int err = who.May(newdir, W_OK | X_OK)) return err;
  } else {
    newdir = dir;
  }
  bool sticky = ((dir.mode | newdir.mode) & S_ISVTX) && !who.privileged();
  if (!sticky && newparent == parent) return 0;
  if (int err = Peek(req, parent, name, &child)) return err;
  if (int err = who.StickyAllows(dir, child)) return err;
  if (newparent != parent && child.IsDirectory()) {
    if (int err = who.May(child, W_OK)) return err;
  }
  int err = Peek(req, newparent, newname, &target);
  if (err == ENOENT) return 0;
  if (err) return err;
  return who.StickyAllows(newdir, target);
}

void OpRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
              const char* newname, unsigned int flags) {
  OpTimer t(req, "rename");
  AccessCheck who = Caller(req);
  int err = CheckRename(req, who, parent, name, newparent, newname);
  if (err == 0) err = Ctx(req)->fs->Rename(parent, name, newparent, newname, flags);
  // The kernel moves its entry without a LOOKUP: a volatile file's path (or a directory on its
  // way, e.g. initdb's data directory renamed into place) is noted here, before the reply (after
  // it, `req` is gone).
  VolatileFiles* v = Ctx(req)->volatile_files;
  if (err == 0 && v != nullptr && v->MayMatch(newname)) {
    fs::InodeAttr attr;
    uint64_t ino = 0;
    if (Ctx(req)->fs->Lookup(newparent, newname, &attr, &ino) == 0) {
      Ctx(req)->fs->Forget(ino, 1);
      v->Note(newparent, newname, ino, S_ISDIR(attr.mode));
    }
  }
  t.Done(err);
  fuse_reply_err(req, err);
}

void OpLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  OpTimer t(req, "link");
  fs::InodeAttr attr;
  int err = CheckAddEntry(req, newparent);
  if (err == 0) err = Ctx(req)->fs->Link(ino, newparent, newname, &attr);
  t.Done(err);
  if (err) {
    fuse_reply_err(req, err);
    return;
  }
  NoteEntry(req, newparent, newname, ino, attr);
  ReplyEntry(req, ino, attr);
}

// fi->fh carries whether writes through this handle are synchronous (O_DSYNC / O_SYNC). With the
// writeback cache the kernel makes such a write durable itself (an fsync of the range after the
// copy), and a WRITE at writeback may come through any handle: none is synchronous then. A
// direct-I/O handle's write(2) is its WRITE, and the kernel does not fsync after it: pagefs
// makes it durable before replying, as without the writeback cache.
uint64_t SyncHandle(fuse_req_t req, int flags, bool direct_io) {
  return (direct_io || !Ctx(req)->writeback_cache) && (flags & (O_DSYNC | O_SYNC)) ? 1 : 0;
}

// Sets the open reply's caching: a WAL file (WalFiles) bypasses the page cache.
void SetCaching(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  bool direct = Ctx(req)->wal_direct_io && Ctx(req)->wal_files.Contains(ino);
  fi->direct_io = direct ? 1 : 0;
  fi->keep_cache = direct ? 0 : 1;  // single writer: the kernel's cached pages stay valid
  fi->fh = SyncHandle(req, fi->flags, direct);
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  OpTimer t(req, "open");
  AccessCheck who = Caller(req);
  int mask = 0;
  if ((fi->flags & O_ACCMODE) != O_WRONLY) mask |= R_OK;
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) mask |= W_OK;
  // execve opens the file read-only with the kernel's __FMODE_EXEC flag: it needs execute
  // permission, not read (the kernel itself only checks that some execute bit is set).
  constexpr int kFmodeExec = 040;
  if (fi->flags & kFmodeExec) mask = X_OK;
  int err = Check(req, who, ino, mask);
  if (err == 0) err = Ctx(req)->fs->Open(ino, fi->flags);
  t.Done(err);
  if (err) {
    fuse_reply_err(req, err);
    return;
  }
  SetCaching(req, ino, fi);
  fuse_reply_open(req, fi);
}

void OpCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) {
  OpTimer t(req, "create");
  const fuse_ctx* c = fuse_req_ctx(req);
  fs::InodeAttr attr;
  uint64_t ino;
  int err = CheckAddEntry(req, parent);
  if (err == 0) {
    err = Ctx(req)->fs->Create(parent, name, mode & ~c->umask, fi->flags, c->uid, c->gid, &attr,
                               &ino);
  }
  t.Done(err);
  if (err) {
    fuse_reply_err(req, err);
    return;
  }
  NoteEntry(req, parent, name, ino, attr);
  SetCaching(req, ino, fi);
  fuse_entry_param e;
  memset(&e, 0, sizeof(e));
  e.ino = ino;
  e.generation = 1;
  e.attr_timeout = e.entry_timeout = Ctx(req)->entry_timeout;
  ToStat(ino, attr, &e.attr);
  fuse_reply_create(req, &e, fi);
}

void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  OpTimer t(req, "read");
  // Which pages (scripts/hop-trace.py --reads): inode, page count and first 8 KiB block.
  HopTrace::Mark("read_at", (uint64_t{ino} << 40) | (uint64_t{(size + 8191) / 8192} << 28) |
                                (static_cast<uint64_t>(off) / 8192 & ((1u << 28) - 1)));
  if (Ctx(req)->metrics != nullptr) Ctx(req)->metrics->ObserveReadRequest(size);
  std::string data;
  // A WAL segment is read front to back by crash recovery: pagefs reads it far ahead.
  bool stream = Ctx(req)->TracksWal() && Ctx(req)->wal_files.Contains(ino);
  if (Ctx(req)->startup_reads != nullptr && !stream) {
    Ctx(req)->startup_reads->Record(ino, static_cast<uint64_t>(off), size);
  }
  int err = Ctx(req)->fs->Read(ino, static_cast<uint64_t>(off), size, &data, stream);
  t.Done(err);
  if (err) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_buf(req, data.data(), data.size());
}

void OpWrite(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
             fuse_file_info* fi) {
  OpTimer t(req, "write");
  // A WAL WRITE is about to be fdatasynced: its commit is issued now (FuseContext).
  bool issue = Ctx(req)->wal_commit_at_write && Ctx(req)->wal_files.Contains(ino);
  int err = Ctx(req)->fs->Write(ino, static_cast<uint64_t>(off), std::string_view(buf, size),
                                fi->fh != 0, issue);
  t.Done(err);
  if (err) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_write(req, size);
}

void OpRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  OpTimer t(req, "release");
  Ctx(req)->fs->Release(ino);
  t.Done(0);
  fuse_reply_err(req, 0);
}

// An fsync that must wait for its commit is answered later (PageFs::kReplyLater), by the thread
// that learns the outcome -- usually the one that reads the pageserver's answer -- so this worker
// thread goes back to the session at once instead of blocking until the commit is durable and
// then being woken only to reply (a thread wakeup and a futex round fewer per WAL commit, and
// no worker held per fsync in flight). fuse_reply_err may be called from any thread (libfuse's
// low-level API); `req` is not touched after its reply. The latency metric ends at the reply
// (recorded after it, off the reply's path). PageFs::FlushAll waits for the replies left
// before main ends the session, and PageFs's destructor answers any left with EIO.
void OpFsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info*) {
  const OpTimer t(req, "fsync");
  if (Ctx(req)->volatile_files != nullptr && Ctx(req)->volatile_files->Contains(ino)) {
    int err = Ctx(req)->fs->FsyncWithoutWait(ino, datasync != 0);
    t.Done(err);
    fuse_reply_err(req, err);
    return;
  }
  // `t` by value: the reply may run after OpFsync returned.
  int err = Ctx(req)->fs->Fsync(
      ino,
      [req, t](int reply_err) {
        t.Handled(reply_err);  // the hop trace's end of the fsync: its reply
        fuse_reply_err(req, reply_err);
        t.Replied(reply_err);
      },
      datasync != 0);
  if (err == PageFs::kReplyLater) {
    HopTrace::Mark("fsync_reply_later");
    return;
  }
  t.Done(err);
  fuse_reply_err(req, err);
}

// A directory handle holds the listing taken at opendir.
void OpOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  OpTimer t(req, "opendir");
  AccessCheck who = Caller(req);
  if (int err = Check(req, who, ino, R_OK)) {
    t.Done(err);
    fuse_reply_err(req, err);
    return;
  }
  auto* listing = new std::vector<DirListing>();
  int err = Ctx(req)->fs->ReadDir(ino, listing);
  t.Done(err);
  if (err) {
    delete listing;
    fuse_reply_err(req, err);
    return;
  }
  fi->fh = reinterpret_cast<uint64_t>(listing);
  fuse_reply_open(req, fi);
}

void OpReaddir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  auto* listing = reinterpret_cast<std::vector<DirListing>*>(fi->fh);
  std::string buf(size, '\0');
  size_t used = 0;
  for (size_t i = static_cast<size_t>(off); i < listing->size(); ++i) {
    const DirListing& e = (*listing)[i];
    struct stat st;
    memset(&st, 0, sizeof(st));
    st.st_ino = e.ino;
    st.st_mode = static_cast<mode_t>(e.dtype) << 12;
    size_t n = fuse_add_direntry(req, buf.data() + used, size - used, e.name.c_str(), &st,
                                 static_cast<off_t>(i + 1));
    if (n > size - used) break;
    used += n;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void OpReleasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<std::vector<DirListing>*>(fi->fh);
  fuse_reply_err(req, 0);
}

void OpFsyncdir(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  OpTimer t(req, "fsyncdir");
  int err = Ctx(req)->fs->FsyncDir(ino);
  t.Done(err);
  fuse_reply_err(req, err);  // never ENOSYS or EOPNOTSUPP (DESIGN.md section 3)
}

// access(2) and chdir(2): the kernel asks, as the mount has no default_permissions.
void OpAccess(fuse_req_t req, fuse_ino_t ino, int mask) {
  OpTimer t(req, "access");
  AccessCheck who = Caller(req);
  int err = Check(req, who, ino, mask);
  t.Done(err);
  fuse_reply_err(req, err);
}

void OpStatfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs st;
  Ctx(req)->fs->StatFs(&st);
  fuse_reply_statfs(req, &st);
}

void OpFallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                 fuse_file_info*) {
  OpTimer t(req, "fallocate");
  int err = Ctx(req)->fs->Fallocate(ino, mode, static_cast<uint64_t>(offset),
                                    static_cast<uint64_t>(length));
  t.Done(err);
  fuse_reply_err(req, err);
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops;
  memset(&ops, 0, sizeof(ops));
  ops.init = OpInit;
  ops.lookup = OpLookup;
  ops.forget = OpForget;
  ops.forget_multi = OpForgetMulti;
  ops.getattr = OpGetattr;
  ops.setattr = OpSetattr;
  ops.readlink = OpReadlink;
  ops.mknod = OpMknod;
  ops.mkdir = OpMkdir;
  ops.unlink = OpUnlink;
  ops.rmdir = OpRmdir;
  ops.symlink = OpSymlink;
  ops.rename = OpRename;
  ops.link = OpLink;
  ops.open = OpOpen;
  ops.read = OpRead;
  ops.write = OpWrite;
  // No flush: close(2) promises no durability (fsync does). The first FLUSH answers ENOSYS and the
  // kernel sends none after it, saving a round trip per close.
  ops.release = OpRelease;
  ops.fsync = OpFsync;
  ops.opendir = OpOpendir;
  ops.readdir = OpReaddir;
  ops.releasedir = OpReleasedir;
  ops.fsyncdir = OpFsyncdir;
  ops.statfs = OpStatfs;
  ops.access = OpAccess;
  ops.create = OpCreate;
  ops.fallocate = OpFallocate;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops* PageFsOperations() {
  static const fuse_lowlevel_ops ops = MakeOps();
  return &ops;
}

}  // namespace pgbranch::pagefs
