#include "tests/integration/pagefs_model/lockstep_runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pgbranch::pagefs_model {
namespace {

constexpr uint64_t kPage = 8192;
constexpr uint64_t kMaxFileBytes = 6ull << 20;  // keeps the whole-tree comparisons quick
constexpr size_t kMaxHandles = 8;

// Names are drawn from small pools so that operations collide: the same path is a file, then a
// directory, a symlink, missing; parents may be files (ENOTDIR) or missing (ENOENT).
const char* const kParents[] = {"", "d0/", "d1/", "d0/d2/", "d1/d0/"};
const char* const kNames[] = {"f0", "f1", "f2", "f3", "f4", "d0", "d1", "d2", "s0", "s1"};
const char* const kSymlinkTargets[] = {"f0", "../f1", "d0", "nowhere", "s0", "d0/f2", "f3"};

OpResult Sys(int64_t ret) {
  OpResult r;
  r.ret = ret < 0 ? -1 : ret;
  r.err = ret < 0 ? errno : 0;
  return r;
}

std::string TypeName(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "reg";
    case S_IFDIR:
      return "dir";
    case S_IFLNK:
      return "lnk";
    default:
      return absl::StrFormat("type%o", mode & S_IFMT);
  }
}

// The stat fields both filesystems must agree on. Directory sizes are filesystem-specific
// (ext4 reports 4096), so only regular files and symlinks report theirs.
std::string StatFields(const struct stat& st, bool dir_nlink = true) {
  std::string nlink = S_ISDIR(st.st_mode) && !dir_nlink ? "?" : absl::StrCat(st.st_nlink);
  std::string s = absl::StrFormat("%s mode=%04o nlink=%s uid=%d gid=%d", TypeName(st.st_mode),
                                  st.st_mode & 07777, nlink, static_cast<int>(st.st_uid),
                                  static_cast<int>(st.st_gid));
  if (!S_ISDIR(st.st_mode)) absl::StrAppend(&s, " size=", st.st_size);
  return s;
}

std::string FlagsName(int flags) {
  std::string s = (flags & O_ACCMODE) == O_RDONLY   ? "O_RDONLY"
                  : (flags & O_ACCMODE) == O_WRONLY ? "O_WRONLY"
                                                    : "O_RDWR";
  if (flags & O_CREAT) s += "|O_CREAT";
  if (flags & O_EXCL) s += "|O_EXCL";
  if (flags & O_TRUNC) s += "|O_TRUNC";
  if (flags & O_APPEND) s += "|O_APPEND";
  return s;
}

// Reads a whole file through `fd` with pread; false on an error.
bool ReadWhole(int fd, std::string* out) {
  out->clear();
  char buf[1 << 16];
  off_t off = 0;
  while (true) {
    ssize_t n = pread(fd, buf, sizeof(buf), off);
    if (n < 0) return false;
    if (n == 0) return true;
    out->append(buf, static_cast<size_t>(n));
    off += n;
  }
}

// Sorted "name:type" lines of a directory, without "." and "..".
OpResult Listing(const std::string& dir) {
  OpResult r;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    r.ret = -1;
    r.err = errno;
    return r;
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    names.push_back(absl::StrCat(name, ":", static_cast<int>(e->d_type)));
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) absl::StrAppend(&r.data, n, " ");
  return r;
}

std::string FirstDifference(const std::string& a, const std::string& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return absl::StrCat("sizes ", a.size(), " vs ", b.size(), ", first difference at byte ", i,
                      " (page ", i / kPage, " + ", i % kPage, ")");
}

}  // namespace

std::string OpResult::ToString() const {
  std::string s = ret < 0 ? absl::StrCat("-1 ", strerrorname_np(err)) : absl::StrCat(ret);
  if (!data.empty()) {
    if (data.size() <= 160) {
      absl::StrAppend(&s, " [", data, "]");
    } else {
      absl::StrAppend(&s, " [", data.size(), " bytes]");
    }
  }
  return s;
}

LockstepRunner::LockstepRunner(std::string pagefs_root, std::string local_root, Options options)
    : options_(options), rng_(options.seed) {
  root_[0] = std::move(pagefs_root);
  root_[1] = std::move(local_root);
}

