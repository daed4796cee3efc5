#include "operator/local/local_compute_runtime.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
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

// The "parameters:" section of compute.yaml (the agent re-reads it on SIGHUP).
std::string ParametersYaml(const std::map<std::string, std::string>& parameters) {
  std::string out = "parameters:\n";
  for (const auto& [k, v] : parameters) {
    absl::StrAppend(&out, "  ", YamlQuote(k), ": ", YamlQuote(v), "\n");
  }
  if (parameters.empty()) out += "  {}\n";
  return out;
}

// compute.yaml ends with its parameters section (LocalComputeRuntime::Start writes it last).
std::string ParametersSectionOf(const std::string& config) {
  size_t at = config.find("\nparameters:\n");
  return at == std::string::npos ? "" : config.substr(at + 1);
}

int PgPortOf(const std::string& config) {
  size_t at = config.find("\npg_port: ");
  return at == std::string::npos ? 0 : std::atoi(config.c_str() + at + 10);
}

// The agent of `workdir` if `pid` is it (pids are reused): started for it (`--config
// WORKDIR/compute.yaml`), or a spare handed it (SpareAgent), which writes to its compute.log.
bool IsAgentOf(pid_t pid, const std::string& workdir) {
  if (!Alive(pid)) return false;
  std::string cmd = CommandLine(pid);
  if (cmd.find("--config " + workdir + "/compute.yaml") != std::string::npos) return true;
  if (cmd.find(std::string(SpareAgent::kFlag) + " ") == std::string::npos) return false;
  // The kernel names the open file by its resolved path: compare with ours resolved (a state
  // directory reached through a symbolic link).
  std::error_code ec, ec2;
  fs::path out = fs::read_symlink("/proc/" + std::to_string(pid) + "/fd/1", ec);
  fs::path log = fs::weakly_canonical(fs::path(workdir) / "compute.log", ec2);
  return !ec && !ec2 && out == log;
}

// Signals every pid and waits up to `seconds` for all of them to exit; the ones left.
std::vector<pid_t> SignalAndWait(const std::vector<pid_t>& pids, int sig, double seconds) {
  for (pid_t p : pids) ::kill(p, sig);
  std::vector<pid_t> left;
  absl::Time deadline = absl::Now() + absl::Seconds(seconds);
  for (pid_t p : pids) {
    double remaining = std::max(0.0, absl::ToDoubleSeconds(deadline - absl::Now()));
    if (!WaitProcessGone(p, remaining)) left.push_back(p);
  }
  return left;
}

// Processes whose command line names `root` and whose program is one of `programs` (never a
// user's `tail -f` of a log there).
std::vector<pid_t> OurProcessesUnder(const std::string& root,
                                     const std::vector<std::string>& programs) {
  std::vector<pid_t> out;
  for (pid_t p : PidsWithCommandLine(root)) {
    std::string argv0 = CommandLine(p);
    argv0 = argv0.substr(0, argv0.find(' '));
    argv0 = argv0.substr(argv0.rfind('/') + 1);
    if (std::find(programs.begin(), programs.end(), argv0) != programs.end()) out.push_back(p);
  }
  return out;
}

}  // namespace

LocalComputeRuntime::LocalComputeRuntime(LocalComputeOptions options, ChangeFn on_change)
    : options_(std::move(options)), on_change_(std::move(on_change)) {
  if (options_.spare_agent) {
    fs::path state(options_.state_dir);
    std::error_code ec;
    std::string log = fs::is_directory(state / "logs", ec)
                          ? (state / "logs" / "spare-agent.log").string()
                          : "/dev/null";
    spare_ = std::make_unique<SpareAgent>(options_.compute_bin, (state / "computes").string() + "/",
                                          log, absl::Milliseconds(250));
  }
}

LocalComputeRuntime::~LocalComputeRuntime() { StopAll(); }

