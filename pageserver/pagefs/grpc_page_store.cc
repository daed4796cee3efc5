#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/frame_io.h"
#include "common/hop_trace.h"
#include "common/log.h"
#include "pageserver/pagefs/commit_channel.h"
#include "pageserver/pagefs/commit_frame.h"
#include "pageserver/pagefs/commit_pipeline.h"
#include "pageserver/pagefs/page_store.h"
#include "pageserver/proto/pageserver.grpc.pb.h"

namespace pgbranch::pagefs {
namespace {

namespace v1 = ::pgbranch::pageserver::v1;

// Commit requests up to this size are written by the thread that issues them when the stream is
// idle (CommitAsync).
constexpr size_t kInlineSendMaxBytes = 256 << 10;

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
    channel_ = grpc::CreateCustomChannel(o.address, creds, args);
    stub_ = v1::PageService::NewStub(channel_);
  }

  ~GrpcPageStore() override {
    {
      std::lock_guard<std::mutex> lock(outbox_mu_);
      stop_writer_ = true;
    }
    outbox_cv_.notify_all();
    if (writer_.joinable()) writer_.join();
    std::lock_guard<std::mutex> lock(stream_mu_);
    CloseStreamLocked();
  }

  absl::StatusOr<std::vector<std::optional<std::string>>> Read(
      uint64_t lsn, const std::vector<std::string>& keys) override {
    if (lsn == 0) {
      absl::Status ryw = pipeline_.BeforeRead(keys);
      if (!ryw.ok()) return ryw;
    }
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
    v1::CommitRequest req = CommitRequestFor(generation, mutations);
    v1::CommitResponse resp;
    auto ctx = Context();
    absl::Status s = FromGrpc(stub_->Commit(ctx.get(), req, &resp));
    if (!s.ok()) return s;
    return resp.lsn();
  }

  absl::StatusOr<uint64_t> CommitAsync(uint64_t generation,
                                       const std::vector<PageMutation>& mutations) override {
    return Issue(generation, mutations, /*inline_ok=*/true);
  }

  absl::StatusOr<uint64_t> CommitInBackground(uint64_t generation,
                                              const std::vector<PageMutation>& mutations) override {
    return Issue(generation, mutations, /*inline_ok=*/false);
  }

