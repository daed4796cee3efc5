#include "tests/bench/pageserver/bench_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/frame_io.h"
#include "pageserver/fs/fs_layout.h"

namespace pgbranch::bench {

using bench_common::FilesystemOf;
using bench_common::FirstMatch;

void Table::Add(std::string what, std::string value, std::string target, std::string ok) {
  rows_.push_back({std::move(what), std::move(value), std::move(target), std::move(ok)});
}

void Table::Print() const {
  bench_common::PrintTable(title_, {"what", "value", "target", "ok?"}, rows_, notes_);
}

void Latencies::Append(const Latencies& other) {
  samples_.insert(samples_.end(), other.samples_.begin(), other.samples_.end());
  sorted_ = false;
}

double Latencies::Quantile(double q) {
  if (samples_.empty()) return 0;
  if (!sorted_) {
    std::sort(samples_.begin(), samples_.end());
    sorted_ = true;
  }
  size_t i = static_cast<size_t>(q * static_cast<double>(samples_.size() - 1) + 0.5);
  return samples_[std::min(i, samples_.size() - 1)];
}

double Latencies::Mean() const {
  if (samples_.empty()) return 0;
  double sum = 0;
  for (double s : samples_) sum += s;
  return sum / static_cast<double>(samples_.size());
}

double Latencies::Max() { return Quantile(1.0); }

void Progress(const std::string& line) { std::cerr << "[pageserver-bench] " << line << std::endl; }

std::string FormatMicros(double us) {
  if (us < 1000) return absl::StrFormat("%.1f us", us);
  if (us < 1e6) return absl::StrFormat("%.2f ms", us / 1e3);
  return absl::StrFormat("%.2f s", us / 1e6);
}

std::string FormatBytes(double bytes) {
  if (bytes < 0) return absl::StrCat("-", FormatBytes(-bytes));
  if (bytes < 1024) return absl::StrFormat("%.0f B", bytes);
  if (bytes < (1 << 20)) return absl::StrFormat("%.1f KiB", bytes / 1024);
  if (bytes < (1ull << 30)) return absl::StrFormat("%.2f MiB", bytes / (1 << 20));
  return absl::StrFormat("%.2f GiB", bytes / (1ull << 30));
}

double NowMicros() {
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

ScratchDir::ScratchDir(const std::string& base) {
  std::string tmpl = base + "/pgbranch-bench-XXXXXX";
  char* p = mkdtemp(tmpl.data());
  path_ = p != nullptr ? std::string(p) : base + "/pgbranch-bench-fallback";
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec)) total += it->file_size(fec);
  }
  return total;
}

std::string DirBreakdown(const std::string& dir) {
  std::vector<std::string> parts;
  std::error_code ec;
  std::vector<std::filesystem::directory_entry> entries;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    entries.push_back(*it);
  }
  std::sort(entries.begin(), entries.end());
  for (const auto& e : entries) {
    std::string name = e.path().filename().string();
    std::error_code fec;
    if (e.is_directory(fec)) {
      size_t files = 0;
      for (auto it = std::filesystem::directory_iterator(e.path(), fec);
           !fec && it != std::filesystem::directory_iterator(); it.increment(fec)) {
        ++files;
      }
      parts.push_back(absl::StrCat(name, "/ ", FormatBytes(static_cast<double>(DirBytes(e.path()))),
                                   " in ", files, " files"));
    } else {
      parts.push_back(absl::StrCat(name, " ", FormatBytes(static_cast<double>(e.file_size(fec)))));
    }
  }
  std::string out;
  for (const std::string& p : parts) absl::StrAppend(&out, out.empty() ? "" : ", ", p);
  return out;
}

namespace {}  // namespace

std::string MachineInfo(const std::string& dir) {
  utsname u{};
  uname(&u);
  return absl::StrCat("machine: ", std::thread::hardware_concurrency(), " cpus (",
                      FirstMatch("/proc/cpuinfo", "model name"), "), memory ",
                      FirstMatch("/proc/meminfo", "MemTotal"), ", kernel ", u.release,
                      ", data dir ", dir, " (", FilesystemOf(dir), ")");
}

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

namespace {

void SetDeadline(grpc::ClientContext* ctx, int seconds) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
}

}  // namespace

BenchServer::BenchServer(const BenchConfig& config, std::vector<std::string> extra_args)
    : dir_(config.base_dir), data_dir_(dir_.path() + "/data") {
  process_ = std::make_unique<testing::PageserverProcess>(data_dir_, std::move(extra_args));
}

absl::Status BenchServer::Start() {
  absl::Status s = process_->Start();
  if (!s.ok()) return s;
  stub_ = process_->NewStub();
  return absl::OkStatus();
}

absl::Status BenchServer::CreateTenant(const std::string& tenant, const std::string& root) {
  v1::CreateTenantRequest req;
  req.set_tenant_id(tenant);
  req.set_root_timeline_id(root);
  v1::Tenant resp;
  grpc::ClientContext ctx;
  SetDeadline(&ctx, 60);
  return FromGrpc(stub_->CreateTenant(&ctx, req, &resp));
}

