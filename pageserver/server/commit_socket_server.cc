#include "pageserver/server/commit_socket_server.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/frame_io.h"
#include "common/hop_trace.h"
#include "common/log.h"
#include "pageserver/proto/pageserver.pb.h"
#include "pageserver/server/commit_request_view.h"
#include "pageserver/server/commit_round.h"

namespace pgbranch::pageserver {
namespace {

namespace v1 = ::pgbranch::pageserver::v1;

std::string CodeName(absl::StatusCode c) {
  return c == absl::StatusCode::kOk ? "OK" : absl::StatusCodeToString(c);
}

}  // namespace

CommitSocketServer::~CommitSocketServer() { Shutdown(); }

absl::Status CommitSocketServer::Start(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("--commit-socket must be an absolute path, not '", path, "'"));
  }
  if (path.size() + 1 > sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("--commit-socket path is ", path.size(),
                                                   " bytes; a Unix socket path holds at most ",
                                                   sizeof(addr.sun_path) - 1, ": ", path));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  // A socket file left by a killed pageserver: replace it (never any other kind of file).
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("--commit-socket ", path, " exists and is not a socket"));
    }
    ::unlink(path.c_str());
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 64) != 0) {
    int e = errno;
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("cannot listen on the commit socket ", path, ": ",
                                               std::strerror(e),
                                               " (is its directory missing or not writable?)"));
  }
  path_ = path;
  listen_fd_ = fd;
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void CommitSocketServer::Shutdown() {
  if (stopping_.exchange(true)) return;
  if (acceptor_.joinable()) {
    // Wakes the acceptor, which sees stopping_ (shutdown() does not wake accept() on every
    // kernel for Unix sockets).
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.data(), path_.size());
    if (fd >= 0) (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    acceptor_.join();
    if (fd >= 0) ::close(fd);
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  std::map<uint64_t, std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : conns_) ::shutdown(fd, SHUT_RDWR);
    threads.swap(conn_threads_);
    finished_.clear();
  }
  for (auto& [id, t] : threads) t.join();
  if (!path_.empty()) ::unlink(path_.c_str());
}

void CommitSocketServer::AcceptLoop() {
  while (!stopping_) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (!stopping_) LogError("The commit socket stopped accepting", {{"error", strerror(errno)}});
      return;
    }
    ReapFinished();
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    conns_.insert(fd);
    uint64_t id = next_conn_id_++;
    conn_threads_.emplace(id, std::thread([this, fd, id] {
                            Serve(fd);
                            std::lock_guard<std::mutex> l(mu_);
                            conns_.erase(fd);
                            ::close(fd);
                            finished_.push_back(id);
                          }));
  }
}

void CommitSocketServer::ReapFinished() {
  std::vector<std::thread> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (uint64_t id : finished_) {
      auto it = conn_threads_.find(id);
      if (it == conn_threads_.end()) continue;
      done.push_back(std::move(it->second));
      conn_threads_.erase(it);
    }
    finished_.clear();
  }
  // Each has only to release mu_ and return: the joins are short.
  for (std::thread& t : done) t.join();
}

size_t CommitSocketServer::ConnectionThreadsForTest() {
  std::lock_guard<std::mutex> lock(mu_);
  return conn_threads_.size();
}

void CommitSocketServer::Serve(int fd) {
  FrameReader in(fd);
  std::string tenant, timeline, authorization;
  bool authorized = false;

  // Answers the first failure and ends the connection (nothing after it is applied).
  auto fail = [&](const absl::Status& s) {
    std::string out;
    CommitRound::AppendErrorAnswerFrame(
        s.code(), std::string_view(s.message().data(), s.message().size()), &out);
    (void)WriteAll(fd, out);
    ::shutdown(fd, SHUT_WR);
    if (s.code() == absl::StatusCode::kInternal || s.code() == absl::StatusCode::kDataLoss ||
        s.code() == absl::StatusCode::kUnavailable ||
        s.code() == absl::StatusCode::kInvalidArgument) {
      LogError("A commit channel request failed; the connection ends",
               {{"tenant", tenant}, {"timeline", timeline}, {"error", s.ToString()}});
    }
  };

  std::string_view frame;
  absl::Status s = in.Next(/*block=*/true, &frame);
  if (!s.ok()) {
    if (!absl::IsCancelled(s)) fail(s);  // Cancelled: the client left
    return;
  }
  if (frame.substr(0, kCommitHello.size()) != kCommitHello) {
    fail(absl::InvalidArgumentError(
        "not a commit channel client: the first frame must be the hello \"pgbranch-commit/1\\n\""));
    return;
  }
  authorization.assign(frame.substr(kCommitHello.size()));

  // Reused by every round of the connection (they keep their capacity).
  CommitRound round;
  std::vector<storage::CommitResult> results;
  std::string out;
  while (true) {
    // Blocks for one request, then takes the requests already received behind it. The requests
    // are parsed in place: the round's views point into the frames, which `in` holds until the
    // round is committed.
    round.Clear();
    while (!round.full()) {
      s = in.NextHeld(/*block=*/round.empty(), &frame);
      // Unavailable: nothing more received yet. Cancelled: the client left (what it sent is
      // still committed, in order). Else a bad frame: commit the requests before it, then fail.
      if (!s.ok()) break;
      HopTrace::Mark("srv_read");
      CommitRequestView req;
      if (!ParseCommitRequest(frame, &req, round.mutations())) {
        s = absl::InvalidArgumentError(absl::StrCat("a commit channel frame of ", frame.size(),
                                                    " bytes is not a CommitRequest"));
        break;
      }
      if (!round.Accepts(req.generation, frame.size())) {
        round.DropParsed(req);
        in.Unread();  // the next round's
        break;
      }
      round.Add(req, frame.size());
    }
    bool parse_failed = !s.ok() && !absl::IsUnavailable(s) && !absl::IsCancelled(s);
    absl::Status bad_frame = parse_failed ? s : absl::OkStatus();
    if (round.empty()) {
      if (parse_failed) fail(bad_frame);
      return;
    }

    if (tenant.empty() && timeline.empty()) {
      tenant = std::string(round.tenant_id());
      timeline = std::string(round.timeline_id());
    }
    HopTrace::Mark("srv_round", round.size());
    auto start = std::chrono::steady_clock::now();
    results.clear();
    absl::Status cs = [&]() -> absl::Status {
      if (!authorized) {
        if (auth_->enabled()) {
          absl::Status a = auth_->Check(authorization, false, tenant, timeline);
          if (!a.ok()) return a;
        }
        authorized = true;
      }
      return round.Commit(engine_, tenant, timeline, "commit channel", &results);
    }();
    in.Release();  // the round's frames are no longer referred to
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // The answers of the round in one write: a round is durable as a whole. The metric after it:
    // the client waits for the answer, not for the histogram.
    out.clear();
    for (const storage::CommitResult& r : results) CommitRound::AppendAnswerFrame(r, &out);
    bool written = WriteAll(fd, out);
    metrics_->ObserveRequest("CommitChannel", CodeName(cs.code()), seconds);
    if (HopTrace::Enabled()) {
      for (const storage::CommitResult& r : results) HopTrace::Mark("srv_answered", r.lsn);
    }
    if (!cs.ok()) {
      fail(cs);
      return;
    }
    if (!bad_frame.ok()) {
      fail(bad_frame);
      return;
    }
    if (!written) return;  // the client is gone: what it sent is applied in order up to here
  }
}

}  // namespace pgbranch::pageserver
