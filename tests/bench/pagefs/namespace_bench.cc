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

// The FUSE operations the kernel sends for one create / truncate / rename / unlink, and what each
// costs inside pagefs, from pagefs's metrics: `k` operations of one kind in a row, scraped before
// and after, divided by k. The files are filled (16 KiB, fsync'd) between the phases, untimed.
absl::Status TraceOps(const std::string& dir, int metrics_port, int k,
                      std::vector<std::pair<std::string, std::string>>* out) {
  std::string before;
  auto start = [&]() -> absl::Status {
    auto m = HttpGet(metrics_port, "/metrics");
    if (!m.ok()) return m.status();
    before = *m;
    return absl::OkStatus();
  };
  auto finish = [&](const std::string& what) -> absl::Status {
    auto m = HttpGet(metrics_port, "/metrics");
    if (!m.ok()) return m.status();
    out->push_back(
        {what, absl::StrCat(Activity(before, *m, kOpCount, kOpSum, "op", k), "; pageserver reads: ",
                            Activity(before, *m, kRpcCount, kRpcSum, "rpc", k))});
    return absl::OkStatus();
  };
  auto fill_all = [&](const char* prefix) -> absl::Status {
    for (int i = 0; i < k; ++i) {
      absl::Status s = FillAndSync(absl::StrCat(dir, "/", prefix, i));
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  };
  absl::Status s = start();
  for (int i = 0; s.ok() && i < k; ++i) {
    std::string a = absl::StrCat(dir, "/t", i);
    int fd = open(a.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
    if (fd < 0) return Errno("create", a);
    close(fd);
  }
  if (s.ok()) s = finish("create (open O_CREAT|O_EXCL + close)");
  if (s.ok()) s = fill_all("t");
  if (s.ok()) s = start();
  for (int i = 0; s.ok() && i < k; ++i) {
    std::string a = absl::StrCat(dir, "/t", i);
    if (truncate(a.c_str(), 0) != 0) return Errno("truncate", a);
  }
  if (s.ok()) s = finish("truncate to 0");
  if (s.ok()) s = fill_all("t");
  if (s.ok()) s = start();
  for (int i = 0; s.ok() && i < k; ++i) {
    std::string a = absl::StrCat(dir, "/t", i), b = absl::StrCat(dir, "/u", i);
    if (rename(a.c_str(), b.c_str()) != 0) return Errno("rename", a);
  }
  if (s.ok()) s = finish("rename");
  if (s.ok()) s = start();
  for (int i = 0; s.ok() && i < k; ++i) {
    std::string b = absl::StrCat(dir, "/u", i);
    if (unlink(b.c_str()) != 0) return Errno("unlink", b);
  }
  if (s.ok()) s = finish("unlink");
  return s;
}

}  // namespace

absl::Status RunNamespaceBench(const BenchConfig& config) {
  int n = config.quick ? 300 : 2000;
  PagefsEnv env(config);
  absl::Status s = env.Start("namespace");
  if (!s.ok()) return s;
  s = env.CreateTimeline("ns", "");
  if (!s.ok()) return s;
  std::string mnt = env.dir() + "/mnt";
  auto metrics_port = FreeLoopbackPort();
  if (!metrics_port.ok()) return metrics_port.status();
  auto mount = env.Mount("ns", mnt, *metrics_port);
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
  std::vector<std::pair<std::string, std::string>> trace;
  std::string trace_dir = mnt + "/trace";
  if (mkdir(trace_dir.c_str(), 0755) != 0) return Errno("mkdir", trace_dir);
  constexpr int kTraced = 100;
  Progress(absl::StrCat("namespace: tracing ", kTraced, " of each operation on pagefs"));
  s = TraceOps(trace_dir, *metrics_port, kTraced, &trace);
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
  Table ops(absl::StrFormat("FUSE operations per namespace operation (%d traced of each)", kTraced),
            {"operation", "FUSE ops the kernel sent, per operation (mean time inside pagefs)"});
  for (auto& [what, activity] : trace) ops.Add({what, activity});
  ops.Note(
      "from pagefs's metrics (pgbranch_pagefs_operation_duration_seconds), scraped around each "
      "phase");
  ops.Print();
  return absl::OkStatus();
}

}  // namespace pgbranch::pagefs_bench