LockstepRunner::~LockstepRunner() { AbandonHandles(); }

std::string LockstepRunner::Abs(int side, const std::string& rel) const {
  return rel.empty() ? root_[side] : absl::StrCat(root_[side], "/", rel);
}

std::string LockstepRunner::LogTail(size_t n) const {
  std::string out;
  for (size_t i = log_.size() > n ? log_.size() - n : 0; i < log_.size(); ++i) {
    absl::StrAppend(&out, "  ", log_[i], "\n");
  }
  return out;
}

bool LockstepRunner::Compare(const std::string& what, const OpResult& a, const OpResult& b) {
  if (a == b) {
    Log(absl::StrCat(what, " -> ", a.ToString()));
    // "#12 pwrite h0[...] ..." counts as a pwrite.
    size_t begin = what.find(' ') + 1;
    std::string op = what.substr(begin, what.find(' ', begin) - begin);
    ++stats_[op][a.ret < 0 ? 1 : 0];
    return true;
  }
  std::string detail;
  if (a.data.size() > 160 || b.data.size() > 160) {
    detail = absl::StrCat(" (data: ", FirstDifference(a.data, b.data), ")");
  }
  Log(absl::StrCat(what, " -> pagefs ", a.ToString(), " / local ", b.ToString(), "  <== DIFFERS"));
  failure_ = absl::StrCat("seed ", options_.seed, ": ", what, ": pagefs returned ", a.ToString(),
                          ", the local filesystem ", b.ToString(), detail);
  return false;
}

template <typename Fn>
bool LockstepRunner::Both(const std::string& what, Fn fn) {
  OpResult a = fn(0);
  OpResult b = fn(1);
  return Compare(absl::StrCat("#", op_index_, " ", what), a, b);
}

std::string LockstepRunner::RandomBytes(size_t n) {
  std::string s(n, '\0');
  uint64_t kind = Uniform(10);
  if (kind < 2) return s;                // all zeros: pagefs stores no page (a tombstone)
  size_t filled = kind < 3 ? n / 2 : n;  // trailing zeros: pagefs trims them
  for (size_t i = 0; i < filled; i += 8) {
    uint64_t r = rng_();
    memcpy(&s[i], &r, std::min<size_t>(8, filled - i));
  }
  return s;
}

std::string LockstepRunner::RandomPath(const std::string& name_prefix) {
  std::string parent = kParents[Uniform(std::size(kParents))];
  std::vector<std::string> preferred;
  for (const char* n : kNames) {
    if (!name_prefix.empty() && std::string(n).rfind(name_prefix, 0) == 0) preferred.push_back(n);
  }
  if (!preferred.empty() && Chance(0.9)) return parent + preferred[Uniform(preferred.size())];
  return parent + kNames[Uniform(std::size(kNames))];
}

