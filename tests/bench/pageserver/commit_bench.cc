// Section 3: commit latency and throughput of 8 KiB pages, by batch size (1, 16, 128 pages) and
// by concurrency (1 and 8 writers, each on its own branch with its own connection). Every commit
// is durable before its reply; concurrent commits share log writes and fdatasyncs (group
// commit), which the fdatasync-per-commit column shows (from the server's metrics).
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "pageserver/fs/fs_layout.h"
#include "tests/bench/pageserver/sections.h"

namespace pgbranch::bench {
namespace {

constexpr char kTenant[] = "commit";
constexpr int kMaxWriters = 8;
constexpr uint64_t kPagesPerWriter = 8192;  // each writer overwrites pages of its own file
constexpr int kRequestsPerWriter = 16;

struct RunResult {
  Latencies latency;
  uint64_t commits = 0;
  double seconds = 0;
};

// `writers` threads commit `batch`-page batches to their own branches for `seconds`.
absl::Status RunConfig(const BenchServer& server, const std::vector<uint64_t>& generations,
                       int writers, uint64_t batch, double seconds, RunResult* out) {
  static const PageSource* source = new PageSource();
  std::vector<RunResult> per(static_cast<size_t>(writers));
  std::vector<absl::Status> errors(static_cast<size_t>(writers));
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  double end_at = 0;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      std::unique_ptr<v1::PageService::Stub> stub = server.NewStub();
      std::mt19937_64 rng(static_cast<uint64_t>(w) * 7 + batch);
      std::vector<v1::CommitRequest> reqs(kRequestsPerWriter);
      uint64_t ino = 100 + static_cast<uint64_t>(w);
      for (v1::CommitRequest& req : reqs) {
        req.set_tenant_id(kTenant);
        req.set_timeline_id(absl::StrCat("w", w));
        req.set_generation(generations[static_cast<size_t>(w)]);
        uint64_t first = rng() % (kPagesPerWriter - batch + 1);
        for (uint64_t b = first; b < first + batch; ++b) {
          v1::Mutation* m = req.add_mutations();
          m->set_key(fs::PageKey(ino, b));
          m->set_value(source->Page(ino, b + rng() % 7));
        }
      }
      ++ready;
      while (!go) std::this_thread::yield();
      RunResult& r = per[static_cast<size_t>(w)];
      double start = NowMicros();
      for (size_t i = 0; NowMicros() < end_at; ++i) {
        v1::CommitResponse resp;
        grpc::ClientContext ctx;
        double t0 = NowMicros();
        absl::Status s = FromGrpc(stub->Commit(&ctx, reqs[i % reqs.size()], &resp));
        double t1 = NowMicros();
        if (!s.ok()) {
          errors[static_cast<size_t>(w)] = s;
          return;
        }
        r.latency.Add(t1 - t0);
        ++r.commits;
      }
      r.seconds = (NowMicros() - start) / 1e6;
    });
  }
  while (ready < writers) std::this_thread::yield();
  end_at = NowMicros() + seconds * 1e6;
  go = true;
  for (auto& t : threads) t.join();
  for (const absl::Status& s : errors) {
    if (!s.ok()) return s;
  }
  for (const RunResult& r : per) {
    out->latency.Append(r.latency);
    out->commits += r.commits;
    out->seconds = std::max(out->seconds, r.seconds);
  }
  return absl::OkStatus();
}

// Commit groups (= log writes = fdatasyncs of commits) so far, once the server's metrics show
// `commits` commits (they are refreshed every 2 s); -1 if the metrics cannot be read.
double GroupsAfter(int port, uint64_t commits) {
  if (port <= 0) return -1;
  for (int attempt = 0; attempt < 50; ++attempt) {
    absl::StatusOr<std::string> text = HttpGet(port, "/metrics");
    if (text.ok()) {
      double c = MetricValue(*text, "pgbranch_pageserver_commits_total");
      double g = MetricValue(*text, "pgbranch_pageserver_commit_groups_total");
      if (c >= static_cast<double>(commits) && g >= 0) return g;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return -1;
}

// One writer pipelines `batch`-page commits over CommitStream for `seconds`, at most `depth`
// unanswered; latency = send to answer. Unimplemented (an older pageserver) comes back as such.
absl::Status RunStream(const BenchServer& server, uint64_t generation, uint64_t batch, int depth,
                       double seconds, RunResult* out) {
  static const PageSource* source = new PageSource();
  std::unique_ptr<v1::PageService::Stub> stub = server.NewStub();
  std::mt19937_64 rng(batch);
  std::vector<v1::CommitRequest> reqs(kRequestsPerWriter);
  for (v1::CommitRequest& req : reqs) {
    req.set_tenant_id(kTenant);
    req.set_timeline_id("w0");
    req.set_generation(generation);
    uint64_t first = rng() % (kPagesPerWriter - batch + 1);
    for (uint64_t b = first; b < first + batch; ++b) {
      v1::Mutation* m = req.add_mutations();
      m->set_key(fs::PageKey(100, b));
      m->set_value(source->Page(100, b + rng() % 7));
    }
  }
  grpc::ClientContext ctx;
  auto stream = stub->CommitStream(&ctx);
  std::mutex mu;
  std::condition_variable cv;
  std::deque<double> sent;  // send times of the unanswered requests
  bool reader_done = false;
  std::thread reader([&] {
    v1::CommitResponse resp;
    while (stream->Read(&resp)) {
      double now = NowMicros();
      std::lock_guard<std::mutex> lock(mu);
      if (sent.empty()) break;
      out->latency.Add(now - sent.front());
      sent.pop_front();
      ++out->commits;
      cv.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu);
    reader_done = true;
    cv.notify_all();
  });
  double start = NowMicros(), end_at = start + seconds * 1e6;
  for (size_t i = 0; NowMicros() < end_at; ++i) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return reader_done || static_cast<int>(sent.size()) < depth; });
      if (reader_done) break;
      sent.push_back(NowMicros());
    }
    if (!stream->Write(reqs[i % reqs.size()])) break;
  }
  stream->WritesDone();
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return reader_done || sent.empty(); });
  }
  reader.join();
  out->seconds = (NowMicros() - start) / 1e6;
  return FromGrpc(stream->Finish());
}

}  // namespace

