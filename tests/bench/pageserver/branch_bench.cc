// Section 1: branch creation latency (CreateTimeline of a child at the parent's head) with a small
// and a large parent. DESIGN.md section 7: <= 10 ms at the pageserver, the same at 10 MB and
// 10 GB.
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/bench/pageserver/sections.h"

namespace pgbranch::bench {
namespace {

constexpr double kTargetMicros = 10'000;
constexpr int kBranches = 100;
constexpr int kLoaders = 4;
constexpr uint64_t kDataIno = 16384;

struct SizeResult {
  std::string label;
  Latencies latency;
};

absl::Status MeasureAtSize(BenchServer& server, uint64_t mib, Table* table, SizeResult* out) {
  // Timeline ids are unique across tenants, so each tenant's root has its own.
  std::string tenant = absl::StrCat("branch-", mib, "mb");
  std::string root = absl::StrCat(tenant, "-main");
  if (absl::Status s = server.CreateTenant(tenant, root); !s.ok()) return s;
  absl::StatusOr<uint64_t> gen = server.AcquireWriter(tenant, root);
  if (!gen.ok()) return gen.status();
  uint64_t pages = mib * (1 << 20) / kPageBytes;
  Progress(absl::StrCat("loading ", mib, " MiB into ", root));
  absl::StatusOr<double> secs = LoadPages(server, tenant, root, *gen, kDataIno, 0, pages, kLoaders);
  if (!secs.ok()) return secs.status();
  double start = NowMicros();
  if (absl::Status s = server.RunMaintenance(false); !s.ok()) return s;
  double checkpoint = NowMicros() - start;
  absl::StatusOr<v1::Timeline> info = server.GetTimeline(tenant, root);
  if (!info.ok()) return info.status();

  out->label = FormatBytes(static_cast<double>(info->logical_size()));
  table->Add(absl::StrCat("load ", mib, " MiB (1 MiB commits, ", kLoaders, " loaders)"),
             absl::StrFormat("%.1f s, %.0f MiB/s", *secs, static_cast<double>(mib) / *secs));
  table->Add(absl::StrCat("  then checkpoint"),
             absl::StrCat(FormatMicros(checkpoint), "; parent logical size ", out->label, ", ",
                          info->layer_files(), " layer files"));

  for (int i = 0; i < kBranches; ++i) {
    double t0 = NowMicros();
    absl::StatusOr<v1::Timeline> child =
        server.CreateTimeline(tenant, absl::StrCat(tenant, "-child-", i), root);
    double t1 = NowMicros();
    if (!child.ok()) return child.status();
    out->latency.Add(t1 - t0);
  }
  Latencies& l = out->latency;
  std::string what = absl::StrCat("branch create @ ", out->label, ", ", kBranches, " branches");
  table->Add(absl::StrCat(what, ": p50"), FormatMicros(l.Quantile(0.5)), "<= 10 ms",
             OkIf(l.Quantile(0.5) <= kTargetMicros));
  table->Add(absl::StrCat(what, ": p99"), FormatMicros(l.Quantile(0.99)), "<= 10 ms",
             OkIf(l.Quantile(0.99) <= kTargetMicros));
  table->Add(absl::StrCat(what, ": max"), FormatMicros(l.Max()));
  return absl::OkStatus();
}

}  // namespace

absl::Status RunBranchBench(const BenchConfig& config) {
  std::vector<uint64_t> sizes_mib = {10, config.quick ? 200u : 10240u};
  BenchServer server(config);
  if (absl::Status s = server.Start(); !s.ok()) return s;
  Table table("1. Branch creation latency (CreateTimeline at the parent's head, loopback gRPC)");
  std::vector<SizeResult> results(sizes_mib.size());
  for (size_t i = 0; i < sizes_mib.size(); ++i) {
    if (absl::Status s = MeasureAtSize(server, sizes_mib[i], &table, &results[i]); !s.ok()) {
      return s;
    }
  }
  double small = results.front().latency.Quantile(0.5);
  double large = results.back().latency.Quantile(0.5);
  double ratio = large / small;
  table.Add(absl::StrCat("p50 @ ", results.back().label, " / p50 @ ", results.front().label),
            absl::StrFormat("%.2fx", ratio), "same (<= 1.5x)", OkIf(ratio <= 1.5));
  table.Note(
      "each creation is one durable (fdatasync'd) log record; latency is that of the RPC "
      "as seen by the client");
  table.Print();
  return absl::OkStatus();
}

}  // namespace pgbranch::bench