  absl::Status WaitDurable(uint64_t seq) override { return pipeline_.WaitDurable(seq); }
  absl::Status Sync() override {
    SendQueuedHere();
    return pipeline_.Sync();
  }
  void OnDurable(uint64_t seq, std::function<void(const absl::Status&)> done) override {
    pipeline_.OnDurable(seq, std::move(done));
  }
  void PoisonIfOverdue() override { pipeline_.PoisonIfOverdue(); }
  absl::StatusOr<uint64_t> LastPending(const std::vector<std::string>& keys) override {
    auto last = pipeline_.LastPending(keys);
    if (last.ok() && *last != 0) SendQueuedHere();  // the caller waits for it: no writer wakeup
    return last;
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
    if (lsn == 0) {
      absl::Status ryw = pipeline_.BeforeScan(start, end);
      if (!ryw.ok()) return ryw;
    }
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

  // A commit on its way: the message for CommitStream, or (--commit-channel: every stream of
  // this store is a channel) its frame, built straight from the mutations.
  struct Outgoing {
    v1::CommitRequest req;
    std::string frame;
    size_t bytes() const { return frame.empty() ? req.ByteSizeLong() : frame.size(); }
  };

  // One CommitStream call, or one connection of the commit channel (--commit-channel), and the
  // thread that reads its answers.
  struct Stream {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReaderWriter<v1::CommitRequest, v1::CommitResponse>> rw;
    int fd = -1;  // the commit channel's socket (rw is null); closed by CloseStreamLocked
    std::thread reader;
    // Guarded by GrpcPageStore::stream_mu_.
    int64_t unanswered = 0;  // requests written whose answer has not arrived
    bool ended = false;      // the reader saw the stream end
  };

  // The writer thread: sends the queued requests in order, one at a time (never while a commit
  // is written inline by CommitAsync). Once the pipeline is poisoned it sends nothing more
  // (whatever is queued is dropped: nothing may be applied after a lost commit).
  void WriteLoop() {
    std::unique_lock<std::mutex> lock(outbox_mu_);
    while (true) {
      outbox_cv_.wait(lock, [&] {
        return (stop_writer_ && outbox_.empty()) || (!outbox_.empty() && !sending_);
      });
      if (outbox_.empty()) return;  // stopping, all sent
      Outgoing req = std::move(outbox_.front());
      outbox_.pop_front();
      // More queued behind it: let gRPC coalesce the writes (the last one flushes).
      bool more = !outbox_.empty();
      sending_ = true;
      lock.unlock();
      absl::Status s = pipeline_.poison();
      if (s.ok()) s = Send(req, more);
      if (!s.ok()) pipeline_.Poison(s);
      lock.lock();
      sending_ = false;
    }
  }

  // CommitAsync and CommitInBackground. `inline_ok`: a small commit may be written on the
  // caller's thread when nothing is queued or being written.
  absl::StatusOr<uint64_t> Issue(uint64_t generation, const std::vector<PageMutation>& mutations,
                                 bool inline_ok) {
    return pipeline_.Issue(mutations, [&](uint64_t) -> absl::Status {
      Outgoing req = OutgoingFor(generation, mutations);
      std::unique_lock<std::mutex> lock(outbox_mu_);
      if (inline_ok && req.bytes() <= kInlineSendMaxBytes) {
        // Small, and its caller is about to wait for it (an fsync's flush): write it on this
        // thread, after whatever the writer thread has not picked up yet (one thread handoff
        // fewer on the path of a WAL fsync, also right after a namespace change). Still in
        // sequence order: Issue holds its lock, and nobody else writes while sending_ is set.
        // Large flushes still go through the writer thread.
        absl::Status s;
        if (SendHereLocked(lock, &req, outbox_.size(), &s)) return s;  // Issue poisons on error
      }
      // Queued for the writer thread, in sequence order (Issue holds its lock).
      if (!writer_.joinable()) writer_ = std::thread([this] { WriteLoop(); });
      outbox_.push_back(std::move(req));
      outbox_cv_.notify_all();
      return absl::OkStatus();
    });
  }

  // Takes the sending role if nobody holds it, and writes on this thread the first `queued`
  // requests of the outbox (in order), then `own` if not null. Caller holds `lock` on outbox_mu_.
  // False (nothing done) if another thread is writing: it, or the writer thread after it, sends
  // them. *s: the first error, which the caller turns into the pipeline's poison.
  bool SendHereLocked(std::unique_lock<std::mutex>& lock, const Outgoing* own, size_t queued,
                      absl::Status* s) {
    if (sending_) return false;
    sending_ = true;
    *s = absl::OkStatus();
    for (; s->ok() && queued > 0 && !outbox_.empty(); --queued) {
      Outgoing req = std::move(outbox_.front());
      outbox_.pop_front();
      bool more = own != nullptr || (queued > 1 && !outbox_.empty());
      lock.unlock();
      *s = pipeline_.poison();
      if (s->ok()) *s = Send(req, more);
      lock.lock();
    }
    if (s->ok() && own != nullptr) {
      lock.unlock();
      *s = pipeline_.poison();
      if (s->ok()) *s = Send(*own, false);
      lock.lock();
    }
    sending_ = false;
    // The writer thread waits only for queued requests: with none, waking it (on every inline
    // send, i.e. every WAL commit) would be a context switch for nothing.
    if (!outbox_.empty()) outbox_cv_.notify_all();
    return true;
  }

  // Before waiting for everything issued: writes what the writer thread has not picked up yet on
  // this thread, rather than wait for that thread to be scheduled (on a busy machine, a whole
  // time slice). Only what is queued now: later requests are the writer thread's.
  void SendQueuedHere() {
    std::unique_lock<std::mutex> lock(outbox_mu_);
    if (outbox_.empty()) return;
    absl::Status s;
    if (SendHereLocked(lock, nullptr, outbox_.size(), &s) && !s.ok()) pipeline_.Poison(s);
  }

  // Sends one request on the stream, opening it if needed. One caller at a time: whoever set
  // sending_ (the writer thread, or CommitAsync inline).
  absl::Status Send(const Outgoing& req, bool more) {
    for (int attempt = 0;; ++attempt) {
      Stream* st;
      {
        std::lock_guard<std::mutex> lock(stream_mu_);
        if (stream_ == nullptr || stream_->ended) {
          // A new stream is safe only if nothing written to the old one went unanswered: its
          // reader poisons the pipeline (under stream_mu_) when something did.
          absl::Status poison = pipeline_.poison();
          if (!poison.ok()) return poison;
          CloseStreamLocked();
          if (absl::Status s = OpenStreamLocked(); !s.ok()) return s;
        }
        st = stream_.get();
      }
      grpc::WriteOptions wo;
      if (more) wo.set_buffer_hint();
      HopTrace::Mark("commit_write");
      bool written;
      if (st->fd >= 0) {
        written = WriteAll(st->fd, req.frame);
      } else {
        written = st->rw->Write(req.req, wo);
      }
      HopTrace::Mark("commit_written");
      if (written) {
        std::lock_guard<std::mutex> lock(stream_mu_);
        if (st->ended) {
          // The stream ended around our write: it may or may not have been applied.
          return absl::UnavailableError("the commit stream to the pageserver broke");
        }
        ++st->unanswered;
        return absl::OkStatus();
      }
      // Not written: the stream is closed. If everything written to it was answered, nothing
      // is lost and the request goes on a new stream (a pageserver that restarted while the
      // mount was idle); otherwise the reader poisons the pipeline.
      std::lock_guard<std::mutex> lock(stream_mu_);
      if (attempt > 0 || st->unanswered > 0) {
        return absl::UnavailableError("the commit stream to the pageserver broke");
      }
      Break(st);
      st->ended = true;
    }
  }

  // Ends the stream's transport: its reader sees the end.
  static void Break(Stream* st) {
    if (st->fd >= 0) {
      ::shutdown(st->fd, SHUT_RDWR);
    } else {
      st->ctx.TryCancel();
    }
  }

  // A pageserver that restarts (local mode's controller brings it back on the same address
  // within seconds) is waited for, up to a minute, like the unary calls' deadline.
  absl::Status OpenStreamLocked() {
    if (!options_.commit_channel.empty()) {
      // Up to a minute for a restarting pageserver, as below. Connecting holds stream_mu_, as
      // WaitForConnected does: nobody else needs the stream meanwhile.
      absl::StatusOr<int> fd = ConnectCommitChannel(
          options_.commit_channel, options_.token.empty() ? "" : "Bearer " + options_.token,
          std::chrono::seconds(60));
      if (!fd.ok()) return fd.status();
      stream_ = std::make_unique<Stream>();
      Stream* st = stream_.get();
      st->fd = *fd;
      st->reader = std::thread([this, st] { ReadChannelAnswers(st); });
      return absl::OkStatus();
    }
    if (!channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(60))) {
      return absl::UnavailableError(
          absl::StrCat("cannot reach the pageserver at ", options_.address, " to commit"));
    }
    stream_ = std::make_unique<Stream>();
    Stream* st = stream_.get();
    if (!options_.token.empty()) st->ctx.AddMetadata("authorization", "Bearer " + options_.token);
    st->ctx.set_wait_for_ready(true);
    st->rw = stub_->CommitStream(&st->ctx);
    st->reader = std::thread([this, st] { ReadAnswers(st); });
    return absl::OkStatus();
  }

