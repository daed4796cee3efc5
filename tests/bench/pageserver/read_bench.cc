// Section 2: point-read latency at branch depth 1 and depth 50. DESIGN.md section 7: a read at
// depth 50 costs <= 1.5x one at depth 1 (BranchBench found 5-4000x in other systems).
//
// A root holds the data; a chain of 50 branches each writes a few pages (two new, two overwrites
// of root pages). Reads pick random keys, mostly root pages, so most reads at depth 50 walk the
// whole chain. Measured twice: over loopback gRPC against a real pageserver, and in-process
// against storage::Engine (no RPC, so the walk is a larger share of the time).
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "pageserver/fs/fs_layout.h"
#include "pageserver/storage/engine.h"
#include "tests/bench/pageserver/sections.h"

namespace pgbranch::bench {
namespace {

constexpr int kDepth = 50;
constexpr uint64_t kRootIno = 16384;
constexpr uint64_t kChainIno = 20000;
constexpr char kTenant[] = "read";

// What the measurement needs from a pageserver, over gRPC or in-process.
struct ReadTarget {
  std::function<absl::Status(const std::string& tl, uint64_t gen,
                             const std::vector<std::pair<uint64_t, uint64_t>>& pages)>
      commit;
  std::function<absl::Status(const std::string& child, const std::string& parent)> branch;
  std::function<absl::StatusOr<uint64_t>(const std::string& tl)> acquire;
  std::function<absl::Status()> checkpoint;
  // Reads one key at head; returns whether it was found.
  std::function<absl::StatusOr<bool>(const std::string& tl, const std::string& key)> read;
};

struct DepthResult {
  Latencies depth1, depth50;
};

// Builds root + chain, then alternates blocks of reads at depth 1 and depth 50.
absl::Status Measure(const ReadTarget& t, uint64_t root_pages, size_t reads_per_depth,
                     DepthResult* out) {
  absl::StatusOr<uint64_t> gen = t.acquire("main");
  if (!gen.ok()) return gen.status();
  std::vector<std::pair<uint64_t, uint64_t>> batch;
  for (uint64_t b = 0; b < root_pages; ++b) {
    batch.push_back({kRootIno, b});
    if (batch.size() == kPagesPerCommit || b + 1 == root_pages) {
      if (absl::Status s = t.commit("main", *gen, batch); !s.ok()) return s;
      batch.clear();
    }
  }
  std::mt19937_64 rng(2);
  std::string parent = "main";
  for (int d = 1; d <= kDepth; ++d) {
    std::string name = absl::StrCat("depth-", d);
    if (absl::Status s = t.branch(name, parent); !s.ok()) return s;
    absl::StatusOr<uint64_t> g = t.acquire(name);
    if (!g.ok()) return g.status();
    uint64_t d64 = static_cast<uint64_t>(d);
    batch = {{kChainIno, 2 * d64},
             {kChainIno, 2 * d64 + 1},
             {kRootIno, rng() % root_pages},
             {kRootIno, rng() % root_pages}};
    if (absl::Status s = t.commit(name, *g, batch); !s.ok()) return s;
    parent = name;
  }
  if (absl::Status s = t.checkpoint(); !s.ok()) return s;

  // 90% root pages, 10% pages the chain wrote (absent at depth 1 for deeper branches).
  std::vector<std::string> keys(8192);
  for (std::string& k : keys) {
    k = rng() % 10 == 0 ? fs::PageKey(kChainIno, rng() % (2 * kDepth + 2))
                        : fs::PageKey(kRootIno, rng() % root_pages);
  }
  const std::string shallow = "depth-1", deep = absl::StrCat("depth-", kDepth);
  size_t next_key = 0;
  auto run = [&](const std::string& tl, size_t n, Latencies* lat) -> absl::Status {
    for (size_t i = 0; i < n; ++i) {
      const std::string& key = keys[next_key++ % keys.size()];
      double t0 = NowMicros();
      absl::StatusOr<bool> found = t.read(tl, key);
      double t1 = NowMicros();
      if (!found.ok()) return found.status();
      if (lat != nullptr) lat->Add(t1 - t0);
    }
    return absl::OkStatus();
  };
  // Warm up both (page cache, connections), then interleave so drift hits both alike.
  if (absl::Status s = run(shallow, 2000, nullptr); !s.ok()) return s;
  if (absl::Status s = run(deep, 2000, nullptr); !s.ok()) return s;
  const size_t block = 1000;
  for (size_t done = 0; done < reads_per_depth; done += block) {
    next_key = done;
    if (absl::Status s = run(shallow, block, &out->depth1); !s.ok()) return s;
    next_key = done;
    if (absl::Status s = run(deep, block, &out->depth50); !s.ok()) return s;
  }
  return absl::OkStatus();
}

void Report(const std::string& how, DepthResult& r, Table* table) {
  auto row = [&](const char* depth, Latencies& l) {
    table->Add(absl::StrCat(how, ", depth ", depth, " (", l.count(), " reads): p50 / p99 / mean"),
               absl::StrCat(FormatMicros(l.Quantile(0.5)), " / ", FormatMicros(l.Quantile(0.99)),
                            " / ", FormatMicros(l.Mean())));
  };
  row("1", r.depth1);
  row("50", r.depth50);
  double p50 = r.depth50.Quantile(0.5) / r.depth1.Quantile(0.5);
  double p99 = r.depth50.Quantile(0.99) / r.depth1.Quantile(0.99);
  double mean = r.depth50.Mean() / r.depth1.Mean();
  table->Add(absl::StrCat(how, ": depth 50 / depth 1, p50"), absl::StrFormat("%.2fx", p50),
             "<= 1.5x", OkIf(p50 <= 1.5));
  table->Add(absl::StrCat(how, ": depth 50 / depth 1, mean"), absl::StrFormat("%.2fx", mean),
             "<= 1.5x", OkIf(mean <= 1.5));
  table->Add(absl::StrCat(how, ": depth 50 / depth 1, p99"), absl::StrFormat("%.2fx", p99));
}

ReadTarget GrpcTarget(BenchServer* server) {
  static const PageSource* source = new PageSource();
  ReadTarget t;
  v1::PageService::Stub* stub = server->stub();
  t.commit = [stub](const std::string& tl, uint64_t gen,
                    const std::vector<std::pair<uint64_t, uint64_t>>& pages) {
    v1::CommitRequest req;
    req.set_tenant_id(kTenant);
    req.set_timeline_id(tl);
    req.set_generation(gen);
    for (const auto& [ino, block] : pages) {
      v1::Mutation* m = req.add_mutations();
      m->set_key(fs::PageKey(ino, block));
      m->set_value(source->Page(ino, block));
    }
    v1::CommitResponse resp;
    grpc::ClientContext ctx;
    return FromGrpc(stub->Commit(&ctx, req, &resp));
  };
  t.branch = [server](const std::string& child, const std::string& parent) {
    return server->CreateTimeline(kTenant, child, parent).status();
  };
  t.acquire = [server](const std::string& tl) { return server->AcquireWriter(kTenant, tl); };
  t.checkpoint = [server] { return server->RunMaintenance(false); };
  t.read = [stub](const std::string& tl, const std::string& key) -> absl::StatusOr<bool> {
    v1::ReadRequest req;
    req.set_tenant_id(kTenant);
    req.set_timeline_id(tl);
    req.add_keys(key);
    v1::ReadResponse resp;
    grpc::ClientContext ctx;
    absl::Status s = FromGrpc(stub->Read(&ctx, req, &resp));
    if (!s.ok()) return s;
    return resp.values_size() == 1 && resp.values(0).found();
  };
  return t;
}

ReadTarget EngineTarget(storage::Engine* engine) {
  static const PageSource* source = new PageSource();
  ReadTarget t;
  t.commit = [engine](const std::string& tl, uint64_t gen,
                      const std::vector<std::pair<uint64_t, uint64_t>>& pages) {
    std::vector<storage::Mutation> muts;
    for (const auto& [ino, block] : pages) {
      muts.push_back({fs::PageKey(ino, block), source->Page(ino, block), false});
    }
    return engine->Commit(kTenant, tl, gen, std::move(muts)).status();
  };
  t.branch = [engine](const std::string& child, const std::string& parent) {
    storage::CreateTimelineOptions o;
    o.tenant_id = kTenant;
    o.timeline_id = child;
    o.ancestor_id = parent;
    return engine->CreateTimeline(o).status();
  };
  t.acquire = [engine](const std::string& tl) { return engine->AcquireWriter(kTenant, tl); };
  t.checkpoint = [engine] { return engine->Checkpoint(); };
  t.read = [engine](const std::string& tl, const std::string& key) -> absl::StatusOr<bool> {
    absl::StatusOr<storage::ReadResult> r = engine->Read(kTenant, tl, 0, {key});
    if (!r.ok()) return r.status();
    return r->values.size() == 1 && r->values[0].found;
  };
  return t;
}

}  // namespace

absl::Status RunReadBench(const BenchConfig& config) {
  uint64_t root_pages = config.quick ? 10'000 : 20'000;
  size_t grpc_reads = config.quick ? 20'000 : 100'000;
  size_t engine_reads = config.quick ? 100'000 : 500'000;
  Table table(absl::StrCat("2. Point reads at branch depth 1 vs 50 (root of ", root_pages,
                           " pages of 8 KiB, in layer files; single-key reads, one client)"));

  DepthResult grpc_result;
  {
    BenchServer server(config);
    if (absl::Status s = server.Start(); !s.ok()) return s;
    if (absl::Status s = server.CreateTenant(kTenant, "main"); !s.ok()) return s;
    absl::Status s = Measure(GrpcTarget(&server), root_pages, grpc_reads, &grpc_result);
    if (!s.ok()) return s;
  }
  Report("gRPC Read", grpc_result, &table);

  DepthResult engine_result;
  {
    ScratchDir dir(config.base_dir);
    storage::EngineOptions options;
    options.data_dir = dir.path() + "/engine";
    options.background_maintenance = false;
    options.checkpoint_on_close = false;
    absl::StatusOr<std::unique_ptr<storage::Engine>> engine = storage::Engine::Open(options);
    if (!engine.ok()) return engine.status();
    if (absl::Status s = (*engine)->CreateTenant(kTenant, "main").status(); !s.ok()) return s;
    absl::Status s = Measure(EngineTarget(engine->get()), root_pages, engine_reads, &engine_result);
    if (!s.ok()) return s;
  }
  Report("in-process Engine::Read", engine_result, &table);
  table.Note(
      "~90% of keys are root pages (a depth-50 read walks 50 ancestors: one hash probe each), "
      "~10% pages written along the chain");
  table.Print();
  return absl::OkStatus();
}

}  // namespace pgbranch::bench
