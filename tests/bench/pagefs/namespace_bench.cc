// Section "namespace": the latency of single namespace operations (create, truncate to 0, rename,
// unlink of a small file) on a pagefs mount versus a directory on the local disk, in one run.
//
// Each file holds 16 KiB (written and fsync'd, untimed) when it is truncated, renamed and
// unlinked, so the deletions have pages to delete. The operations are timed one by one, as a
// program (PostgreSQL) issues them: no fsync of the file or directory is included.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/bench/pagefs/sections.h"

namespace pgbranch::pagefs_bench {
namespace {

struct OpSamples {
  Samples create, truncate, rename, unlink, fsyncdir;
};

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", strerror(errno)));
}

absl::Status FillAndSync(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY);
  if (fd < 0) return Errno("open", path);
  std::string data(16384, 'x');
  bool ok = pwrite(fd, data.data(), data.size(), 0) == static_cast<ssize_t>(data.size()) &&
            fsync(fd) == 0;
  close(fd);
  return ok ? absl::OkStatus() : Errno("write+fsync", path);
}

// Runs `n` rounds of create / (fill) / truncate / (fill) / rename / unlink in `dir`.
absl::Status RunOps(const std::string& dir, int n, OpSamples* out) {
  for (int i = 0; i < n; ++i) {
    std::string a = absl::StrCat(dir, "/f", i), b = absl::StrCat(dir, "/g", i);
    double t0 = NowSeconds();
    int fd = open(a.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
    if (fd < 0) return Errno("create", a);
    close(fd);
    out->create.Add(NowSeconds() - t0);
    absl::Status s = FillAndSync(a);
    if (!s.ok()) return s;
    t0 = NowSeconds();
    if (truncate(a.c_str(), 0) != 0) return Errno("truncate", a);
    out->truncate.Add(NowSeconds() - t0);
    s = FillAndSync(a);
    if (!s.ok()) return s;
    t0 = NowSeconds();
    if (rename(a.c_str(), b.c_str()) != 0) return Errno("rename", a);
    out->rename.Add(NowSeconds() - t0);
    t0 = NowSeconds();
    if (unlink(b.c_str()) != 0) return Errno("unlink", b);
    out->unlink.Add(NowSeconds() - t0);
    if (i % 100 == 99) {
      // What PostgreSQL does after a batch of namespace changes: fsync the directory.
      t0 = NowSeconds();
      int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
      if (dfd < 0) return Errno("open", dir);
      int rc = fsync(dfd);
      close(dfd);
      if (rc != 0) return Errno("fsync", dir);
      out->fsyncdir.Add(NowSeconds() - t0);
    }
  }
  return absl::OkStatus();
}

std::string Us(double seconds) { return absl::StrFormat("%.0f us", seconds * 1e6); }

}  // namespace

absl::Status RunNamespaceBench(const BenchConfig& config) {
  int n = config.quick ? 300 : 2000;
  PagefsEnv env(config);
  absl::Status s = env.Start("namespace");
  if (!s.ok()) return s;
  s = env.CreateTimeline("ns", "");
  if (!s.ok()) return s;
  std::string mnt = env.dir() + "/mnt";
  auto mount = env.Mount("ns", mnt);
  if (!mount.ok()) return mount.status();
  std::string local_dir = env.dir() + "/local";
  std::string pagefs_dir = mnt + "/d";
  if (mkdir(local_dir.c_str(), 0755) != 0) return Errno("mkdir", local_dir);
  if (mkdir(pagefs_dir.c_str(), 0755) != 0) return Errno("mkdir", pagefs_dir);

  OpSamples local, onfs;
  Progress(absl::StrCat("namespace: ", n, " rounds on the local disk"));
  s = RunOps(local_dir, n, &local);
  if (!s.ok()) return s;
  Progress(absl::StrCat("namespace: ", n, " rounds on pagefs"));
  s = RunOps(pagefs_dir, n, &onfs);
  if (!s.ok()) return s;
  int rc = (*mount)->Unmount();
  if (rc != 0) return absl::InternalError(absl::StrCat("pagefs exited with ", rc));

  Table table(absl::StrFormat("namespace operations on a small file (%d each)", n),
              {"operation", "local mean", "local p99", "pagefs mean", "pagefs p99",
               "pagefs/local (mean)", "target", "ok?"});
  auto row = [&](const std::string& op, const Samples& l, const Samples& p, double target_s) {
    table.Add({op, Us(l.Mean()), Us(l.Quantile(0.99)), Us(p.Mean()), Us(p.Quantile(0.99)),
               Ratio(p.Mean() / l.Mean()), target_s > 0 ? absl::StrCat("<= ", Us(target_s)) : "",
               target_s > 0 ? OkIf(p.Mean() <= target_s) : ""});
  };
  row("create (open O_CREAT|O_EXCL + close)", local.create, onfs.create, 200e-6);
  row("truncate to 0 (16 KiB file)", local.truncate, onfs.truncate, 200e-6);
  row("rename", local.rename, onfs.rename, 200e-6);
  row("unlink (16 KiB file)", local.unlink, onfs.unlink, 200e-6);
  row("fsync of the directory (every 100 rounds)", local.fsyncdir, onfs.fsyncdir, 0);
  table.Note(
      "untimed between the operations: 16 KiB written and fsync'd to the file before the "
      "truncate and before the rename; local = a directory on the disk under --dir");
  table.Print();
  return absl::OkStatus();
}

}  // namespace pgbranch::pagefs_bench
