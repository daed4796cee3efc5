#include "operator/local/local_compute_runtime.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/cpprest.h"
#include "common/log.h"
#include "common/net_util.h"
#include "common/process_util.h"
#include "common/text_util.h"
#include "operator/control/reconcile_context.h"
#include "operator/model/json.h"

namespace pgbranch::cli {
namespace {

namespace fs = std::filesystem;
using control::ComputeObservation;
using control::ComputeState;

// The last non-empty line of a log: what a failed agent said last.
std::string LastLine(const std::string& path) {
  std::string text = ReadFileOrEmpty(path);
  std::string last;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StripAsciiWhitespace(line).empty()) last = line;
  }
  return last;
}

bool IsMounted(const std::string& dir) {
  std::ifstream in("/proc/mounts");
  std::string dev, mnt, rest;
  while (in >> dev >> mnt && std::getline(in, rest)) {
    if (mnt == dir) return true;
  }
  return false;
}

bool Alive(pid_t pid) { return ProcessAlive(pid); }

}  // namespace

LocalComputeRuntime::LocalComputeRuntime(LocalComputeOptions options, ChangeFn on_change)
    : options_(std::move(options)), on_change_(std::move(on_change)) {}

LocalComputeRuntime::~LocalComputeRuntime() { StopAll(); }

void LocalComputeRuntime::CleanupLeftovers() {
  std::error_code ec;
  fs::path root = fs::path(options_.state_dir) / "computes";
  if (!fs::exists(root, ec)) return;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    std::string dir = entry.path().string();
    pid_t pid = std::atoi(ReadFileOrEmpty(dir + "/agent.pid").c_str());
    if (Alive(pid)) {
      LogWarning("Stopping a compute left by an earlier controller",
                 {{"workdir", dir}, {"pid", std::to_string(pid)}});
      ::kill(pid, SIGTERM);
      for (int i = 0; i < (options_.stop_timeout_seconds + 10) * 10 && Alive(pid); ++i) {
        ::usleep(100'000);
      }
      if (Alive(pid)) ::kill(-pid, SIGKILL);
    }
    std::string mnt = dir + "/mnt";
    if (IsMounted(mnt)) ::umount2(mnt.c_str(), MNT_DETACH);
    ::unlink((dir + "/agent.pid").c_str());
  }
}

void LocalComputeRuntime::StopAll() {
  std::unique_lock<std::mutex> l(mu_);
  shutting_down_ = true;
  // Failed computes have exited already (their monitor is done): nothing to stop.
  for (auto it = computes_.begin(); it != computes_.end();) {
    it = it->second->obs.state == ComputeState::kFailed ? computes_.erase(it) : std::next(it);
  }
  for (auto& [key, c] : computes_) {
    if (!c->stop_requested && c->pid > 0) {
      c->stop_requested = true;
      c->stop_time = absl::Now();
      ::kill(c->pid, SIGTERM);
    }
  }
  cv_.wait_for(l, std::chrono::seconds(options_.stop_timeout_seconds + 15),
               [&] { return computes_.empty() && monitors_ == 0; });
}

absl::Status LocalComputeRuntime::Start(const control::ComputeSpec& spec) {
  const std::string key = control::ObjectKey(spec.ns, spec.endpoint);
  std::lock_guard<std::mutex> l(mu_);
  if (shutting_down_) return absl::UnavailableError("the controller is shutting down");
  if (auto it = computes_.find(key); it != computes_.end()) {
    if (it->second->obs.state != ComputeState::kFailed) return absl::OkStatus();
    computes_.erase(it);  // its monitor thread has finished
  }
  auto c = std::make_shared<Compute>();
  c->workdir = (fs::path(options_.state_dir) / "computes" / spec.endpoint).string();
  std::error_code ec;
  fs::create_directories(c->workdir + "/mnt", ec);
  if (ec)
    return absl::InternalError(absl::StrCat("cannot create ", c->workdir, ": ", ec.message()));
  auto port = net::FreeLoopbackPort();
  if (!port.ok()) return port.status();
  c->pg_port = *port;
  ::unlink((c->workdir + "/status.port").c_str());
  std::string password_file = options_.password_file;
  if (options_.password_file_for) {
    absl::StatusOr<std::string> file = options_.password_file_for(spec.ns, spec.branch);
    if (!file.ok()) return file.status();
    password_file = *file;
  }

  std::ostringstream cfg;
  cfg << "endpoint: " << YamlQuote(spec.endpoint) << "\n"
      << "branch: " << YamlQuote(spec.branch) << "\n"
      << "pageserver: " << YamlQuote(options_.pageserver) << "\n"
      << "tenant: " << YamlQuote(spec.tenant_id) << "\n"
      << "timeline: " << YamlQuote(spec.timeline_id) << "\n"
      << "mode: " << (spec.read_only ? "read-only" : "read-write") << "\n"
      << "workdir: " << YamlQuote(c->workdir) << "\n"
      << "pg_port: " << c->pg_port << "\n"
      << "status_listen: \"127.0.0.1:0\"\n"
      << "status_port_file: " << YamlQuote(c->workdir + "/status.port") << "\n"
      << "pg_bin_dir: " << YamlQuote(options_.pg_bin_dir) << "\n"
      << "pagefs_bin: " << YamlQuote(options_.pagefs_bin) << "\n"
      << "role: " << YamlQuote(options_.role) << "\n"
      << "database: " << YamlQuote(options_.database) << "\n"
      << "password_file: " << YamlQuote(password_file) << "\n"
      << "stop_timeout_seconds: " << options_.stop_timeout_seconds << "\n"
      << "parameters:\n";
  for (const auto& [k, v] : spec.postgres_parameters) {
    cfg << "  " << YamlQuote(k) << ": " << YamlQuote(v) << "\n";
  }
  if (spec.postgres_parameters.empty()) cfg << "  {}\n";
  std::string config_path = c->workdir + "/compute.yaml";
  {
    std::ofstream out(config_path, std::ios::trunc);
    out << cfg.str();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", config_path));
  }

  std::string log_path = c->workdir + "/compute.log";
  auto pid = SpawnDetached({options_.compute_bin, "--config", config_path}, log_path,
                           /*daemon=*/false);
  if (!pid.ok()) return pid.status();
  c->pid = *pid;
  std::ofstream(c->workdir + "/agent.pid", std::ios::trunc) << *pid << "\n";
  c->obs.state = ComputeState::kStarting;
  computes_[key] = c;
  ++monitors_;
  std::thread(&LocalComputeRuntime::Monitor, this, key, c).detach();
  return absl::OkStatus();
}