absl::StatusOr<v1::Timeline> BenchServer::CreateTimeline(const std::string& tenant,
                                                         const std::string& id,
                                                         const std::string& ancestor) {
  v1::CreateTimelineRequest req;
  req.set_tenant_id(tenant);
  req.set_timeline_id(id);
  req.set_ancestor_timeline_id(ancestor);
  v1::Timeline resp;
  grpc::ClientContext ctx;
  SetDeadline(&ctx, 60);
  absl::Status s = FromGrpc(stub_->CreateTimeline(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<v1::Timeline> BenchServer::GetTimeline(const std::string& tenant,
                                                      const std::string& id) {
  v1::GetTimelineRequest req;
  req.set_tenant_id(tenant);
  req.set_timeline_id(id);
  v1::Timeline resp;
  grpc::ClientContext ctx;
  SetDeadline(&ctx, 60);
  absl::Status s = FromGrpc(stub_->GetTimeline(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<uint64_t> BenchServer::AcquireWriter(const std::string& tenant,
                                                    const std::string& timeline) {
  v1::AcquireWriterRequest req;
  req.set_tenant_id(tenant);
  req.set_timeline_id(timeline);
  v1::AcquireWriterResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(&ctx, 60);
  absl::Status s = FromGrpc(stub_->AcquireWriter(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp.generation();
}

absl::Status BenchServer::RunMaintenance(bool gc) {
  v1::RunMaintenanceRequest req;
  req.set_gc(gc);
  v1::RunMaintenanceResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(&ctx, 3600);
  return FromGrpc(stub_->RunMaintenance(&ctx, req, &resp));
}

PageSource::PageSource() {
  std::mt19937_64 rng(7);
  pool_.resize(16 << 20);
  for (size_t i = 0; i + 8 <= pool_.size(); i += 8) {
    uint64_t r = rng();
    memcpy(&pool_[i], &r, 8);
  }
}

std::string PageSource::Page(uint64_t ino, uint64_t block) const {
  size_t slots = (pool_.size() - kPageBytes) / 64;
  size_t offset = ((ino * 1000003 + block) * 2654435761u % slots) * 64;
  std::string page = pool_.substr(offset, kPageBytes);
  memcpy(&page[0], &ino, 8);
  memcpy(&page[8], &block, 8);
  return page;
}

absl::StatusOr<double> LoadBlocks(const BenchServer& server, const std::string& tenant,
                                  const std::string& timeline, uint64_t generation, uint64_t ino,
                                  const std::vector<uint64_t>& blocks, int loaders) {
  static const PageSource* source = new PageSource();
  std::atomic<size_t> next{0};
  std::mutex mu;
  absl::Status first_error;
  double start = NowMicros();
  std::vector<std::thread> threads;
  for (int t = 0; t < loaders; ++t) {
    threads.emplace_back([&] {
      std::unique_ptr<v1::PageService::Stub> stub = server.NewStub();
      while (true) {
        size_t begin = next.fetch_add(kPagesPerCommit);
        if (begin >= blocks.size()) return;
        size_t end = std::min(blocks.size(), begin + kPagesPerCommit);
        v1::CommitRequest req;
        req.set_tenant_id(tenant);
        req.set_timeline_id(timeline);
        req.set_generation(generation);
        for (size_t i = begin; i < end; ++i) {
          v1::Mutation* m = req.add_mutations();
          m->set_key(fs::PageKey(ino, blocks[i]));
          m->set_value(source->Page(ino, blocks[i]));
        }
        v1::CommitResponse resp;
        grpc::ClientContext ctx;
        SetDeadline(&ctx, 600);
        absl::Status s = FromGrpc(stub->Commit(&ctx, req, &resp));
        if (!s.ok()) {
          std::lock_guard<std::mutex> l(mu);
          if (first_error.ok()) first_error = s;
          next = blocks.size();
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  if (!first_error.ok()) return first_error;
  return (NowMicros() - start) / 1e6;
}

absl::StatusOr<double> LoadPages(const BenchServer& server, const std::string& tenant,
                                 const std::string& timeline, uint64_t generation, uint64_t ino,
                                 uint64_t first, uint64_t count, int loaders) {
  std::vector<uint64_t> blocks(count);
  for (uint64_t i = 0; i < count; ++i) blocks[i] = first + i;
  return LoadBlocks(server, tenant, timeline, generation, ino, blocks, loaders);
}

absl::StatusOr<int> ConnectCommitChannel(const std::string& path, int sndbuf_bytes) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket");
  if (sndbuf_bytes > 0)
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf_bytes, sizeof(sndbuf_bytes));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("connect ", path, ": ", std::strerror(errno)));
  }
  std::string hello;
  AppendFrame(kCommitHello, &hello);
  if (!WriteAll(fd, hello)) {
    ::close(fd);
    return absl::UnavailableError("hello");
  }
  return fd;
}

}  // namespace pgbranch::bench