void LocalComputeRuntime::AdoptLeftovers(const std::string& ns,
                                         const std::function<bool(const std::string&)>& keep) {
  std::error_code ec;
  fs::path root = fs::path(options_.state_dir) / "computes";
  if (!fs::exists(root, ec)) return;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string dir = entry.path().string();
    const std::string endpoint = entry.path().filename().string();
    pid_t pid = std::atoi(ReadFileOrEmpty(dir + "/agent.pid").c_str());
    if (IsAgentOf(pid, dir) && keep(endpoint)) {
      auto c = std::make_shared<Compute>();
      c->pid = pid;
      c->adopted = true;
      c->workdir = dir;
      std::string config = ReadFileOrEmpty(dir + "/compute.yaml");
      c->pg_port = PgPortOf(config);
      c->parameters_yaml = ParametersSectionOf(config);
      c->obs.state = ComputeState::kStarting;  // until its /status answers
      LogInfo("Adopted a running compute",
              {{"endpoint", endpoint}, {"pid", std::to_string(pid)}, {"workdir", dir}});
      std::lock_guard<std::mutex> l(mu_);
      const std::string key = control::ObjectKey(ns, endpoint);
      computes_[key] = c;
      ++monitors_;
      std::thread(&LocalComputeRuntime::Monitor, this, key, c).detach();
      continue;
    }
    if (IsAgentOf(pid, dir)) {
      LogWarning("Stopping a compute of a deleted endpoint left by an earlier controller",
                 {{"workdir", dir}, {"pid", std::to_string(pid)}});
      if (!SignalAndWait({pid}, SIGTERM, options_.stop_timeout_seconds + 10).empty()) {
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
      }
    }
    std::string mnt = dir + "/mnt";
    if (IsMounted(mnt)) ::umount2(mnt.c_str(), MNT_DETACH);
    ::unlink((dir + "/agent.pid").c_str());
  }
}

int LocalComputeRuntime::StopEverything(const std::string& state_dir, int stop_timeout_seconds) {
  const std::string root = (fs::path(state_dir) / "computes").string() + "/";
  // 1. PostgreSQL: fast shutdown, then immediate, then SIGKILL. The postmaster's command line
  //    is "postgres -D STATE/computes/<endpoint>/mnt/pgdata ..." (backends rename themselves).
  std::vector<pid_t> postmasters = PidsWithCommandLine("-D " + root);
  std::vector<pid_t> left = SignalAndWait(postmasters, SIGINT, stop_timeout_seconds);
  if (!left.empty()) left = SignalAndWait(left, SIGQUIT, 5);
  if (!left.empty()) SignalAndWait(left, SIGKILL, 5);
  // 2. The agents (seeing PostgreSQL gone, they unmount and exit).
  std::vector<pid_t> agents = PidsWithCommandLine("--config " + root);
  for (pid_t p : PidsWithCommandLine(std::string(SpareAgent::kFlag) + " " + root)) {
    agents.push_back(p);  // spares (they exit at once) and agents that started as one
  }
  left = SignalAndWait(agents, SIGTERM, 40);
  for (pid_t p : left) ::kill(-p, SIGKILL);  // the agent leads its own session
  if (!left.empty()) SignalAndWait(left, SIGKILL, 5);
  // 3. pagefs processes whose agent is gone: unmount (pagefs flushes and exits), else SIGTERM.
  for (const std::string& mnt : MountsUnder(root.substr(0, root.size() - 1))) {
    auto pid = SpawnDetached({"/usr/bin/fusermount3", "-u", mnt}, "/dev/null", /*daemon=*/false);
    if (pid.ok()) ::waitpid(*pid, nullptr, 0);
  }
  std::vector<pid_t> pagefs = OurProcessesUnder(root, {"pagefs"});
  left = SignalAndWait(pagefs, SIGTERM, 30);
  if (!left.empty()) SignalAndWait(left, SIGKILL, 5);
  // 4. Whatever is still mounted (a killed pagefs leaves a dead mount), and any other process
  //    of the instance's computes (initdb, a backend of a killed postmaster...).
  for (const std::string& mnt : MountsUnder(root.substr(0, root.size() - 1))) {
    ::umount2(mnt.c_str(), MNT_DETACH);
  }
  SignalAndWait(OurProcessesUnder(root, {"pagefs", "pgbranch-compute", "postgres", "initdb"}),
                SIGKILL, 5);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    ::unlink((entry.path() / "agent.pid").c_str());
  }
  return static_cast<int>(postmasters.size() + agents.size());
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
      << "stop_timeout_seconds: " << options_.stop_timeout_seconds << "\n";
  if (!options_.commit_channel.empty()) {
    cfg << "commit_channel: " << YamlQuote(options_.commit_channel) << "\n";
  }
  // Last: UpdateParameters rewrites this section in place.
  c->parameters_yaml = ParametersYaml(spec.postgres_parameters);
  cfg << c->parameters_yaml;
  std::string config_path = c->workdir + "/compute.yaml";
  {
    std::ofstream out(config_path, std::ios::trunc);
    out << cfg.str();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", config_path));
  }

  std::string log_path = c->workdir + "/compute.log";
  // The spare, when one is ready: its exec and dynamic linking are done already.
  absl::StatusOr<pid_t> pid =
      spare_ ? spare_->Take(config_path, log_path) : absl::UnavailableError("no spare agents");
  if (!pid.ok()) {
    pid = SpawnDetached({options_.compute_bin, "--config", config_path}, log_path,
                        /*daemon=*/false);
  }
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