  // Cancels and joins the current stream, if any. Caller holds stream_mu_.
  void CloseStreamLocked() {
    if (stream_ == nullptr) return;
    Break(stream_.get());
    std::thread reader = std::move(stream_->reader);
    stream_mu_.unlock();
    if (reader.joinable()) reader.join();
    stream_mu_.lock();
    if (stream_->fd >= 0) ::close(stream_->fd);
    stream_.reset();
  }

  void ReadAnswers(Stream* st) {
    v1::CommitResponse resp;
    while (st->rw->Read(&resp)) {
      if (!OnAnswer(st, resp)) st->ctx.TryCancel();  // read on until the stream ends
    }
    OnStreamEnd(st, "stream", FromGrpc(st->rw->Finish()));
  }

  // ReadAnswers for the commit channel: a reader blocked in recv() on the socket.
  void ReadChannelAnswers(Stream* st) {
    FrameReader in(st->fd);
    std::string_view frame;
    absl::Status end;
    while ((end = in.Next(/*block=*/true, &frame)).ok()) {
      v1::CommitResponse resp;
      if (!resp.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) {
        end = absl::DataLossError("the commit channel sent an answer that is not a CommitResponse");
        break;
      }
      if (!OnAnswer(st, resp)) ::shutdown(st->fd, SHUT_RDWR);  // read on until it ends
    }
    ::shutdown(st->fd, SHUT_RDWR);
    OnStreamEnd(st, "channel", end);
  }

