#include "cli/check_runner.h"

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/pq_session.h"

extern char** environ;

namespace pgbranch::cli {
namespace {

constexpr size_t kOutputLines = 20;

// The last `n` lines of `text`.
std::string Tail(const std::string& text, size_t n) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  size_t from = lines.size() > n ? lines.size() - n : 0;
  std::string out;
  for (size_t i = from; i < lines.size(); ++i) absl::StrAppend(&out, lines[i], "\n");
  return out;
}

}  // namespace

CheckResult RunSqlCheck(const std::string& uri, const std::string& file) {
  CheckResult r;
  r.name = file;
  std::ifstream in(file);
  if (!in) {
    r.output = absl::StrCat("cannot read ", file);
    return r;
  }
  std::stringstream sql;
  sql << in.rdbuf();
  auto session = PqSession::Connect(uri, "pgbranch promote check");
  if (!session.ok()) {
    r.output = std::string(session.status().message());
    return r;
  }
  absl::StatusOr<SqlResult> done = (*session)->Exec(sql.str());
  if (!done.ok()) {
    r.output = std::string(done.status().message());
    return r;
  }
  if (done->rows.size() == 1 && done->rows[0].size() == 1 && done->rows[0][0] == "f") {
    r.output = "the check's last query returned false";
    return r;
  }
  r.passed = true;
  return r;
}

CheckResult RunCommandCheck(const std::string& uri, const std::string& command) {
  CheckResult r;
  r.name = absl::StrCat("command: ", command);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    if (kv.rfind("PGBRANCH_REHEARSAL_URI=", 0) == 0 || kv.rfind("DATABASE_URL=", 0) == 0) continue;
    env_strings.push_back(std::move(kv));
  }
  env_strings.push_back("PGBRANCH_REHEARSAL_URI=" + uri);
  env_strings.push_back("DATABASE_URL=" + uri);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string sh = "/bin/sh", dash_c = "-c", cmd = command;
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};

  int fds[2];
  if (::pipe(fds) != 0) {
    r.output = "pipe failed";
    return r;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    r.output = "fork failed";
    return r;
  }
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execve(argv[0], argv, envp.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string output;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) output.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.output = Tail(output, kOutputLines);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    r.passed = true;
  } else if (WIFEXITED(status)) {
    r.output = absl::StrCat("exit code ", WEXITSTATUS(status), "\n", r.output);
  } else {
    r.output = absl::StrCat("killed by signal ", WTERMSIG(status), "\n", r.output);
  }
  return r;
}

}  // namespace pgbranch::cli