absl::StatusOr<bool> LocalComputeRuntime::Checkpoint(const std::string& ns,
                                                     const std::string& endpoint,
                                                     absl::Duration timeout) {
  int port = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = computes_.find(control::ObjectKey(ns, endpoint));
    if (it == computes_.end() || it->second->stop_requested ||
        it->second->obs.state != ComputeState::kRunning) {
      return absl::FailedPreconditionError(
          absl::StrCat("endpoint ", endpoint, " has no running compute"));
    }
    port = it->second->status_port;
  }
  if (port == 0) return absl::FailedPreconditionError("the agent's status port is not known yet");
  absl::StatusOr<std::string> body = net::HttpRequest("POST", port, "/checkpoint", "", timeout);
  if (!body.ok()) return body.status();
  try {
    return control::JsonBool(web::json::value::parse(*body), "checkpointed");
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("the agent's /checkpoint answer: ", e.what()));
  }
}

bool LocalComputeRuntime::UpdateParameters(const std::string& ns, const std::string& endpoint,
                                           const std::map<std::string, std::string>& parameters) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = computes_.find(control::ObjectKey(ns, endpoint));
  if (it == computes_.end()) return false;
  Compute& c = *it->second;
  if (c.stop_requested || c.obs.state == ComputeState::kFailed) return false;
  std::string wanted = ParametersYaml(parameters);
  if (wanted == c.parameters_yaml) return false;
  std::string path = c.workdir + "/compute.yaml";
  std::string config = ReadFileOrEmpty(path);
  size_t at = config.find("\nparameters:\n");
  if (at == std::string::npos) return false;
  config = config.substr(0, at + 1) + wanted;
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << config;
    if (!out) return false;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return false;
  c.parameters_yaml = wanted;
  c.parameters_message.clear();
  LogInfo("Asking the compute to apply changed PostgreSQL parameters", {{"endpoint", endpoint}});
  ::kill(c.pid, SIGHUP);
  return true;
}

std::string LocalComputeRuntime::ParametersMessage(const std::string& ns,
                                                   const std::string& endpoint) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = computes_.find(control::ObjectKey(ns, endpoint));
  return it == computes_.end() ? "" : it->second->parameters_message;
}

int LocalComputeRuntime::StatusPort(const std::string& ns, const std::string& endpoint) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = computes_.find(control::ObjectKey(ns, endpoint));
  return it == computes_.end() ? 0 : it->second->status_port;
}

bool LocalComputeRuntime::Exited(Compute* c, int* status) {
  if (!c->adopted) return ::waitpid(c->pid, status, WNOHANG) == c->pid;
  // Not our child: gone, or a zombie waiting for its new parent (an empty command line).
  if (Alive(c->pid) && !CommandLine(c->pid).empty()) return false;
  // The exit status is not ours to read; a requested stop counts as clean.
  *status = c->stop_requested ? 0 : (1 << 8);
  return true;
}

bool LocalComputeRuntime::Poll(Compute* c, bool starting, ComputeObservation* obs,
                               std::string* parameters_message) {
  if (c->status_port == 0) {
    c->status_port = std::atoi(ReadFileOrEmpty(c->workdir + "/status.port").c_str());
    if (c->status_port == 0) return false;
  }
  // While it starts, the agent holds the answer until the start ended (up to 1 s): the state
  // change is seen at once without polling every few ms. An agent without that page (started by
  // an older build, adopted) answers 404: plain polls from then on.
  const bool hold = starting && c->wait_start_supported;
  auto body = net::HttpGet(c->status_port, hold ? "/status/wait-start" : "/status",
                           absl::Seconds(hold ? 3 : 2));
  if (hold && absl::IsFailedPrecondition(body.status()) &&
      absl::StrContains(body.status().message(), "HTTP 404")) {
    c->wait_start_supported = false;
    return false;
  }
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
  *parameters_message = control::JsonString(v, "parameters_message");
  return true;
}

void LocalComputeRuntime::Monitor(std::string key, std::shared_ptr<Compute> c) {
  const std::string ns = key.substr(0, key.find('/'));
  const std::string endpoint = key.substr(key.find('/') + 1);
  int status = 0;
  for (;;) {
    if (Exited(c.get(), &status)) break;
    ComputeObservation obs;
    std::string parameters_message;
    bool starting_now;
    {
      std::lock_guard<std::mutex> l(mu_);
      starting_now = c->obs.state == ComputeState::kStarting && !c->stop_requested;
    }
    bool answered = Poll(c.get(), starting_now, &obs, &parameters_message);
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
      if (answered && parameters_message != c->parameters_message) {
        c->parameters_message = parameters_message;
        changed = true;
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
