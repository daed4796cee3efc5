// Section 5: bulk commits over the commit channel (--commit-socket), as a pagefs mount makes
// them during a bulk load: 4 MiB commits of 512 pages sent without waiting, at most 64 MiB
// unanswered, one connection; and a 1-page commit (a WAL fsync's) every 8th request, whose
// latency -- send to durable answer, behind the bulk queued before it -- is what an fsync waits.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/frame_io.h"
#include "pageserver/fs/fs_layout.h"
#include "tests/bench/pageserver/sections.h"

namespace pgbranch::bench {
namespace {

constexpr char kTenant[] = "channel";
constexpr uint64_t kBulkPages = 512;
constexpr uint64_t kMaxInflightBytes = 64ull << 20;

struct ChannelResult {
  Latencies bulk, small;
  uint64_t bulk_commits = 0;
  double seconds = 0;
};

absl::Status RunChannel(const std::string& socket, const std::string& timeline, uint64_t generation,
                        bool with_small, double seconds, ChannelResult* out) {
  static const PageSource* source = new PageSource();
  std::mt19937_64 rng(7);
  auto frame = [&](uint64_t first, uint64_t pages) {
    v1::CommitRequest req;
    req.set_tenant_id(kTenant);
    req.set_timeline_id(timeline);
    req.set_generation(generation);
    for (uint64_t b = first; b < first + pages; ++b) {
      v1::Mutation* m = req.add_mutations();
      m->set_key(fs::PageKey(200, b));
      m->set_value(source->Page(200, b + rng() % 7));
    }
    std::string f;
    AppendFrame(req.SerializeAsString(), &f);
    return f;
  };
  std::vector<std::string> bulk;
  for (int i = 0; i < 4; ++i) bulk.push_back(frame(i * kBulkPages, kBulkPages));
  std::string small = frame(1u << 20, 1);

  absl::StatusOr<int> fd = ConnectCommitChannel(socket, 16 << 20);
  if (!fd.ok()) return fd.status();
  struct Sent {
    double at;
    uint64_t bytes;
    bool small;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Sent> sent;
  uint64_t inflight = 0;
  bool reader_done = false;
  std::string error;
  std::thread reader([&] {
    FrameReader in(*fd);
    std::string_view f;
    while (in.Next(/*block=*/true, &f).ok()) {
      v1::CommitResponse resp;
      double now = NowMicros();
      std::lock_guard<std::mutex> lock(mu);
      if (!resp.ParseFromArray(f.data(), static_cast<int>(f.size())) || resp.error_code() != 0 ||
          sent.empty()) {
        error = resp.error_message().empty() ? "bad answer" : resp.error_message();
        break;
      }
      (sent.front().small ? out->small : out->bulk).Add(now - sent.front().at);
      if (!sent.front().small) ++out->bulk_commits;
      inflight -= sent.front().bytes;
      sent.pop_front();
      cv.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu);
    reader_done = true;
    cv.notify_all();
  });
  double start = NowMicros(), end_at = start + seconds * 1e6;
  for (size_t i = 0; NowMicros() < end_at; ++i) {
    const std::string& f = with_small && i % 8 == 7 ? small : bulk[i % bulk.size()];
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] {
        return reader_done || sent.empty() || inflight + f.size() <= kMaxInflightBytes;
      });
      if (reader_done) break;
      sent.push_back({NowMicros(), f.size(), &f == &small});
      inflight += f.size();
    }
    if (!WriteAll(*fd, f)) break;
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return reader_done || sent.empty(); });
  }
  out->seconds = (NowMicros() - start) / 1e6;
  ::shutdown(*fd, SHUT_RDWR);
  reader.join();
  ::close(*fd);
  if (!error.empty()) return absl::InternalError(error);
  return absl::OkStatus();
}

}  // namespace

absl::Status RunChannelBench(const BenchConfig& config) {
  double seconds = config.quick ? 3.0 : 10.0;
  ScratchDir sock_dir(config.base_dir);
  std::string socket = sock_dir.path() + "/pc.sock";
  BenchServer server(config, {"--commit-socket", socket});
  if (absl::Status s = server.Start(); !s.ok()) return s;
  if (absl::Status s = server.CreateTenant(kTenant, "main"); !s.ok()) return s;
  absl::StatusOr<uint64_t> gen = server.AcquireWriter(kTenant, "main");
  if (!gen.ok()) return gen.status();

  Table table(
      absl::StrCat("5. Bulk commits over the commit channel (4 MiB commits, <= 64 MiB in "
                   "flight, one connection; ",
                   seconds, " s per row)"));
  ChannelResult warm;
  if (absl::Status s = RunChannel(socket, "main", *gen, false, 0.5, &warm); !s.ok()) return s;
  for (bool with_small : {false, true}) {
    ChannelResult r;
    if (absl::Status s = RunChannel(socket, "main", *gen, with_small, seconds, &r); !s.ok()) {
      return s;
    }
    double mib = static_cast<double>(r.bulk_commits * kBulkPages * kPageBytes) / (1 << 20);
    std::string what = with_small ? "bulk + a 1-page commit every 8th" : "bulk only";
    table.Add(absl::StrCat(what, ": bulk throughput"),
              absl::StrFormat("%.1f MiB/s", mib / r.seconds));
    table.Add(absl::StrCat(what, ": 4 MiB commit latency p50 / p99"),
              absl::StrCat(FormatMicros(r.bulk.Quantile(0.5)), " / ",
                           FormatMicros(r.bulk.Quantile(0.99))));
    if (with_small) {
      table.Add(absl::StrCat(what, ": 1-page commit latency p50 / p99"),
                absl::StrCat(FormatMicros(r.small.Quantile(0.5)), " / ",
                             FormatMicros(r.small.Quantile(0.99))));
    }
  }
  table.Note("latency = send to durable answer, behind everything sent before it");
  table.Print();
  return absl::OkStatus();
}

}  // namespace pgbranch::bench
