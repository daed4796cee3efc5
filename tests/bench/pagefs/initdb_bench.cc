// Section 3: initdb (with fsync, as by default: no --no-sync) on pagefs versus the local disk.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/bench/pagefs/sections.h"

namespace pgbranch::pagefs_bench {

absl::Status RunInitdbBench(const BenchConfig& config) {
  int runs = config.quick ? 2 : 4;
  PagefsEnv env(config);
  absl::Status s = env.Start("initdb");
  if (!s.ok()) return s;
  Samples local, onfs, unmount;
  for (int i = 0; i < runs; ++i) {
    Progress(absl::StrCat("initdb: run ", i + 1, " of ", runs));
    PgCluster lc(absl::StrCat(env.dir(), "/local-", i, "/pgdata"), env.dir() + "/sock", 5432,
                 absl::StrCat(env.dir(), "/local-", i, ".log"));
    auto t = lc.InitDb();
    if (!t.ok()) return t.status();
    local.Add(*t);

    std::string timeline = absl::StrCat("initdb-", i);
    s = env.CreateTimeline(timeline, "");
    if (!s.ok()) return s;
    std::string mnt = absl::StrCat(env.dir(), "/mnt-", i);
    auto mount = env.Mount(timeline, mnt);
    if (!mount.ok()) return mount.status();
    PgCluster pc(mnt + "/pgdata", env.dir() + "/sock", 5432,
                 absl::StrCat(env.dir(), "/pagefs-", i, ".log"));
    t = pc.InitDb();
    if (!t.ok()) return t.status();
    onfs.Add(*t);
    double t0 = NowSeconds();
    int rc = (*mount)->Unmount();
    unmount.Add(NowSeconds() - t0);
    if (rc != 0) return absl::InternalError(absl::StrCat("pagefs exited with ", rc));
  }
  Table table(absl::StrFormat("initdb with fsync (%d runs each)", runs),
              {"where", "min", "mean", "max", "pagefs/local (mean)"});
  auto row = [&](const std::string& what, const Samples& x, const std::string& ratio) {
    table.Add({what, Secs(x.Min()), Secs(x.Mean()), Secs(x.Max()), ratio});
  };
  row("local disk", local, "");
  row("pagefs (new root timeline each run)", onfs, Ratio(onfs.Mean() / local.Mean()));
  row("pagefs unmount after initdb (final flush)", unmount, "");
  table.Note("initdb -A trust -E UTF8 --locale=C; higher pagefs/local means slower on pagefs");
  table.Print();
  return absl::OkStatus();
}

}  // namespace pgbranch::pagefs_bench
