#include "tests/bench/local/local_instance.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <regex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/cpprest.h"
#include "common/net_util.h"
#include "common/process_util.h"

namespace pgbranch::local_bench {

namespace pb = pagefs_bench;
using testing::CommandResult;
using testing::RunCommand;

std::string BinDir() {
  const char* d = std::getenv("PGBRANCH_BIN_DIR");
  return d && *d ? d : PGBRANCH_DEFAULT_BIN_DIR;
}

LocalInstance::~LocalInstance() {
  if (up_) Cli({"local", "down"});
}

absl::Status LocalInstance::Up(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"local", "up", "--proxy-port", "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  CommandResult r = Cli(args);
  if (r.exit_code != 0) return absl::InternalError("local up: " + r.Describe());
  up_ = true;
  std::string port(
      absl::StripAsciiWhitespace(pb::FileTail(dir_.path() + "/run/controller.port", 64)));
  controller_port_ = std::atoi(port.c_str());
  return absl::OkStatus();
}

CommandResult LocalInstance::Cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {BinDir() + "/pgbranch", "--state-dir", dir_.path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, "", 300);
}

absl::StatusOr<std::string> LocalInstance::Connstr(const std::string& endpoint) const {
  CommandResult r = Cli({"connstr", endpoint});
  if (r.exit_code != 0) return absl::InternalError(r.Describe());
  return std::string(absl::StripAsciiWhitespace(r.out));
}

absl::StatusOr<std::string> LocalInstance::CreateBranch(const std::string& name,
                                                        const std::string& parent,
                                                        const std::string& suspend_timeout) const {
  std::vector<std::string> args = {"branch", "create", name};
  if (!parent.empty()) args.insert(args.end(), {"--parent", parent});
  args.insert(args.end(), {"--suspend-timeout", suspend_timeout});
  CommandResult r = Cli(args);
  if (r.exit_code != 0) return absl::InternalError(r.Describe());
  return Connstr(name);
}

absl::StatusOr<int> LocalInstance::DirectPort(const std::string& endpoint) const {
  auto body = net::HttpRequest("POST", controller_port_, "/v1/endpoints/" + endpoint + "/wake", "",
                               absl::Seconds(120));
  if (!body.ok()) return body.status();
  return web::json::value::parse(*body).at("port").as_integer();
}

absl::StatusOr<std::string> LocalInstance::Phase(const std::string& endpoint) const {
  auto body = net::HttpGet(controller_port_, "/v1/endpoints/" + endpoint);
  if (!body.ok()) return body.status();
  return web::json::value::parse(*body).at("status").at("phase").as_string();
}

absl::Status LocalInstance::WaitPhase(const std::string& endpoint, const std::string& phase) const {
  for (int i = 0; i < 1200; ++i) {
    auto p = Phase(endpoint);
    if (p.ok() && *p == phase) return absl::OkStatus();
    usleep(50'000);
  }
  return absl::DeadlineExceededError(absl::StrCat(endpoint, " never became ", phase));
}

absl::Status LocalInstance::DeleteAsync(const std::string& kind_path) const {
  return net::HttpRequest("DELETE", controller_port_, "/v1/" + kind_path, "", absl::Seconds(30))
      .status();
}

std::string LocalInstance::ComputeLog(const std::string& endpoint) const {
  return cli::ReadFileOrEmpty(dir_.path() + "/computes/" + endpoint + "/compute.log");
}

std::string LocalInstance::PostgresLog(const std::string& endpoint) const {
  return cli::ReadFileOrEmpty(dir_.path() + "/computes/" + endpoint + "/postgres.log");
}

std::string LocalInstance::ControllerLog() const {
  return cli::ReadFileOrEmpty(dir_.path() + "/logs/controller.log");
}

absl::Status LocalInstance::Explain(absl::Status s) const {
  if (s.ok()) return s;
  std::string report;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path() + "/computes", ec)) {
    const std::string name = e.path().filename().string();
    const std::string clog = e.path().string() + "/compute.log";
    const std::string plog = e.path().string() + "/postgres.log";
    const bool failed = ComputeLog(name).find("level=error") != std::string::npos ||
                        PostgresLog(name).find("FATAL:") != std::string::npos ||
                        PostgresLog(name).find("PANIC:") != std::string::npos;
    if (!failed) continue;
    absl::StrAppend(&report, "\n--- tail of ", clog, " ---\n", pb::FileTail(clog, 3000),
                    "\n--- tail of ", plog, " ---\n", pb::FileTail(plog, 3000));
  }
  if (report.empty()) return s;
  return absl::Status(s.code(), absl::StrCat(s.message(), report));
}

std::string LogLine::Field(const std::string& key) const {
  const std::string start = " " + key + "=";
  size_t at = text.find(start);
  if (at == std::string::npos) return "";
  at += start.size();
  if (at < text.size() && text[at] == '"') {
    std::string out;
    for (size_t i = at + 1; i < text.size() && text[i] != '"'; ++i) {
      if (text[i] == '\\' && i + 1 < text.size()) ++i;
      out.push_back(text[i]);
    }
    return out;
  }
  size_t end = text.find(' ', at);
  return text.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

std::optional<LogLine> FindLogLine(const std::string& log, const std::string& msg,
                                   const std::vector<std::pair<std::string, std::string>>& match) {
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    LogLine l;
    l.text = line;
    if (line.rfind("ts=", 0) != 0) continue;
    l.msg = l.Field("msg");
    if (l.msg != msg) continue;
    bool all = true;
    for (const auto& [k, v] : match) all = all && l.Field(k) == v;
    if (!all) continue;
    std::string err;
    if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", line.substr(3, line.find(' ') - 3),
                         absl::UTCTimeZone(), &l.ts, &err)) {
      continue;
    }
    return l;
  }
  return std::nullopt;
}

absl::Time PostgresLogTime(const std::string& log, const std::string& needle) {
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(needle) == std::string::npos || line.size() < 23) continue;
    absl::Time t;
    std::string err;
    if (absl::ParseTime("%Y-%m-%d %H:%M:%E*S", line.substr(0, 23), absl::UTCTimeZone(), &t, &err)) {
      return t;
    }
  }
  return absl::InfinitePast();
}

std::string ConnectionOnPort(const std::string& uri, int port) {
  return std::regex_replace(uri, std::regex("@127\\.0\\.0\\.1:[0-9]+/"),
                            absl::StrCat("@127.0.0.1:", port, "/"));
}

}  // namespace pgbranch::local_bench
