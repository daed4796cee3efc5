// Section 5: cold point reads at branch depth 1, 8 and 32 (issue 11: depth 32 <= 1.2x depth 1).
//
// A root timeline holds one file; a chain of 32 branches each overwrites two of its pages and adds
// a small file, so every level of the ancestry has versions of its own. Then, for each depth in
// turn (interleaved over several rounds, so drift hits all alike), a fresh pagefs mount of the
// branch at that depth: nothing is cached in pagefs or in the kernel's page cache of the mount.
// Measured: the mount, the first open of the file (lookups of a cold path) and random 8 KiB
// point reads (posix_fadvise RANDOM: no kernel read-ahead), the same pages at every depth. The
// pageserver's own OS page cache of its layer files is warm (it just wrote them): these are
// pagefs + RPC + engine costs, not disk reads.
#include <fcntl.h>
#include <unistd.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/bench/pagefs/sections.h"

namespace pgbranch::pagefs_bench {
namespace {

constexpr int kDepths[] = {1, 8, 32};
constexpr size_t kPage = 8192;

absl::Status WriteAt(const std::string& path, uint64_t offset, const std::string& data, int flags) {
  int fd = open(path.c_str(), O_WRONLY | flags, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path, ": ", strerror(errno)));
  bool ok = pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset)) ==
                static_cast<ssize_t>(data.size()) &&
            fsync(fd) == 0;
  close(fd);
  if (!ok) return absl::InternalError(absl::StrCat("write ", path, ": ", strerror(errno)));
  return absl::OkStatus();
}

std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t r = rng();
    memcpy(&s[i], &r, 8);
  }
  return s;
}

struct DepthSamples {
  Samples mount, open, read;
};

}  // namespace

absl::Status RunColdReadBench(const BenchConfig& config) {
  const uint64_t file_pages = config.quick ? 2048 : 8192;  // 16 or 64 MiB
  const int rounds = config.quick ? 3 : 6;
  const int reads_per_mount = config.quick ? 200 : 500;
  const int max_depth = 32;
  PagefsEnv env(config);
  absl::Status s = env.Start("coldread");
  if (!s.ok()) return s;
  std::mt19937_64 rng(11);

  Progress(absl::StrCat("cold-read: writing ", file_pages * kPage >> 20, " MiB on the root"));
  {
    std::string mnt = env.dir() + "/mnt-main";
    auto mount = env.Mount("main", mnt);
    if (!mount.ok()) return mount.status();
    for (uint64_t b = 0; b < file_pages; b += 256) {
      s = WriteAt(mnt + "/data", b * kPage, RandomBytes(rng, 256 * kPage), O_CREAT);
      if (!s.ok()) return s;
    }
    if (int rc = (*mount)->Unmount(); rc != 0) {
      return absl::InternalError(absl::StrCat("pagefs exited with ", rc));
    }
  }
  Progress(absl::StrCat("cold-read: a chain of ", max_depth, " branches, each writing"));
  std::string parent = "main";
  for (int d = 1; d <= max_depth; ++d) {
    std::string id = absl::StrCat("depth-", d);
    s = env.CreateTimeline(id, parent);
    if (!s.ok()) return s;
    std::string mnt = absl::StrCat(env.dir(), "/mnt-", id);
    auto mount = env.Mount(id, mnt);
    if (!mount.ok()) return mount.status();
    for (int k = 0; k < 2; ++k) {
      s = WriteAt(mnt + "/data", (rng() % file_pages) * kPage, RandomBytes(rng, kPage), 0);
      if (!s.ok()) return s;
    }
    s = WriteAt(absl::StrCat(mnt, "/own-", d), 0, RandomBytes(rng, kPage), O_CREAT);
    if (!s.ok()) return s;
    if (int rc = (*mount)->Unmount(); rc != 0) {
      return absl::InternalError(absl::StrCat("pagefs exited with ", rc));
    }
    parent = id;
  }
  s = env.Checkpoint();
  if (!s.ok()) return s;

  DepthSamples samples[std::size(kDepths)];
  for (int round = 0; round < rounds; ++round) {
    Progress(absl::StrCat("cold-read: round ", round + 1, " of ", rounds));
    std::mt19937_64 pick(100 + round);  // the same pages at every depth of a round
    std::vector<uint64_t> blocks(reads_per_mount);
    for (uint64_t& b : blocks) b = pick() % file_pages;
    for (size_t i = 0; i < std::size(kDepths); ++i) {
      std::string id = absl::StrCat("depth-", kDepths[i]);
      std::string mnt = absl::StrCat(env.dir(), "/cold-", id, "-", round);
      double t0 = NowSeconds();
      auto mount = env.Mount(id, mnt);
      if (!mount.ok()) return mount.status();
      double t1 = NowSeconds();
      int fd = open((mnt + "/data").c_str(), O_RDONLY);
      double t2 = NowSeconds();
      if (fd < 0) return absl::InternalError(absl::StrCat("open: ", strerror(errno)));
      posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
      std::string buf(kPage, '\0');
      for (uint64_t b : blocks) {
        double r0 = NowSeconds();
        ssize_t n = pread(fd, buf.data(), kPage, static_cast<off_t>(b * kPage));
        double r1 = NowSeconds();
        if (n != static_cast<ssize_t>(kPage)) {
          close(fd);
          return absl::InternalError(absl::StrCat("pread: ", n < 0 ? strerror(errno) : "short"));
        }
        samples[i].read.Add(r1 - r0);
      }
      close(fd);
      samples[i].mount.Add(t1 - t0);
      samples[i].open.Add(t2 - t1);
      if (int rc = (*mount)->Unmount(); rc != 0) {
        return absl::InternalError(absl::StrCat("pagefs exited with ", rc));
      }
    }
  }

  auto us = [](double s) { return absl::StrFormat("%.0f us", s * 1e6); };
  Table table(absl::StrFormat("cold point reads by branch depth (fresh pagefs mount each time; %d "
                              "rounds x %d random 8 KiB reads of a %llu MiB file)",
                              rounds, reads_per_mount, file_pages * kPage >> 20),
              {"depth", "mount (mean)", "first open (mean)", "read p50", "read p99", "read mean",
               "p50 vs depth 1", "mean vs depth 1", "target (p50)", "ok?"});
  double base = samples[0].read.Mean();
  double base_p50 = samples[0].read.Quantile(0.5);
  for (size_t i = 0; i < std::size(kDepths); ++i) {
    const DepthSamples& d = samples[i];
    double ratio = d.read.Quantile(0.5) / base_p50;
    bool deepest = i + 1 == std::size(kDepths);
    table.Add({std::to_string(kDepths[i]), Ms(d.mount.Mean()), Ms(d.open.Mean()),
               us(d.read.Quantile(0.5)), us(d.read.Quantile(0.99)), us(d.read.Mean()), Ratio(ratio),
               Ratio(d.read.Mean() / base), deepest ? "<= 1.2x" : "",
               deepest ? OkIf(ratio <= 1.2) : ""});
  }
  table.Note(
      "every level of the chain wrote 2 pages of the file and a file of its own; the pageserver "
      "was checkpointed (layer files), and its OS page cache holds them: no disk reads");
  table.Note(
      "the target is judged on p50: on a busy machine the mean follows a few slow outliers (see "
      "p99), which hit any depth alike");
  table.Print();
  return absl::OkStatus();
}

}  // namespace pgbranch::pagefs_bench
