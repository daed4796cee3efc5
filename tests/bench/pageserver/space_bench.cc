// Section 4: disk bytes added by changing X MB on a branch of an N GB timeline. DESIGN.md section
// 7: <= 1.2 * X + 1 MB (Lakebase/Neon: about X MB).
//
// Bytes are the sum of the file sizes in the data directory (log segments, layer files,
// MANIFEST), each time after a checkpoint + GC + compaction (RunMaintenance gc=true). Each X is
// measured twice on a fresh branch of the root: writing new pages, and overwriting pages the
// root already has (the root keeps its versions, so the branch pays for its own only).
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/bench/pageserver/sections.h"

namespace pgbranch::bench {
namespace {

constexpr char kTenant[] = "space";
constexpr uint64_t kRootIno = 16384;
constexpr int kLoaders = 4;
constexpr double kMiB = 1 << 20;

}  // namespace

absl::Status RunSpaceBench(const BenchConfig& config) {
  uint64_t root_mib = config.quick ? 100 : 1024;
  uint64_t root_pages = root_mib * (1 << 20) / kPageBytes;
  BenchServer server(config);
  if (absl::Status s = server.Start(); !s.ok()) return s;
  if (absl::Status s = server.CreateTenant(kTenant, "main"); !s.ok()) return s;
  absl::StatusOr<uint64_t> gen = server.AcquireWriter(kTenant, "main");
  if (!gen.ok()) return gen.status();
  Progress(absl::StrCat("loading ", root_mib, " MiB into the root"));
  absl::StatusOr<double> secs =
      LoadPages(server, kTenant, "main", *gen, kRootIno, 0, root_pages, kLoaders);
  if (!secs.ok()) return secs.status();
  if (absl::Status s = server.RunMaintenance(true); !s.ok()) return s;
  // The log (wal/) is a bounded pool of 64 MiB segments - the current one, a zero-filled spare
  // and at most two retired ones kept for reuse - whatever the size of the branches, so the
  // metric counts the layer files and the manifest; the whole directory is shown beside it.
  auto store_bytes = [&] {
    return DirBytes(server.data_dir()) - DirBytes(server.data_dir() + "/wal");
  };
  uint64_t before = store_bytes();
  uint64_t before_all = DirBytes(server.data_dir());

  Table table(absl::StrCat("4. Disk bytes added by changing X MiB on a branch of a ", root_mib,
                           " MiB timeline (after checkpoint + GC + compaction)"));
  table.Add(absl::StrCat("root: ", root_mib, " MiB loaded in 1 MiB commits"),
            absl::StrCat("layers + manifest ", FormatBytes(static_cast<double>(before)), " (",
                         absl::StrFormat("%.3f", static_cast<double>(before) /
                                                     (static_cast<double>(root_mib) * kMiB)),
                         " bytes per logical byte)"));
  table.Note(absl::StrCat("after loading the root: ", DirBreakdown(server.data_dir())));

  std::mt19937_64 rng(4);
  uint64_t next_ino = 30000;
  for (uint64_t x : {1u, 10u, 100u}) {
    for (bool overwrite : {false, true}) {
      std::string branch = absl::StrCat(overwrite ? "overwrite-" : "new-", x, "mb");
      if (absl::Status s = server.CreateTimeline(kTenant, branch, "main").status(); !s.ok()) {
        return s;
      }
      absl::StatusOr<uint64_t> g = server.AcquireWriter(kTenant, branch);
      if (!g.ok()) return g.status();
      uint64_t pages = x * (1 << 20) / kPageBytes;
      std::vector<uint64_t> blocks;
      uint64_t ino = kRootIno;
      if (overwrite) {
        // Distinct random pages of the root.
        std::vector<uint64_t> all(root_pages);
        for (uint64_t i = 0; i < root_pages; ++i) all[i] = i;
        std::shuffle(all.begin(), all.end(), rng);
        blocks.assign(all.begin(), all.begin() + static_cast<long>(std::min(pages, root_pages)));
      } else {
        ino = next_ino++;
        for (uint64_t i = 0; i < pages; ++i) blocks.push_back(i);
      }
      absl::StatusOr<double> t = LoadBlocks(server, kTenant, branch, *g, ino, blocks, kLoaders);
      if (!t.ok()) return t.status();
      if (absl::Status s = server.RunMaintenance(true); !s.ok()) return s;
      uint64_t after = store_bytes();
      uint64_t after_all = DirBytes(server.data_dir());
      double added = static_cast<double>(after) - static_cast<double>(before);
      double added_all = static_cast<double>(after_all) - static_cast<double>(before_all);
      double target = 1.2 * static_cast<double>(x) * kMiB + kMiB;
      absl::StatusOr<v1::Timeline> info = server.GetTimeline(kTenant, branch);
      if (!info.ok()) return info.status();
      table.Add(absl::StrCat("X = ", x, " MiB of ", overwrite ? "overwritten root" : "new",
                             " pages: bytes added"),
                absl::StrCat(FormatBytes(added), " (",
                             absl::StrFormat("%.3f", added / (static_cast<double>(x) * kMiB)),
                             "x X; with wal/ ", FormatBytes(added_all), "; branch diverged ",
                             FormatBytes(static_cast<double>(info->diverged_bytes())), ")"),
                absl::StrCat("<= ", FormatBytes(target)), OkIf(added <= target));
      before = after;
      before_all = after_all;
    }
  }
  table.Note(absl::StrCat("at the end: ", DirBreakdown(server.data_dir())));
  table.Note(
      "bytes added = layers/ + MANIFEST; wal/ is a bounded pool of 64 MiB segments (current, "
      "spare, up to memtable_flush_mb / 64 + 2 recycled), shown as 'with wal/'");
  table.Note("MiB = 2^20 bytes; the target uses X MB = X MiB");
  table.Print();
  return absl::OkStatus();
}

}  // namespace pgbranch::bench