absl::Status LocalComputeRuntime::Stop(const std::string& ns, const std::string& endpoint) {
  const std::string key = control::ObjectKey(ns, endpoint);
  std::lock_guard<std::mutex> l(mu_);
  auto it = computes_.find(key);
  if (it == computes_.end()) return absl::OkStatus();
  Compute& c = *it->second;
  if (c.obs.state == ComputeState::kFailed) {
    computes_.erase(it);  // already exited and reaped
    cv_.notify_all();
    return absl::OkStatus();
  }
  if (!c.stop_requested) {
    c.stop_requested = true;
    c.stop_time = absl::Now();
    c.obs.state = ComputeState::kStopping;
    ::kill(c.pid, SIGTERM);
  }
  return absl::OkStatus();
}

ComputeObservation LocalComputeRuntime::Observe(const std::string& ns,
                                                const std::string& endpoint) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = computes_.find(control::ObjectKey(ns, endpoint));
  if (it == computes_.end()) return {};
  return it->second->obs;
}

bool LocalComputeRuntime::Poll(Compute* c, ComputeObservation* obs) {
  if (c->status_port == 0) {
    c->status_port = std::atoi(ReadFileOrEmpty(c->workdir + "/status.port").c_str());
    if (c->status_port == 0) return false;
  }
  auto body = net::HttpGet(c->status_port, "/status", absl::Seconds(2));
  if (!body.ok()) return false;
  web::json::value v;
  try {
    v = web::json::value::parse(*body);
  } catch (const std::exception&) {
    return false;
  }
  std::string state = control::JsonString(v, "state");
  if (state == "running") {
    obs->state = ComputeState::kRunning;
  } else if (state == "stopping") {
    obs->state = ComputeState::kStopping;
  } else {
    obs->state = ComputeState::kStarting;  // "failed" becomes kFailed once the agent exits
  }
  obs->busy = control::JsonBool(v, "busy");
  if (auto t = control::ParseRfc3339(control::JsonString(v, "last_active")); t.ok()) {
    obs->last_active = *t;
  }
  obs->host = "127.0.0.1";
  obs->port = c->pg_port;
  obs->message = control::JsonString(v, "message");
  return true;
}

void LocalComputeRuntime::Monitor(std::string key, std::shared_ptr<Compute> c) {
  const std::string ns = key.substr(0, key.find('/'));
  const std::string endpoint = key.substr(key.find('/') + 1);
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(c->pid, &status, WNOHANG);
    if (r == c->pid) break;
    ComputeObservation obs;
    bool answered = Poll(c.get(), &obs);
    bool changed = false;
    bool escalate = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (c->stop_requested) {
        obs.state = ComputeState::kStopping;
        escalate = absl::Now() - c->stop_time > absl::Seconds(options_.stop_timeout_seconds + 10);
      }
      if (answered || c->stop_requested) {
        if (!answered) obs = c->obs;
        obs.state = c->stop_requested ? ComputeState::kStopping : obs.state;
        changed = obs.state != c->obs.state || obs.busy != c->obs.busy;
        c->obs = obs;
      }
    }
    if (escalate) {
      LogWarning("Compute did not stop in time; killing it", {{"endpoint", endpoint}});
      ::kill(-c->pid, SIGKILL);
      ::kill(c->pid, SIGKILL);
    }
    if (changed && on_change_) on_change_(ns, endpoint);
    bool starting = c->obs.state == ComputeState::kStarting;
    ::usleep(starting ? 5'000 : (c->stop_requested ? 20'000 : 500'000));
  }
  std::string mnt = c->workdir + "/mnt";
  if (IsMounted(mnt)) ::umount2(mnt.c_str(), MNT_DETACH);  // only after a kill
  ::unlink((c->workdir + "/agent.pid").c_str());
  {
    std::lock_guard<std::mutex> l(mu_);
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (c->stop_requested) {
      auto it = computes_.find(key);
      if (it != computes_.end() && it->second == c) computes_.erase(it);
      if (!clean) {
        LogWarning("Compute stopped uncleanly", {{"endpoint", endpoint}});
      }
    } else {
      c->obs.state = ComputeState::kFailed;
      std::string last = LastLine(c->workdir + "/compute.log");
      c->obs.message =
          absl::StrCat("the compute exited (",
                       WIFEXITED(status) ? absl::StrCat("code ", WEXITSTATUS(status))
                                         : absl::StrCat("signal ", WTERMSIG(status)),
                       ")", last.empty() ? "" : ": ", last, "; see ", c->workdir, "/compute.log");
    }
    cv_.notify_all();
  }
  if (on_change_) on_change_(ns, endpoint);
  std::lock_guard<std::mutex> l(mu_);
  --monitors_;
  cv_.notify_all();
}

}  // namespace pgbranch::cli
