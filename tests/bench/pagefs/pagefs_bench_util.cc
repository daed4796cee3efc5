#include "tests/bench/pagefs/pagefs_bench_util.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "compute/storage_settings.h"

namespace pgbranch::pagefs_bench {

using bench_common::FilesystemOf;
using bench_common::FirstMatch;

void Table::Print() const { bench_common::PrintTable(title_, header_, rows_, notes_); }

double Samples::Quantile(double q) const {
  if (values_.empty()) return 0;
  std::vector<double> sorted = values_;
  std::sort(sorted.begin(), sorted.end());
  size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

double Samples::Mean() const {
  if (values_.empty()) return 0;
  double sum = 0;
  for (double v : values_) sum += v;
  return sum / static_cast<double>(values_.size());
}

void Progress(const std::string& line) { std::cerr << "[bench] " << line << std::endl; }

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string Ms(double seconds) { return absl::StrFormat("%.1f ms", seconds * 1e3); }
std::string Secs(double seconds) { return absl::StrFormat("%.2f s", seconds); }
std::string Ratio(double x) { return absl::StrFormat("%.2fx", x); }

ScratchDir::ScratchDir(const std::string& base) {
  std::string tmpl = base + "/pgbranch-pagefs-bench-XXXXXX";
  char* p = mkdtemp(tmpl.data());
  path_ = p != nullptr ? std::string(p) : base + "/pgbranch-pagefs-bench-fallback";
  chmod(path_.c_str(), 0755);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

namespace {}  // namespace

std::string MachineInfo(const std::string& dir) {
  utsname u{};
  uname(&u);
  return absl::StrCat("machine: ", std::thread::hardware_concurrency(), " cpus (",
                      FirstMatch("/proc/cpuinfo", "model name"), "), memory ",
                      FirstMatch("/proc/meminfo", "MemTotal"), ", kernel ", u.release,
                      ", local disk and pageserver data under ", dir, " (", FilesystemOf(dir),
                      "), PostgreSQL 15 from ", kPgBin, "; load average at start ",
                      FileTail("/proc/loadavg", 0).substr(0, 14),
                      " (other processes skew the numbers)");
}

namespace {

struct PostgresUser {
  uid_t uid = 0;
  gid_t gid = 0;
  bool ok = false;
};

PostgresUser LookupPostgres() {
  PostgresUser u;
  if (passwd* pw = getpwnam("postgres")) {
    u.uid = pw->pw_uid;
    u.gid = pw->pw_gid;
    u.ok = true;
  }
  return u;
}

}  // namespace

absl::Status MakePostgresDir(const std::string& dir) {
  PostgresUser pg = LookupPostgres();
  if (!pg.ok) return absl::FailedPreconditionError("there is no postgres user");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", dir, ": ", ec.message()));
  if (chown(dir.c_str(), pg.uid, pg.gid) != 0 || chmod(dir.c_str(), 0700) != 0) {
    return absl::InternalError(absl::StrCat("chown/chmod ", dir, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<pid_t> SpawnAsPostgres(const std::vector<std::string>& argv,
                                      const std::string& log) {
  PostgresUser pg = LookupPostgres();
  if (!pg.ok) return absl::FailedPreconditionError("there is no postgres user");
  std::string program =
      argv[0].find('/') == std::string::npos ? absl::StrCat(kPgBin, "/", argv[0]) : argv[0];
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    if (chdir("/") != 0 || setgroups(0, nullptr) != 0 || setgid(pg.gid) != 0 ||
        setuid(pg.uid) != 0) {
      _exit(126);
    }
    std::vector<std::string> args = argv;
    args[0] = program;
    std::vector<char*> cargv;
    for (auto& a : args) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    std::string path = absl::StrCat("PATH=", kPgBin, ":/usr/bin:/bin");
    std::vector<std::string> env = {path, "LC_ALL=C", "HOME=/var/lib/postgresql", "PGTZ=UTC"};
    std::vector<char*> cenv;
    for (auto& e : env) cenv.push_back(e.data());
    cenv.push_back(nullptr);
    execve(cargv[0], cargv.data(), cenv.data());
    _exit(127);
  }
  return pid;
}

std::string FileTail(const std::string& path, size_t bytes) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return bytes == 0 || s.size() <= bytes ? s : s.substr(s.size() - bytes);
}

absl::StatusOr<double> RunAsPostgres(const std::vector<std::string>& argv, const std::string& log) {
  double start = NowSeconds();
  auto pid = SpawnAsPostgres(argv, log);
  if (!pid.ok()) return pid.status();
  int status = 0;
  waitpid(*pid, &status, 0);
  double elapsed = NowSeconds() - start;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(argv[0], " failed (status ", status, "); ", log,
                                            " ends with:\n", FileTail(log, 1500)));
  }
  return elapsed;
}

absl::StatusOr<Libpq*> Libpq::Get() {
  static Libpq* lib = [] {
    auto* l = new Libpq();
    l->handle_ = dlopen("libpq.so.5", RTLD_NOW);
    if (l->handle_ == nullptr) return l;
    auto sym = [&](const char* name) { return dlsym(l->handle_, name); };
    l->connectdb_ = reinterpret_cast<void* (*)(const char*)>(sym("PQconnectdb"));
    l->status_ = reinterpret_cast<int (*)(const void*)>(sym("PQstatus"));
    l->error_message_ = reinterpret_cast<char* (*)(const void*)>(sym("PQerrorMessage"));
    l->finish_ = reinterpret_cast<void (*)(void*)>(sym("PQfinish"));
    l->exec_ = reinterpret_cast<void* (*)(void*, const char*)>(sym("PQexec"));
    l->result_status_ = reinterpret_cast<int (*)(const void*)>(sym("PQresultStatus"));
    l->result_error_ = reinterpret_cast<char* (*)(const void*)>(sym("PQresultErrorMessage"));
    l->ntuples_ = reinterpret_cast<int (*)(const void*)>(sym("PQntuples"));
    l->getvalue_ = reinterpret_cast<char* (*)(const void*, int, int)>(sym("PQgetvalue"));
    l->clear_ = reinterpret_cast<void (*)(void*)>(sym("PQclear"));
    return l;
  }();
  if (lib->handle_ == nullptr || lib->connectdb_ == nullptr || lib->clear_ == nullptr) {
    return absl::FailedPreconditionError("cannot load libpq.so.5 (package libpq5)");
  }
  return lib;
}

absl::Status Libpq::RunOn(void* conn, const std::string& sql, std::string* value) {
  constexpr int kCommandOk = 1, kTuplesOk = 2;  // PGRES_COMMAND_OK, PGRES_TUPLES_OK
  void* res = exec_(conn, sql.c_str());
  int st = result_status_(res);
  absl::Status s;
  if (st != kCommandOk && st != kTuplesOk) {
    s = absl::InternalError(absl::StrCat("'", sql, "' failed: ", result_error_(res)));
  } else if (value != nullptr) {
    *value = ntuples_(res) > 0 ? getvalue_(res, 0, 0) : "";
  }
  clear_(res);
  return s;
}

absl::Status Libpq::Query(const std::string& conninfo, const std::string& sql, std::string* value) {
  constexpr int kConnectionOk = 0;
  void* conn = connectdb_(conninfo.c_str());
  if (status_(conn) != kConnectionOk) {
    absl::Status s = absl::UnavailableError(error_message_(conn));
    finish_(conn);
    return s;
  }
  absl::Status s = RunOn(conn, sql, value);
  finish_(conn);
  return s;
}

absl::Status Libpq::WaitAndQuery(const std::string& conninfo, const std::string& sql,
                                 double timeout_s, double* connected_at) {
  constexpr int kConnectionOk = 0;
  double deadline = NowSeconds() + timeout_s;
  std::string last_error;
  while (NowSeconds() < deadline) {
    void* conn = connectdb_(conninfo.c_str());
    if (status_(conn) == kConnectionOk) {
      *connected_at = NowSeconds();
      absl::Status s = RunOn(conn, sql, nullptr);
      finish_(conn);
      return s;
    }
    last_error = error_message_(conn);
    finish_(conn);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("PostgreSQL did not accept a connection in time: ", last_error));
}

PgCluster::PgCluster(std::string data_dir, std::string socket_dir, int port, std::string log)
    : data_dir_(std::move(data_dir)),
      socket_dir_(std::move(socket_dir)),
      log_(std::move(log)),
      port_(port) {}

PgCluster::~PgCluster() {
  if (running_) {
    auto r = RunAsPostgres({"pg_ctl", "stop", "-D", data_dir_, "-m", "immediate", "-w"}, log_);
    (void)r;
  }
}

absl::StatusOr<double> PgCluster::InitDb() {
  absl::Status s = MakePostgresDir(data_dir_);
  if (!s.ok()) return s;
  s = MakePostgresDir(socket_dir_);
  if (!s.ok()) return s;
  return RunAsPostgres(
      {"initdb", "-D", data_dir_, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"},
      log_);
}

std::vector<std::string> PagefsComputeSettings() {
  std::vector<std::string> lines;
  for (const compute::StorageSetting& s : compute::kPagefsStorageSettings) {
    lines.push_back(absl::StrCat(s.name, " = ", s.value));
  }
  return lines;
}

std::string PagefsComputeSettingsNote() {
  return absl::StrCat("pagefs side: PostgreSQL with a compute's settings (",
                      absl::StrJoin(PagefsComputeSettings(), ", "),
                      "); local side: PostgreSQL's defaults");
}

absl::Status PgCluster::Configure(const std::vector<std::string>& lines) {
  std::ofstream out(data_dir_ + "/postgresql.conf", std::ios::app);
  out << "\n# pagefs-bench\n";
  for (const std::string& l : lines) out << l << "\n";
  // PGBRANCH_BENCH_PG_CONF="name = value;...": more settings, on both sides alike (A/B of a
  // PostgreSQL setting, e.g. wal_sync_method).
  if (const char* extra = getenv("PGBRANCH_BENCH_PG_CONF")) {
    for (const auto& l : absl::StrSplit(extra, ';', absl::SkipWhitespace())) {
      out << std::string(l) << "\n";
    }
  }
  out.close();
  if (!out)
    return absl::InternalError(absl::StrCat("cannot write ", data_dir_, "/postgresql.conf"));
  return absl::OkStatus();
}

std::string PgCluster::ServerOptions(Listen listen) const {
  return absl::StrCat("-p ", port_, " -k ", socket_dir_,
                      " -c listen_addresses=", listen == Listen::kLoopbackTcp ? "127.0.0.1" : "");
}

absl::Status PgCluster::Start(Listen listen) {
  // pg_ctl (as postgres) appends the server's log to this file.
  std::string server_log = log_ + ".server";
  int fd = open(server_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  PostgresUser pg = LookupPostgres();
  if (fd < 0 || fchown(fd, pg.uid, pg.gid) != 0) {
    if (fd >= 0) close(fd);
    return absl::InternalError(absl::StrCat("cannot create ", server_log));
  }
  close(fd);
  auto r = RunAsPostgres({"pg_ctl", "start", "-D", data_dir_, "-w", "-t", "120", "-l",
                          log_ + ".server", "-o", ServerOptions(listen)},
                         log_);
  if (!r.ok()) {
    return absl::InternalError(
        absl::StrCat(r.status().message(), "\nserver log:\n", FileTail(log_ + ".server", 1500)));
  }
  running_ = true;
  return absl::OkStatus();
}

absl::Status PgCluster::Stop() {
  if (!running_) return absl::OkStatus();
  auto r =
      RunAsPostgres({"pg_ctl", "stop", "-D", data_dir_, "-m", "fast", "-w", "-t", "300"}, log_);
  running_ = false;
  return r.status();
}

namespace {

// The parent pid of `pid` from /proc (-1 once it is gone and reaped).
pid_t ParentOf(pid_t pid) {
  std::string stat = FileTail(absl::StrCat("/proc/", pid, "/stat"), 0);
  size_t close_paren = stat.rfind(')');
  if (close_paren == std::string::npos || close_paren + 4 >= stat.size()) return -1;
  return static_cast<pid_t>(strtol(stat.c_str() + close_paren + 4, nullptr, 10));
}

}  // namespace

absl::Status PgCluster::Crash() {
  std::string pidfile = FileTail(data_dir_ + "/postmaster.pid", 0);
  pid_t postmaster = static_cast<pid_t>(strtol(pidfile.c_str(), nullptr, 10));
  if (postmaster <= 0) return absl::FailedPreconditionError("no postmaster.pid: not running");
  // The children first (once the postmaster is gone they are re-parented and lost).
  std::vector<pid_t> victims = {postmaster};
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    pid_t pid = static_cast<pid_t>(strtol(entry.path().filename().c_str(), nullptr, 10));
    if (pid > 0 && ParentOf(pid) == postmaster) victims.push_back(pid);
  }
  for (pid_t pid : victims) kill(pid, SIGKILL);
  running_ = false;
  double deadline = NowSeconds() + 30;
  // Until they are reaped, not merely zombies: PostgreSQL's lock file check (kill(pid, 0)) takes
  // a zombie postmaster for a running one and refuses to start.
  for (pid_t pid : victims) {
    while (ParentOf(pid) >= 0) {
      if (NowSeconds() > deadline) return absl::InternalError("killed processes did not exit");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<double> PgCluster::StartUntilConnected(double timeout_s) {
  auto pq = Libpq::Get();
  if (!pq.ok()) return pq.status();
  double t0 = NowSeconds();
  auto r = RunAsPostgres({"pg_ctl", "start", "-D", data_dir_, "-W", "-l", log_ + ".server", "-o",
                          ServerOptions(Listen::kSocketOnly)},
                         log_);
  if (!r.ok()) return r.status();
  running_ = true;
  double connected = 0;
  absl::Status s = (*pq)->WaitAndQuery(ConnInfo(), "SELECT 1", timeout_s, &connected);
  if (!s.ok()) {
    return absl::InternalError(
        absl::StrCat(s.message(), "\nserver log:\n", FileTail(log_ + ".server", 1500)));
  }
  return connected - t0;
}

std::string PgCluster::ConnInfo() const {
  return absl::StrCat("host=", socket_dir_, " port=", port_,
                      " dbname=postgres user=postgres connect_timeout=5");
}

std::string PgCluster::TcpUri(const std::string& dbname) const {
  return absl::StrCat("postgresql://postgres@127.0.0.1:", port_, "/", dbname);
}

absl::Status PgCluster::Sql(const std::string& sql, std::string* value) {
  auto pq = Libpq::Get();
  if (!pq.ok()) return pq.status();
  return (*pq)->Query(ConnInfo(), sql, value);
}

absl::StatusOr<std::string> PgCluster::Pgbench(const std::vector<std::string>& args) {
  std::string out = absl::StrCat(log_, ".pgbench");
  std::error_code ec;
  std::filesystem::remove(out, ec);
  std::vector<std::string> argv = {"pgbench", "-h",      socket_dir_, "-p", std::to_string(port_),
                                   "-U",      "postgres"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("postgres");
  auto r = RunAsPostgres(argv, out);
  if (!r.ok()) return r.status();
  return FileTail(out, 0);
}

absl::StatusOr<std::unique_ptr<PgCluster>> StartLoopbackCluster(const std::string& dir) {
  absl::StatusOr<int> port = FreeLoopbackPort();
  if (!port.ok()) return port.status();
  // Everything the postgres user writes lives in a directory it owns.
  if (auto s = MakePostgresDir(dir); !s.ok()) return s;
  auto pg = std::make_unique<PgCluster>(dir + "/pgdata", dir + "/sock", *port, dir + "/pg.log");
  if (auto t = pg->InitDb(); !t.ok()) return t.status();
  if (auto s = pg->Start(PgCluster::Listen::kLoopbackTcp); !s.ok()) return s;
  return pg;
}

double ParseTps(const std::string& output) {
  size_t pos = output.find("tps = ");
  while (pos != std::string::npos) {
    size_t eol = output.find('\n', pos);
    std::string line = output.substr(pos, eol - pos);
    if (line.find("without initial connection time") != std::string::npos ||
        line.find("excluding connections") != std::string::npos) {
      return strtod(line.c_str() + 6, nullptr);
    }
    pos = output.find("tps = ", pos + 1);
  }
  pos = output.find("tps = ");
  return pos == std::string::npos ? -1 : strtod(output.c_str() + pos + 6, nullptr);
}

PagefsEnv::PagefsEnv(const BenchConfig& config) : scratch_(config.base_dir) {}

PagefsEnv::~PagefsEnv() = default;

absl::Status PagefsEnv::Start(const std::string& tenant) {
  tenant_ = tenant;
  // PGBRANCH_BENCH_TRANSPORT: how pagefs reaches the pageserver. "tcp" (default), "unix" (gRPC
  // over --listen-unix) or "channel" (that, and commits over --commit-socket).
  const char* transport = std::getenv("PGBRANCH_BENCH_TRANSPORT");
  transport_ = transport == nullptr ? "tcp" : transport;
  std::vector<std::string> server_args;
  if (transport_ == "unix" || transport_ == "channel") {
    server_args = {"--listen-unix", scratch_.path() + "/ps.sock"};
  }
  if (transport_ == "channel") {
    server_args.insert(server_args.end(), {"--commit-socket", scratch_.path() + "/cs.sock"});
  } else if (transport_ != "tcp" && transport_ != "unix") {
    return absl::InvalidArgumentError(absl::StrCat(
        "PGBRANCH_BENCH_TRANSPORT must be tcp, unix or channel, not '", transport_, "'"));
  }
  server_ =
      std::make_unique<testing::PageserverProcess>(scratch_.path() + "/pageserver", server_args);
  absl::Status s = server_->Start();
  if (!s.ok()) return s;
  stub_ = server_->NewStub();
  v1::CreateTenantRequest req;
  req.set_tenant_id(tenant);
  req.set_root_timeline_id("main");
  v1::Tenant resp;
  grpc::ClientContext ctx;
  grpc::Status gs = stub_->CreateTenant(&ctx, req, &resp);
  if (!gs.ok()) return absl::InternalError(absl::StrCat("CreateTenant: ", gs.error_message()));
  return absl::OkStatus();
}

absl::Status PagefsEnv::CreateTimeline(const std::string& id, const std::string& ancestor) {
  v1::CreateTimelineRequest req;
  req.set_tenant_id(tenant_);
  req.set_timeline_id(id);
  req.set_ancestor_timeline_id(ancestor);
  v1::Timeline resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  grpc::Status gs = stub_->CreateTimeline(&ctx, req, &resp);
  if (!gs.ok()) return absl::InternalError(absl::StrCat("CreateTimeline: ", gs.error_message()));
  return absl::OkStatus();
}

absl::Status PagefsEnv::Checkpoint() {
  v1::RunMaintenanceRequest req;
  v1::RunMaintenanceResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(600));
  grpc::Status gs = stub_->RunMaintenance(&ctx, req, &resp);
  if (!gs.ok()) return absl::InternalError(absl::StrCat("RunMaintenance: ", gs.error_message()));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<testing::PagefsMount>> PagefsEnv::Mount(
    const std::string& timeline, const std::string& mountpoint, int metrics_port,
    const std::vector<std::string>& extra_args) {
  testing::PagefsMount::Options o;
  o.pageserver = server_->address();
  if (transport_ != "tcp") o.pageserver = "unix:" + scratch_.path() + "/ps.sock";
  if (transport_ == "channel") {
    o.extra_args = {"--commit-channel", "unix:" + scratch_.path() + "/cs.sock"};
  }
  o.tenant = tenant_;
  o.timeline = timeline;
  o.mountpoint = mountpoint;
  if (metrics_port > 0) {
    o.extra_args.insert(o.extra_args.end(),
                        {"--metrics-listen", absl::StrCat("127.0.0.1:", metrics_port)});
  }
  o.extra_args.insert(o.extra_args.end(), extra_args.begin(), extra_args.end());
  // PGBRANCH_BENCH_PAGEFS_ARGS="--flag value ...": more pagefs flags (A/B of a pagefs option).
  if (const char* extra = getenv("PGBRANCH_BENCH_PAGEFS_ARGS")) {
    for (absl::string_view arg : absl::StrSplit(extra, ' ', absl::SkipWhitespace())) {
      o.extra_args.emplace_back(arg);
    }
  }
  auto mount = std::make_unique<testing::PagefsMount>(o);
  absl::Status s = mount->Mount();
  if (!s.ok()) return s;
  chmod(mountpoint.c_str(), 0755);
  return mount;
}

const char kOpCount[] = "pgbranch_pagefs_operation_duration_seconds_count";
const char kOpSum[] = "pgbranch_pagefs_operation_duration_seconds_sum";
const char kRpcCount[] = "pgbranch_pagefs_store_rpc_duration_seconds_count";
const char kRpcSum[] = "pgbranch_pagefs_store_rpc_duration_seconds_sum";

// label value -> (count, sum) of a histogram labelled by `label`, from a /metrics text.
std::map<std::string, std::pair<double, double>> Histograms(const std::string& text,
                                                            const std::string& count_name,
                                                            const std::string& sum_name,
                                                            const std::string& label) {
  std::map<std::string, std::pair<double, double>> out;
  std::istringstream in(text);
  std::string line;
  const std::string key = label + "=\"";
  while (std::getline(in, line)) {
    bool is_count = line.rfind(count_name + "{", 0) == 0;
    bool is_sum = line.rfind(sum_name + "{", 0) == 0;
    if (!is_count && !is_sum) continue;
    size_t p = line.find(key);
    size_t sp = line.rfind(' ');
    if (p == std::string::npos || sp == std::string::npos) continue;
    p += key.size();
    std::string value = line.substr(p, line.find('"', p) - p);
    double v = 0;
    if (!absl::SimpleAtod(line.substr(sp + 1), &v)) continue;
    (is_count ? out[value].first : out[value].second) = v;
  }
  return out;
}

// What pagefs did between two scrapes: "read 1200 (mean 85 us), ..." per operation and per RPC.
std::string Activity(const std::string& before, const std::string& after, const char* count_name,
                     const char* sum_name, const std::string& label, double per) {
  auto b = Histograms(before, count_name, sum_name, label);
  auto a = Histograms(after, count_name, sum_name, label);
  std::string out;
  for (const auto& [name, cs] : a) {
    double n = cs.first - b[name].first;
    double sum = cs.second - b[name].second;
    if (n < 1) continue;
    if (per != 1) {
      absl::StrAppend(&out, out.empty() ? "" : ", ",
                      absl::StrFormat("%s %.2f (mean %.0f us)", name, n / per, sum / n * 1e6));
      continue;
    }
    absl::StrAppend(
        &out, out.empty() ? "" : ", ",
        absl::StrFormat("%s %.0f (mean %.0f us, total %.2f s)", name, n, sum / n * 1e6, sum));
  }
  return out.empty() ? "none recorded" : out;
}

// ", commits 12 (mean 1.2 ms)" between two scrapes.
std::string Commits(const std::string& before, const std::string& after) {
  const std::string name = "pgbranch_pagefs_commit_duration_seconds";
  auto get = [](const std::string& text, const std::string& metric) {
    double v = MetricValue(text, metric, "");
    return v < 0 ? 0 : v;
  };
  double n = get(after, name + "_count") - get(before, name + "_count");
  double sum = get(after, name + "_sum") - get(before, name + "_sum");
  return absl::StrFormat(", commit %.0f (mean %.0f us, total %.2f s)", n, n > 0 ? sum / n * 1e6 : 0,
                         sum);
}

}  // namespace pgbranch::pagefs_bench
