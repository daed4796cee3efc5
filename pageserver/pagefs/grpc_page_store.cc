#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "pageserver/pagefs/page_store.h"
#include "pageserver/proto/pageserver.grpc.pb.h"

namespace pgbranch::pagefs {
namespace {

namespace v1 = ::pgbranch::pageserver::v1;

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

class GrpcPageStore : public PageStore {
 public:
  explicit GrpcPageStore(const GrpcPageStoreOptions& o) : options_(o) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(128 << 20);
    args.SetMaxSendMessageSize(128 << 20);
    std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
    if (!o.tls_ca_pem.empty()) {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = o.tls_ca_pem;
      creds = grpc::SslCredentials(ssl);
    }
    stub_ = v1::PageService::NewStub(grpc::CreateCustomChannel(o.address, creds, args));
  }

  absl::StatusOr<std::vector<std::optional<std::string>>> Read(
      uint64_t lsn, const std::vector<std::string>& keys) override {
    v1::ReadRequest req;
    req.set_tenant_id(options_.tenant_id);
    req.set_timeline_id(options_.timeline_id);
    req.set_lsn(lsn);
    for (const auto& k : keys) req.add_keys(k);
    v1::ReadResponse resp;
    auto ctx = Context();
    auto start = std::chrono::steady_clock::now();
    absl::Status s = FromGrpc(stub_->Read(ctx.get(), req, &resp));
    Observe("read", start, keys.size());
    if (!s.ok()) return s;
    std::vector<std::optional<std::string>> out(keys.size());
    for (int i = 0; i < resp.values_size() && i < static_cast<int>(keys.size()); ++i) {
      if (resp.values(i).found()) out[i] = std::move(*resp.mutable_values(i)->mutable_data());
    }
    return out;
  }

  absl::StatusOr<ScanPage> Scan(uint64_t lsn, const std::string& start, const std::string& end,
                                uint32_t limit) override {
    return DoScan(lsn, start, end, limit, false);
  }

  absl::StatusOr<ScanPage> ScanKeys(uint64_t lsn, const std::string& start, const std::string& end,
                                    uint32_t limit) override {
    return DoScan(lsn, start, end, limit, true);
  }

  absl::StatusOr<uint64_t> Commit(uint64_t generation,
                                  const std::vector<PageMutation>& mutations) override {
    v1::CommitRequest req;
    req.set_tenant_id(options_.tenant_id);
    req.set_timeline_id(options_.timeline_id);
    req.set_generation(generation);
    for (const auto& m : mutations) {
      v1::Mutation* pm = req.add_mutations();
      pm->set_key(m.key);
      if (m.tombstone) {
        pm->set_tombstone(true);
      } else {
        pm->set_value(m.value);
      }
    }
    v1::CommitResponse resp;
    auto ctx = Context();
    absl::Status s = FromGrpc(stub_->Commit(ctx.get(), req, &resp));
    if (!s.ok()) return s;
    return resp.lsn();
  }

  absl::StatusOr<uint64_t> AcquireWriter() override {
    v1::AcquireWriterRequest req;
    req.set_tenant_id(options_.tenant_id);
    req.set_timeline_id(options_.timeline_id);
    v1::AcquireWriterResponse resp;
    auto ctx = Context();
    absl::Status s = FromGrpc(stub_->AcquireWriter(ctx.get(), req, &resp));
    if (!s.ok()) return s;
    return resp.generation();
  }

  absl::StatusOr<uint64_t> LsnForTimestamp(int64_t micros) override {
    v1::LsnForTimestampRequest req;
    req.set_tenant_id(options_.tenant_id);
    req.set_timeline_id(options_.timeline_id);
    req.set_time_micros(micros);
    v1::LsnForTimestampResponse resp;
    auto ctx = Context();
    absl::Status s = FromGrpc(stub_->LsnForTimestamp(ctx.get(), req, &resp));
    if (!s.ok()) return s;
    return resp.lsn();
  }

  absl::StatusOr<uint64_t> HeadLsn() override {
    v1::GetTimelineRequest req;
    req.set_tenant_id(options_.tenant_id);
    req.set_timeline_id(options_.timeline_id);
    v1::Timeline resp;
    auto ctx = Context();
    absl::Status s = FromGrpc(stub_->GetTimeline(ctx.get(), req, &resp));
    if (!s.ok()) return s;
    return resp.head_lsn();
  }

 private:
  absl::StatusOr<ScanPage> DoScan(uint64_t lsn, const std::string& start, const std::string& end,
                                  uint32_t limit, bool keys_only) {
    v1::ScanRequest req;
    req.set_tenant_id(options_.tenant_id);
    req.set_timeline_id(options_.timeline_id);
    req.set_lsn(lsn);
    req.set_start(start);
    req.set_end(end);
    req.set_limit(limit);
    req.set_keys_only(keys_only);
    v1::ScanResponse resp;
    auto ctx = Context();
    auto started = std::chrono::steady_clock::now();
    absl::Status s = FromGrpc(stub_->Scan(ctx.get(), req, &resp));
    Observe(keys_only ? "scan_keys" : "scan", started, resp.entries_size());
    if (!s.ok()) return s;
    ScanPage page;
    page.more = resp.more();
    for (auto& e : *resp.mutable_entries()) {
      page.entries.emplace_back(std::move(*e.mutable_key()), std::move(*e.mutable_value()));
    }
    return page;
  }

  void Observe(const char* rpc, std::chrono::steady_clock::time_point start, size_t keys) {
    if (!options_.read_observer) return;
    options_.read_observer(
        rpc, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), keys);
  }

  std::unique_ptr<grpc::ClientContext> Context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!options_.token.empty()) ctx->AddMetadata("authorization", "Bearer " + options_.token);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    // A pageserver that restarts (local mode's controller brings it back on the same address
    // within seconds) is waited for, not an EIO that PostgreSQL would PANIC on. Calls already
    // sent when the connection broke still fail.
    ctx->set_wait_for_ready(true);
    return ctx;
  }

  GrpcPageStoreOptions options_;
  std::unique_ptr<v1::PageService::Stub> stub_;
};

}  // namespace

std::unique_ptr<PageStore> NewGrpcPageStore(const GrpcPageStoreOptions& options) {
  return std::make_unique<GrpcPageStore>(options);
}

}  // namespace pgbranch::pagefs