std::vector<std::string> LockstepRunner::LocalEntries() {
  std::vector<std::string> out;
  std::vector<std::string> dirs = {""};
  while (!dirs.empty()) {
    std::string dir = dirs.back();
    dirs.pop_back();
    DIR* d = opendir(Abs(1, dir).c_str());
    if (d == nullptr) continue;
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string rel = dir.empty() ? name : absl::StrCat(dir, "/", name);
      out.push_back(rel);
      if (e->d_type == DT_DIR) dirs.push_back(rel);
    }
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string LockstepRunner::ExistingPath() {
  std::vector<std::string> all = LocalEntries();
  if (all.empty()) return RandomPath("");
  return all[Uniform(all.size())];
}

off_t LockstepRunner::LocalSize(const Handle& h) {
  struct stat st;
  return fstat(h.fd[1], &st) == 0 ? st.st_size : 0;
}

std::string LockstepRunner::HandleName(size_t i) const {
  return absl::StrCat("h", i, "[", handles_[i].path, " ", FlagsName(handles_[i].flags), "]");
}

void LockstepRunner::MarkModified(int local_fd) {
  struct stat st;
  if (fstat(local_fd, &st) == 0) synced_.erase(st.st_ino);
}

void LockstepRunner::MarkModifiedPath(const std::string& rel) {
  struct stat st;
  if (stat(Abs(1, rel).c_str(), &st) == 0) synced_.erase(st.st_ino);
}

bool LockstepRunner::Run(int count) {
  for (int i = 0; i < count; ++i) {
    ++op_index_;
    bool ok = true;
    uint64_t dice = Uniform(100);
    bool have = !handles_.empty();
    size_t h = have ? Uniform(handles_.size()) : 0;
    // Handle operations dominate; without an open handle they fall back to open.
    if (dice < 14 || (!have && dice < 58)) {
      ok = OpOpen();
    } else if (dice < 18) {
      ok = OpClose();
    } else if (dice < 34) {
      ok = OpPwrite(h, Chance(0.8));
    } else if (dice < 44) {
      ok = OpPread(h, Chance(0.8));
    } else if (dice < 47) {
      ok = OpLseek(h);
    } else if (dice < 51) {
      ok = OpFtruncate(h);
    } else if (dice < (options_.crash_mode ? 58u : 54u)) {
      ok = OpFsync(h);
    } else if (dice < 58) {
      ok = OpFstat(h);
    } else if (dice < 64) {
      ok = OpRename();
    } else if (dice < 69) {
      ok = OpUnlink();
    } else if (dice < 74) {
      ok = OpMkdir();
    } else if (dice < 77) {
      ok = OpRmdir();
    } else if (dice < 80) {
      ok = OpSymlink();
    } else if (dice < 82) {
      ok = OpReadlink();
    } else if (dice < 85) {
      ok = OpChmod();
    } else if (dice < 88) {
      ok = OpLink();
    } else if (dice < 93) {
      ok = OpStat();
    } else if (dice < 97) {
      ok = OpReaddir();
    } else {
      ok = OpTruncate();
    }
    if (!ok) return false;
  }
  return true;
}

bool LockstepRunner::OpOpen() {
  if (handles_.size() >= kMaxHandles && !OpClose()) return false;
  std::string path = RandomPath(Chance(0.7) ? "f" : "");
  if (Chance(0.3)) path = ExistingPath();
  static const int kAccess[] = {O_RDONLY, O_WRONLY, O_RDWR, O_RDWR};
  int flags = kAccess[Uniform(std::size(kAccess))];
  if (Chance(options_.crash_mode ? 0.85 : 0.65)) flags |= O_CREAT;
  if (Chance(0.15)) flags |= O_EXCL;
  // Linux truncates on O_RDONLY|O_TRUNC too (open(2): "unspecified"; Linux does it).
  if (Chance(0.15) && (options_.rdonly_trunc || (flags & O_ACCMODE) != O_RDONLY)) {
    flags |= O_TRUNC;
  }
  if (Chance(0.15)) flags |= O_APPEND;
  static const mode_t kModes[] = {0644, 0600, 0755, 0400};
  mode_t mode = kModes[Uniform(std::size(kModes))];
  struct stat before;
  bool existed = stat(Abs(1, path).c_str(), &before) == 0;
  Handle handle;
  handle.path = path;
  handle.flags = flags;
  bool ok = Both(absl::StrFormat("open %s %s %04o", path, FlagsName(flags), mode), [&](int side) {
    int fd = open(Abs(side, path).c_str(), flags | O_CLOEXEC, mode);
    OpResult r = Sys(fd);
    handle.fd[side] = fd;
    if (fd >= 0) r.ret = 0;  // descriptor numbers differ
    return r;
  });
  if (!ok) {
    for (int fd : handle.fd) {
      if (fd >= 0) close(fd);
    }
    return false;
  }
  if (handle.fd[1] < 0) return true;
  struct stat st;
  if (fstat(handle.fd[1], &st) == 0) {
    handle.is_dir = S_ISDIR(st.st_mode);
    if (!existed || (flags & O_TRUNC)) synced_.erase(st.st_ino);
  }
  Log(absl::StrCat("   = h", handles_.size()));
  handles_.push_back(handle);
  return true;
}

bool LockstepRunner::OpClose() {
  if (handles_.empty()) return true;
  size_t h = Uniform(handles_.size());
  Handle handle = handles_[h];
  std::string name = HandleName(h);
  handles_.erase(handles_.begin() + static_cast<long>(h));
  return Both(absl::StrCat("close ", name), [&](int side) { return Sys(close(handle.fd[side])); });
}

bool LockstepRunner::OpPwrite(size_t h, bool positional) {
  const Handle& handle = handles_[h];
  if (handle.is_dir) return OpFstat(h);
  uint64_t size = static_cast<uint64_t>(LocalSize(handle));
  uint64_t len;
  switch (Uniform(5)) {
    case 0:
      len = Uniform(100);
      break;
    case 1:
      len = Uniform(kPage + 1);
      break;
    case 2:
      len = kPage - 20 + Uniform(41);
      break;
    case 3:
      len = 2 * kPage + Uniform(kPage + 1);
      break;
    default:
      len = Uniform(3 * kPage + 1);
      break;
  }
  uint64_t off;
  switch (Uniform(6)) {
    case 0:
      off = Uniform(size + 2);
      break;
    case 1:
      off = Uniform(size / kPage + 3) * kPage;
      break;  // page aligned
    case 2:
      off = Uniform(size / kPage + 3) * kPage + Uniform(64) - 32;
      break;  // crossing
    case 3:
      off = size + Uniform(64) * kPage + Uniform(kPage);
      break;  // a hole
    case 4:
      off = size;
      break;
    default:
      off = Uniform(size + 3 * kPage);
      break;
  }
  if (static_cast<int64_t>(off) < 0) off = 0;
  if (off + len > kMaxFileBytes) off = Uniform(kMaxFileBytes - len);
  std::string data = RandomBytes(len);
  MarkModified(handle.fd[1]);
  if (!positional) {
    return Both(absl::StrFormat("write %s len=%d", HandleName(h), len),
                [&](int side) { return Sys(write(handle.fd[side], data.data(), data.size())); });
  }
  return Both(absl::StrFormat("pwrite %s off=%d len=%d", HandleName(h), off, len), [&](int side) {
    return Sys(pwrite(handle.fd[side], data.data(), data.size(), static_cast<off_t>(off)));
  });
}

bool LockstepRunner::OpPread(size_t h, bool positional) {
  const Handle& handle = handles_[h];
  if (handle.is_dir) return OpFstat(h);
  uint64_t size = static_cast<uint64_t>(LocalSize(handle));
  uint64_t len = Chance(0.2) ? Uniform(200) : Uniform(3 * kPage + 100);
  uint64_t off = Chance(0.3) ? Uniform(size / kPage + 2) * kPage : Uniform(size + kPage);
  auto run = [&](int side) {
    std::string buf(len, '\0');
    ssize_t n = positional ? pread(handle.fd[side], buf.data(), len, static_cast<off_t>(off))
                           : read(handle.fd[side], buf.data(), len);
    OpResult r = Sys(n);
    if (n > 0) r.data = buf.substr(0, static_cast<size_t>(n));
    return r;
  };
  if (!positional) return Both(absl::StrFormat("read %s len=%d", HandleName(h), len), run);
  return Both(absl::StrFormat("pread %s off=%d len=%d", HandleName(h), off, len), run);
}

bool LockstepRunner::OpLseek(size_t h) {
  const Handle& handle = handles_[h];
  if (handle.is_dir) return OpFstat(h);  // directory offsets are filesystem-specific
  int64_t size = LocalSize(handle);
  int whence;
  int64_t off;
  switch (Uniform(3)) {
    case 0:
      whence = SEEK_END;
      off = Chance(0.5) ? 0 : static_cast<int64_t>(Uniform(20000)) - size / 2;
      break;
    case 1:
      whence = SEEK_SET;
      off = static_cast<int64_t>(Uniform(static_cast<uint64_t>(size) + 2 * kPage));
      break;
    default:
      whence = SEEK_CUR;
      off = static_cast<int64_t>(Uniform(kPage)) - 100;
      break;
  }
  const char* name = whence == SEEK_END ? "SEEK_END" : whence == SEEK_SET ? "SEEK_SET" : "SEEK_CUR";
  return Both(absl::StrFormat("lseek %s %d %s", HandleName(h), off, name), [&](int side) {
    return Sys(lseek(handle.fd[side], static_cast<off_t>(off), whence));
  });
}

bool LockstepRunner::OpFtruncate(size_t h) {
  const Handle& handle = handles_[h];
  uint64_t size = handle.is_dir ? 0 : static_cast<uint64_t>(LocalSize(handle));
  uint64_t to;
  switch (Uniform(5)) {
    case 0:
      to = Uniform(size + 1);
      break;
    case 1:
      to = size + Uniform(3 * kPage);
      break;
    case 2:
      to = Uniform(size / kPage + 3) * kPage + Uniform(3) - 1;
      break;
    case 3:
      to = 0;
      break;
    default:
      to = size + 1 + Uniform(40) * kPage + Uniform(kPage);
      break;
  }
  if (static_cast<int64_t>(to) < 0) to = 0;
  to = std::min(to, kMaxFileBytes);
  MarkModified(handle.fd[1]);
  return Both(absl::StrFormat("ftruncate %s %d (from %d)", HandleName(h), to, size),
              [&](int side) { return Sys(ftruncate(handle.fd[side], static_cast<off_t>(to))); });
}

bool LockstepRunner::OpFsync(size_t h) {
  const Handle& handle = handles_[h];
  bool data_only = Chance(0.4);
  bool ok = Both(absl::StrCat(data_only ? "fdatasync " : "fsync ", HandleName(h)), [&](int side) {
    return Sys(data_only ? fdatasync(handle.fd[side]) : fsync(handle.fd[side]));
  });
  if (!ok) return false;
  ++fsyncs_;
  struct stat st;
  if (options_.crash_mode && !handle.is_dir && fstat(handle.fd[1], &st) == 0 &&
      S_ISREG(st.st_mode)) {
    // Through a new descriptor: the handle may be write-only.
    Synced s;
    int fd = open(absl::StrCat("/proc/self/fd/", handle.fd[1]).c_str(), O_RDONLY | O_CLOEXEC);
    s.clean = fd >= 0 && ReadWhole(fd, &s.content);
    if (fd >= 0) close(fd);
    synced_[st.st_ino] = std::move(s);
  }
  return true;
}

bool LockstepRunner::OpFstat(size_t h) {
  const Handle& handle = handles_[h];
  return Both(absl::StrCat("fstat ", HandleName(h)), [&](int side) {
    struct stat st;
    OpResult r = Sys(fstat(handle.fd[side], &st));
    if (r.ret == 0) r.data = StatFields(st, options_.removed_dir_nlink);
    return r;
  });
}

bool LockstepRunner::OpRename() {
  std::string from = Chance(0.7) ? ExistingPath() : RandomPath("");
  std::string to = Chance(0.4) ? ExistingPath() : RandomPath("");
  return Both(absl::StrFormat("rename %s -> %s", from, to), [&](int side) {
    return Sys(rename(Abs(side, from).c_str(), Abs(side, to).c_str()));
  });
}

bool LockstepRunner::OpUnlink() {
  std::string path;
  if (!handles_.empty() && Chance(0.3)) {
    path = handles_[Uniform(handles_.size())].path;  // unlink of an open file
  } else {
    path = Chance(0.6) ? ExistingPath() : RandomPath("f");
  }
  return Both(absl::StrCat("unlink ", path),
              [&](int side) { return Sys(unlink(Abs(side, path).c_str())); });
}

bool LockstepRunner::OpMkdir() {
  std::string path = RandomPath("d");
  mode_t mode = Chance(0.5) ? 0755 : 0700;
  return Both(absl::StrFormat("mkdir %s %04o", path, mode),
              [&](int side) { return Sys(mkdir(Abs(side, path).c_str(), mode)); });
}

bool LockstepRunner::OpRmdir() {
  std::string path = Chance(0.6) ? ExistingPath() : RandomPath("d");
  return Both(absl::StrCat("rmdir ", path),
              [&](int side) { return Sys(rmdir(Abs(side, path).c_str())); });
}

bool LockstepRunner::OpSymlink() {
  std::string path = RandomPath("s");
  std::string target = kSymlinkTargets[Uniform(std::size(kSymlinkTargets))];
  return Both(absl::StrFormat("symlink %s -> %s", path, target),
              [&](int side) { return Sys(symlink(target.c_str(), Abs(side, path).c_str())); });
}

bool LockstepRunner::OpReadlink() {
  std::string path = Chance(0.7) ? ExistingPath() : RandomPath("s");
  return Both(absl::StrCat("readlink ", path), [&](int side) {
    char buf[4096];
    ssize_t n = readlink(Abs(side, path).c_str(), buf, sizeof(buf));
    OpResult r = Sys(n);
    if (n > 0) r.data.assign(buf, static_cast<size_t>(n));
    return r;
  });
}

bool LockstepRunner::OpChmod() {
  std::string path = Chance(0.7) ? ExistingPath() : RandomPath("");
  static const mode_t kModes[] = {0600, 0644, 0700, 0755, 0444, 0640, 0750};
  mode_t mode = kModes[Uniform(std::size(kModes))];
  return Both(absl::StrFormat("chmod %s %04o", path, mode),
              [&](int side) { return Sys(chmod(Abs(side, path).c_str(), mode)); });
}

bool LockstepRunner::OpLink() {
  std::string from = Chance(0.8) ? ExistingPath() : RandomPath("f");
  std::string to = RandomPath(Chance(0.5) ? "f" : "");
  return Both(absl::StrFormat("link %s -> %s", from, to),
              [&](int side) { return Sys(link(Abs(side, from).c_str(), Abs(side, to).c_str())); });
}

bool LockstepRunner::OpStat() {
  std::string path = Chance(0.7) ? ExistingPath() : RandomPath("");
  bool follow = Chance(0.4);
  return Both(absl::StrCat(follow ? "stat " : "lstat ", path), [&](int side) {
    struct stat st;
    OpResult r =
        Sys(follow ? stat(Abs(side, path).c_str(), &st) : lstat(Abs(side, path).c_str(), &st));
    if (r.ret == 0) r.data = StatFields(st);
    return r;
  });
}

bool LockstepRunner::OpReaddir() {
  std::string dir = kParents[Uniform(std::size(kParents))];
  if (!dir.empty()) dir.pop_back();
  return Both(absl::StrCat("readdir ", dir.empty() ? "." : dir),
              [&](int side) { return Listing(Abs(side, dir)); });
}

bool LockstepRunner::OpTruncate() {
  std::string path = Chance(0.7) ? ExistingPath() : RandomPath("f");
  uint64_t to = Chance(0.5) ? Uniform(3 * kPage) : Uniform(20) * kPage + Uniform(2);
  MarkModifiedPath(path);
  return Both(absl::StrFormat("truncate %s %d", path, to), [&](int side) {
    return Sys(truncate(Abs(side, path).c_str(), static_cast<off_t>(to)));
  });
}

std::string LockstepRunner::Stats() const {
  std::string out;
  for (const auto& [op, counts] : stats_) {
    absl::StrAppend(&out, out.empty() ? "" : ", ", op, " ", counts[0], "/", counts[0] + counts[1]);
  }
  return out;
}

bool LockstepRunner::FsyncAll() {
  for (size_t h = 0; h < handles_.size(); ++h) {
    ++op_index_;
    if (!handles_[h].is_dir && !OpFsync(h)) return false;
  }
  return true;
}

bool LockstepRunner::FillHandles() {
  for (int i = 0; i < 100 && handles_.size() < kMaxHandles; ++i) {
    ++op_index_;
    if (!OpOpen()) return false;
  }
  // Plus files outside the name pool, so that some exist whatever the random walk left.
  for (int i = 0; i < 3; ++i) {
    if (handles_.size() >= kMaxHandles && !OpClose()) return false;
    ++op_index_;
    Handle handle;
    handle.path = absl::StrCat("c", next_extra_++);
    handle.flags = O_RDWR | O_CREAT;
    if (!Both(absl::StrCat("open ", handle.path, " O_RDWR|O_CREAT 0644"), [&](int side) {
          handle.fd[side] = open(Abs(side, handle.path).c_str(), handle.flags | O_CLOEXEC, 0644);
          OpResult r = Sys(handle.fd[side]);
          if (r.ret >= 0) r.ret = 0;
          return r;
        })) {
      return false;
    }
    if (handle.fd[0] < 0) continue;
    Log(absl::StrCat("   = h", handles_.size()));
    handles_.push_back(handle);
    ++op_index_;
    if (!OpPwrite(handles_.size() - 1, true)) return false;
  }
  return true;
}

bool LockstepRunner::CloseAll() {
  while (!handles_.empty()) {
    Handle handle = handles_.back();
    std::string name = HandleName(handles_.size() - 1);
    handles_.pop_back();
    ++op_index_;
    if (!Both(absl::StrCat("close ", name),
              [&](int side) { return Sys(close(handle.fd[side])); })) {
      return false;
    }
  }
  return true;
}

void LockstepRunner::AbandonHandles() {
  for (const Handle& h : handles_) {
    for (int fd : h.fd) {
      if (fd >= 0) close(fd);
    }
  }
  handles_.clear();
}

bool LockstepRunner::CompareEntry(const std::string& rel, bool crash, int* checked_files) {
  struct stat st[2];
  OpResult r[2];
  for (int side = 0; side < 2; ++side) {
    r[side] = Sys(lstat(Abs(side, rel).c_str(), &st[side]));
    if (r[side].ret == 0) r[side].data = StatFields(st[side]);
  }
  bool is_reg = r[1].ret == 0 && S_ISREG(st[1].st_mode);
  auto synced = is_reg ? synced_.find(st[1].st_ino) : synced_.end();
  bool content_known = !crash || (synced != synced_.end() && synced->second.clean);
  if (crash && is_reg && !content_known && r[0].ret == 0) {
    // Unsynced data: its size is whatever was flushed; compare the rest.
    r[0].data = r[0].data.substr(0, r[0].data.find(" size="));
    r[1].data = r[1].data.substr(0, r[1].data.find(" size="));
  }
  if (!Compare(absl::StrCat("tree: lstat ", rel), r[0], r[1])) return false;
  if (r[1].ret != 0) return true;
  if (S_ISLNK(st[1].st_mode)) {
    return Both(absl::StrCat("tree: readlink ", rel), [&](int side) {
      char buf[4096];
      ssize_t n = readlink(Abs(side, rel).c_str(), buf, sizeof(buf));
      OpResult res = Sys(n);
      if (n > 0) res.data.assign(buf, static_cast<size_t>(n));
      return res;
    });
  }
  if (S_ISDIR(st[1].st_mode)) {
    return Both(absl::StrCat("tree: readdir ", rel),
                [&](int side) { return Listing(Abs(side, rel)); });
  }
  if (!is_reg || !content_known) return true;
  OpResult c[2];
  for (int side = 0; side < 2; ++side) {
    int fd = open(Abs(side, rel).c_str(), O_RDONLY | O_CLOEXEC);
    c[side] = Sys(fd);
    if (fd >= 0) {
      c[side].ret = ReadWhole(fd, &c[side].data) ? 0 : -1;
      close(fd);
    }
  }
  if (crash) {
    // The model is the content at the last fsync, which may differ from the local file only if
    // the local file changed afterwards (then it is not clean and not checked here).
    c[1].ret = 0;
    c[1].err = 0;
    c[1].data = synced->second.content;
    ++*checked_files;
  }
  return Compare(absl::StrCat("tree: content ", rel), c[0], c[1]);
}

bool LockstepRunner::CompareTrees() {
  if (!Both("tree: readdir .", [&](int side) { return Listing(root_[side]); })) return false;
  for (const std::string& rel : LocalEntries()) {
    if (!CompareEntry(rel, false, nullptr)) return false;
  }
  return true;
}

bool LockstepRunner::CompareAfterCrash(int* checked_files) {
  *checked_files = 0;
  if (!Both("tree: readdir .", [&](int side) { return Listing(root_[side]); })) return false;
  for (const std::string& rel : LocalEntries()) {
    if (!CompareEntry(rel, true, checked_files)) return false;
  }
  return true;
}

}  // namespace pgbranch::pagefs_model