  // One answer of either transport, in order: acknowledges the next in-flight commit, or
  // poisons the pipeline with the answer's error and returns false (the caller then ends the
  // transport: nothing after a failed commit is applied).
  bool OnAnswer(Stream* st, const v1::CommitResponse& resp) {
    HopTrace::Mark("answer_read", resp.lsn());
    if (resp.error_code() != 0) {
      absl::Status error(static_cast<absl::StatusCode>(resp.error_code()), resp.error_message());
      LogError("A pipelined commit failed; every later write and fsync fails",
               {{"error", error.ToString()}});
      pipeline_.Poison(error);
      return false;
    }
    {
      std::lock_guard<std::mutex> lock(stream_mu_);
      --st->unanswered;
    }
    pipeline_.Ack();
    return true;
  }

  // The transport ended (`end` says why): commits written and not answered may be lost, so the
  // pipeline is poisoned and every later write and fsync fails.
  void OnStreamEnd(Stream* st, const char* transport, const absl::Status& end) {
    std::lock_guard<std::mutex> lock(stream_mu_);
    st->ended = true;
    if (st->unanswered > 0) {
      absl::Status lost = absl::UnavailableError(
          absl::StrCat("the commit ", transport, " to the pageserver ended with ", st->unanswered,
                       " commits unanswered (", end.ToString(), ")"));
      if (pipeline_.poison().ok()) {
        LogError("Pipelined commits may be lost; every later write and fsync fails",
                 {{"error", lost.ToString()}});
      }
      pipeline_.Poison(lost);
    }
  }

  void Observe(const char* rpc, std::chrono::steady_clock::time_point start, size_t keys) {
    if (!options_.read_observer) return;
    options_.read_observer(
        rpc, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), keys);
  }

  Outgoing OutgoingFor(uint64_t generation, const std::vector<PageMutation>& mutations) const {
    Outgoing o;
    if (options_.commit_channel.empty()) {
      o.req = CommitRequestFor(generation, mutations);
    } else {
      AppendCommitFrame(options_.tenant_id, options_.timeline_id, generation, mutations, &o.frame);
    }
    return o;
  }

  v1::CommitRequest CommitRequestFor(uint64_t generation,
                                     const std::vector<PageMutation>& mutations) const {
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
    return req;
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
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::PageService::Stub> stub_;
  CommitPipeline pipeline_;
  std::mutex stream_mu_;
  std::unique_ptr<Stream> stream_;  // guarded by stream_mu_ (replaced only by Send and ~)
  // Requests issued, not yet written: the writer thread sends them in order.
  std::mutex outbox_mu_;
  std::condition_variable outbox_cv_;
  std::deque<Outgoing> outbox_;  // guarded by outbox_mu_
  bool stop_writer_ = false;     // guarded by outbox_mu_
  bool sending_ = false;         // a request is being written (Send runs); guarded by outbox_mu_
  std::thread writer_;           // started by the first CommitAsync
};

}  // namespace

std::unique_ptr<PageStore> NewGrpcPageStore(const GrpcPageStoreOptions& options) {
  return std::make_unique<GrpcPageStore>(options);
}

}  // namespace pgbranch::pagefs
