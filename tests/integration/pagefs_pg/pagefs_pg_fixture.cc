#include "tests/integration/pagefs_pg/pagefs_pg_fixture.h"

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace pgbranch::testing {

namespace v1 = pageserver::v1;

// ---- LedgerWriter ----

absl::Status LedgerWriter::Start() {
  absl::StatusOr<std::string> created =
      pg_->Query("CREATE TABLE IF NOT EXISTS ledger (id bigint PRIMARY KEY, note text NOT NULL)");
  if (!created.ok()) return created.status();
  absl::Status s = psql_.Start(pg_->PsqlArgv(), pg_->log_path() + ".ledger-psql");
  if (!s.ok()) return s;
  psql_pid_ = psql_.pid();
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void LedgerWriter::Run() {
  std::string why;
  for (int64_t id = acked_ + 1; !stop_; ++id) {
    sent_ = id;
    absl::Status s = psql_.Write(absl::StrCat("INSERT INTO ledger (id, note) VALUES (", id,
                                              ", 'ledger row ", id, "');\n\\echo ack ", id, "\n"));
    if (!s.ok()) {
      why = s.ToString();
      break;
    }
    absl::StatusOr<std::string> line = psql_.ReadLine(120);
    if (!line.ok()) {
      why = absl::StrCat("waiting for the ack of row ", id, ": ", line.status().ToString());
      break;
    }
    if (*line != absl::StrCat("ack ", id)) {
      why = absl::StrCat("unexpected psql output: ", *line);
      break;
    }
    acked_ = id;
  }
  // From here on Abort() must not signal the pid: it is about to be reaped (and reused).
  {
    std::lock_guard<std::mutex> lock(mu_);
    psql_pid_ = -1;
  }
  int code = psql_.Finish(30);
  if (!why.empty()) why += absl::StrCat(" (psql exit code ", code, ")");
  std::lock_guard<std::mutex> lock(mu_);
  error_ = why;
  done_ = true;
}

void LedgerWriter::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void LedgerWriter::Abort() {
  stop_ = true;
  {
    // Under mu_: the thread reaps psql only after clearing psql_pid_ under mu_.
    std::lock_guard<std::mutex> lock(mu_);
    pid_t pid = psql_pid_.exchange(-1);
    if (pid > 0) kill(-pid, SIGKILL);  // the thread sees EOF; the process group is psql's own
  }
  if (thread_.joinable()) thread_.join();
}

std::string LedgerWriter::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

bool LedgerWriter::WaitForAcked(int64_t n, int timeout_seconds) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  while (acked_ < n) {
    if (done_ || std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// ---- BackgroundPgbench ----

BackgroundPgbench::BackgroundPgbench(const PostgresInstance* pg, std::vector<std::string> args)
    : thread_([this, pg, args = std::move(args)] { result_ = pg->RunClient("pgbench", args); }) {}

const CommandResult& BackgroundPgbench::Join() {
  if (thread_.joinable()) thread_.join();
  return result_;
}

// ---- PagefsPgTest ----

void PagefsPgTest::SetUp() {
  // mkdtemp made it 0700: postgres must traverse it to reach mounts and sockets.
  ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
  std::filesystem::create_directories(path("mnt"));
  std::filesystem::create_directories(path("s"));
  ASSERT_EQ(chmod(path("s").c_str(), 0755), 0);
  server_ = std::make_unique<PageserverProcess>(path("pageserver"));
  absl::Status s = server_->Start();
  ASSERT_TRUE(s.ok()) << s;
  stub_ = server_->NewStub();
  grpc::ClientContext ctx;
  v1::CreateTenantRequest req;
  req.set_tenant_id("t1");
  req.set_root_timeline_id("main");
  v1::Tenant tenant;
  grpc::Status gs = stub_->CreateTenant(&ctx, req, &tenant);
  ASSERT_TRUE(gs.ok()) << gs.error_message();
}

absl::Status PagefsPgTest::RestartPageserver() {
  server_->Kill();
  absl::Status s = server_->Start();
  if (!s.ok()) return s;
  stub_ = server_->NewStub();
  return absl::OkStatus();
}

absl::StatusOr<v1::Timeline> PagefsPgTest::CreateBranch(const std::string& id,
                                                        const std::string& parent, uint64_t lsn) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::CreateTimelineRequest req;
  req.set_tenant_id("t1");
  req.set_timeline_id(id);
  req.set_ancestor_timeline_id(parent);
  req.set_ancestor_lsn(lsn);
  v1::Timeline timeline;
  grpc::Status s = stub_->CreateTimeline(&ctx, req, &timeline);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat("CreateTimeline ", id, " from ", parent, " at ", lsn, ": ",
                                     s.error_message()));
  }
  return timeline;
}

absl::StatusOr<uint64_t> PagefsPgTest::HeadLsn(const std::string& timeline) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::GetTimelineRequest req;
  req.set_tenant_id("t1");
  req.set_timeline_id(timeline);
  v1::Timeline t;
  grpc::Status s = stub_->GetTimeline(&ctx, req, &t);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat("GetTimeline ", timeline, ": ", s.error_message()));
  }
  return t.head_lsn();
}

absl::StatusOr<std::unique_ptr<PagefsMount>> PagefsPgTest::MountTimeline(
    const std::string& timeline, const std::string& name,
    const std::vector<std::string>& extra_args) {
  PagefsMount::Options o;
  o.extra_args = extra_args;
  o.pageserver = server_->address();
  o.tenant = "t1";
  o.timeline = timeline;
  o.mountpoint = path("mnt/" + name);
  auto mount = std::make_unique<PagefsMount>(o);
  absl::Status s = mount->Mount();
  if (!s.ok()) return s;
  if (chmod(o.mountpoint.c_str(), 0755) != 0) {
    return absl::InternalError(absl::StrCat("chmod 0755 ", o.mountpoint, ": ", strerror(errno)));
  }
  return mount;
}

std::unique_ptr<PostgresInstance> PagefsPgTest::NewPostgres(const PagefsMount& mount,
                                                            const std::string& name,
                                                            std::vector<std::string> settings) {
  PostgresInstance::Options o;
  o.data_dir = mount.mountpoint() + "/pgdata";
  o.socket_dir = path("s/" + name);
  o.settings = std::move(settings);
  return std::make_unique<PostgresInstance>(o);
}

absl::Status PagefsPgTest::InitPrimary(const std::string& timeline,
                                       std::unique_ptr<PagefsMount>* mount,
                                       std::unique_ptr<PostgresInstance>* pg) {
  absl::StatusOr<std::unique_ptr<PagefsMount>> m = MountTimeline(timeline, timeline);
  if (!m.ok()) return m.status();
  *mount = std::move(*m);
  *pg = NewPostgres(**mount, timeline);
  absl::Status s = (*pg)->InitDb();
  if (!s.ok()) return s;
  return (*pg)->Start();
}

}  // namespace pgbranch::testing