absl::Status RunCommitBench(const BenchConfig& config) {
  double seconds = config.quick ? 1.5 : 5.0;
  absl::StatusOr<int> metrics_port = FreeLoopbackPort();
  std::vector<std::string> args;
  if (metrics_port.ok()) {
    args = {"--metrics-listen", absl::StrCat("127.0.0.1:", *metrics_port)};
  }
  BenchServer server(config, args);
  if (absl::Status s = server.Start(); !s.ok()) return s;
  if (absl::Status s = server.CreateTenant(kTenant, "main"); !s.ok()) return s;
  std::vector<uint64_t> generations;
  for (int w = 0; w < kMaxWriters; ++w) {
    std::string tl = absl::StrCat("w", w);
    if (absl::Status s = server.CreateTimeline(kTenant, tl, "main").status(); !s.ok()) return s;
    absl::StatusOr<uint64_t> gen = server.AcquireWriter(kTenant, tl);
    if (!gen.ok()) return gen.status();
    generations.push_back(*gen);
  }
  int port = metrics_port.ok() ? *metrics_port : -1;

  Table table(
      absl::StrCat("3. Commit latency and throughput (8 KiB pages, durable before the "
                   "reply; ",
                   seconds, " s per row)"));
  uint64_t total_commits = 0;
  // Warm-up: connections, allocator, log segment.
  RunResult warm;
  if (absl::Status s = RunConfig(server, generations, kMaxWriters, 16, 0.3, &warm); !s.ok()) {
    return s;
  }
  total_commits += warm.commits;
  double groups_before = GroupsAfter(port, total_commits);
  for (int writers : {1, kMaxWriters}) {
    for (uint64_t batch : {1u, 16u, 128u}) {
      RunResult r;
      if (absl::Status s = RunConfig(server, generations, writers, batch, seconds, &r); !s.ok()) {
        return s;
      }
      total_commits += r.commits;
      double groups = GroupsAfter(port, total_commits);
      std::string syncs = "n/a";
      if (groups >= 0 && groups_before >= 0 && r.commits > 0) {
        double per = (groups - groups_before) / static_cast<double>(r.commits);
        syncs = absl::StrFormat("%.3f", per);
      }
      groups_before = groups;
      double rate = static_cast<double>(r.commits) / r.seconds;
      double mib = rate * static_cast<double>(batch * kPageBytes) / (1 << 20);
      std::string what = absl::StrCat(batch, batch == 1 ? " page" : " pages", " x ", writers,
                                      writers == 1 ? " writer" : " writers");
      table.Add(absl::StrCat(what, ": latency p50 / p99"),
                absl::StrCat(FormatMicros(r.latency.Quantile(0.5)), " / ",
                             FormatMicros(r.latency.Quantile(0.99))));
      table.Add(absl::StrCat(what, ": throughput, fdatasync/commit"),
                absl::StrFormat("%.0f commits/s, %.1f MiB/s, %s", rate, mib, syncs));
    }
  }
  // Pipelined commits over one stream (what a pagefs mount does), one writer.
  // 1 in flight: the stream's own latency, comparable with the unary 1-writer row.
  const std::pair<uint64_t, int> kStreamRows[] = {{1, 1}, {1, 64}, {16, 64}};
  for (const auto& [batch, depth] : kStreamRows) {
    RunResult r;
    absl::Status s = RunStream(server, generations[0], batch, depth, seconds, &r);
    std::string what = absl::StrCat("CommitStream, ", batch, batch == 1 ? " page" : " pages",
                                    " x 1 writer, ", depth, " in flight");
    if (absl::IsUnimplemented(s)) {
      table.Add(what, "n/a (this pageserver has no CommitStream)");
      continue;
    }
    if (!s.ok()) return s;
    total_commits += r.commits;
    double groups = GroupsAfter(port, total_commits);
    std::string syncs = "n/a";
    if (groups >= 0 && groups_before >= 0 && r.commits > 0) {
      syncs = absl::StrFormat("%.3f", (groups - groups_before) / static_cast<double>(r.commits));
    }
    groups_before = groups;
    double rate = static_cast<double>(r.commits) / r.seconds;
    table.Add(absl::StrCat(what, ": latency p50 / p99"),
              absl::StrCat(FormatMicros(r.latency.Quantile(0.5)), " / ",
                           FormatMicros(r.latency.Quantile(0.99))));
    table.Add(absl::StrCat(what, ": throughput, fdatasync/commit"),
              absl::StrFormat("%.0f commits/s, %.1f MiB/s, %s", rate,
                              rate * static_cast<double>(batch * kPageBytes) / (1 << 20), syncs));
  }
  table.Note(
      "CommitStream rows: one bidirectional stream, requests sent without waiting for answers "
      "(at most 1 or 64 unanswered), latency = send to durable answer; compare with the 1-writer "
      "unary rows above");
  table.Note(
      "fdatasync/commit = commit groups / commits from pgbranch_pageserver_commit_groups_total "
      "(one log write and one fdatasync per group)");
  table.Print();
  return absl::OkStatus();
}

}  // namespace pgbranch::bench
