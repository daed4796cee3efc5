#include "cli/cli_context.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/process_util.h"
#include "operator/model/json.h"

namespace pgbranch::cli {

absl::StatusOr<CliContext> CliContext::Create(const std::string& state_dir, bool json) {
  CliContext ctx;
  if (!state_dir.empty()) {
    ctx.state_dir_ = state_dir;
  } else if (const char* home = std::getenv("PGBRANCH_HOME"); home && *home) {
    ctx.state_dir_ = home;
  } else if (::geteuid() == 0) {
    // Not under /root (mode 0700): PostgreSQL runs as `postgres` on files in the state dir.
    ctx.state_dir_ = "/var/lib/pgbranch";
  } else {
    const char* h = std::getenv("HOME");
    ctx.state_dir_ = absl::StrCat(h && *h ? h : "/tmp", "/.pgbranch");
  }
  std::error_code ec;
  ctx.state_dir_ = std::filesystem::absolute(ctx.state_dir_, ec).lexically_normal().string();
  if (!ctx.state_dir_.empty() && ctx.state_dir_.back() == '/') ctx.state_dir_.pop_back();
  ctx.json_ = json;
  return ctx;
}

absl::StatusOr<LocalInstance> CliContext::Instance() const {
  std::string text = ReadFileOrEmpty(Path("local.json"));
  if (text.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("local mode is not running in ", state_dir_,
                                                      "; start it with `pgbranch local up`"));
  }
  web::json::value v;
  try {
    v = web::json::value::parse(text);
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat(Path("local.json"), " is damaged: ", e.what()));
  }
  LocalInstance inst;
  inst.pageserver = control::JsonString(v, "pageserver");
  inst.controller_url = control::JsonString(v, "controller");
  inst.proxy_port = static_cast<int>(control::JsonInt(v, "proxyPort"));
  inst.pageserver_pid = static_cast<int>(control::JsonInt(v, "pageserverPid"));
  inst.controller_pid = static_cast<int>(control::JsonInt(v, "controllerPid"));
  inst.proxy_pid = static_cast<int>(control::JsonInt(v, "proxyPid"));
  inst.test_clock = control::JsonBool(v, "testClock");
  inst.started_at = control::JsonString(v, "startedAt");
  return inst;
}

absl::Status CliContext::WriteInstance(const LocalInstance& inst) const {
  web::json::value v = web::json::value::object();
  v["pageserver"] = web::json::value::string(inst.pageserver);
  v["controller"] = web::json::value::string(inst.controller_url);
  v["proxyPort"] = web::json::value::number(inst.proxy_port);
  v["pageserverPid"] = web::json::value::number(inst.pageserver_pid);
  v["controllerPid"] = web::json::value::number(inst.controller_pid);
  v["proxyPid"] = web::json::value::number(inst.proxy_pid);
  v["testClock"] = web::json::value::boolean(inst.test_clock);
  v["startedAt"] = web::json::value::string(inst.started_at);
  std::string tmp = Path("local.json.tmp");
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << v.serialize() << "\n";
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), Path("local.json").c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot write ", Path("local.json")));
  }
  return absl::OkStatus();
}

absl::StatusOr<ApiClient> CliContext::Client() const {
  if (kube_) return ApiClient(std::shared_ptr<const ApiTransport>(kube_));
  auto inst = Instance();
  if (!inst.ok()) return inst.status();
  return ApiClient(inst->controller_url);
}

absl::StatusOr<std::string> CliContext::Password() const {
  std::string pw(absl::StripAsciiWhitespace(ReadFileOrEmpty(PasswordFile())));
  if (pw.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no credentials in ", PasswordFile(), "; run `pgbranch local up`"));
  }
  return pw;
}

std::string CliContext::BinDir() {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/self/exe", ec).parent_path().string();
}

void PrintJson(const web::json::value& v) {
  // cpprest has no pretty printer; a compact document per line is what jq and scripts want.
  std::cout << v.serialize() << std::endl;
}

std::string ConnectionUri(const std::string& password, int port) {
  return absl::StrCat("postgresql://app:", password, "@127.0.0.1:", port, "/app");
}

absl::Status WaitFor(const std::function<absl::StatusOr<bool>()>& poll, absl::Duration timeout,
                     const std::string& what, absl::Duration interval) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    auto done = poll();
    if (!done.ok()) return done.status();
    if (*done) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("timed out after ", absl::FormatDuration(timeout), " waiting for ", what));
    }
    absl::SleepFor(interval);
  }
}

}  // namespace pgbranch::cli
