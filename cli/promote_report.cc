#include "cli/promote_report.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/sql_script.h"

namespace pgbranch::cli {

using web::json::value;

namespace {

std::string LockName(const std::string& mode) {
  if (mode == "AccessExclusiveLock") return "ACCESS EXCLUSIVE lock (blocks reads and writes)";
  if (mode == "ExclusiveLock") return "EXCLUSIVE lock (blocks writes)";
  if (mode == "ShareRowExclusiveLock") return "SHARE ROW EXCLUSIVE lock (blocks writes)";
  return "SHARE lock (blocks writes)";
}

value StatementJson(const StatementReport& r) {
  value v = value::object();
  v["sql"] = value::string(r.sql);
  v["transactional"] = value::boolean(r.transactional);
  v["applied"] = value::boolean(r.applied);
  v["durationMs"] = value::number(absl::ToDoubleMilliseconds(r.duration));
  if (!r.error.empty()) v["error"] = value::string(r.error);
  value locks = value::array();
  for (size_t i = 0; i < r.locks.size(); ++i) {
    value l = value::object();
    l["relation"] = value::string(r.locks[i].relation);
    l["mode"] = value::string(r.locks[i].mode);
    locks[i] = l;
  }
  v["locks"] = locks;
  v["accessExclusive"] = value::boolean(r.TakesAccessExclusive());
  value rewritten = value::array();
  for (size_t i = 0; i < r.rewritten.size(); ++i) rewritten[i] = value::string(r.rewritten[i]);
  v["rewritten"] = rewritten;
  return v;
}

}  // namespace

std::string OneLine(const std::string& sql) {
  std::string out;
  bool space = false;
  for (char c : WithoutLeadingComments(sql)) {
    if (c == '\n' || c == '\t' || c == ' ' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  if (out.size() > 110) out = out.substr(0, 107) + "...";
  return out;
}

std::string Millis(absl::Duration d) {
  return absl::StrFormat("%.0f ms", absl::ToDoubleMilliseconds(d));
}

value ApplyJson(const ApplyReport& a) {
  value v = value::object();
  value st = value::array();
  for (size_t i = 0; i < a.statements.size(); ++i) st[i] = StatementJson(a.statements[i]);
  v["statements"] = st;
  v["committed"] = value::boolean(a.committed);
  v["complete"] = value::boolean(a.complete);
  v["durationMs"] = value::number(absl::ToDoubleMilliseconds(a.duration));
  if (!a.error.empty()) v["error"] = value::string(a.error);
  return v;
}

void PrintApply(const ApplyReport& a) {
  int n = 0;
  bool after_shown = false;
  for (const StatementReport& r : a.statements) {
    if (!r.transactional && !after_shown) {
      std::cout << "    after the transaction, one by one:\n";
      after_shown = true;
    }
    std::cout << absl::StrFormat("  %2d. %s  (%s)\n", ++n, OneLine(r.sql), Millis(r.duration));
    for (const LockTaken& l : r.locks) {
      std::cout << "        " << LockName(l.mode) << " on " << l.relation << "\n";
    }
    for (const std::string& rel : r.rewritten) {
      std::cout << "        REWRITES " << rel << " (new file: time and space grow with its size)\n";
    }
    if (!r.transactional && r.error.empty()) {
      std::cout << "        ran outside a transaction (its locks are not observed)\n";
    }
    if (!r.error.empty()) std::cout << "        FAILED: " << r.error << "\n";
  }
  if (a.committed && a.complete) {
    std::cout << "  all " << a.statements.size() << " statement(s) applied in "
              << Millis(a.duration) << "\n";
  } else if (!a.committed) {
    std::cout << "  the transaction was rolled back: none of the statements stayed\n";
    if (a.failed < 0 && !a.error.empty()) std::cout << "  error: " << a.error << "\n";
  }
}

value RehearsalJson(const Rehearsal& r) {
  value v = value::object();
  v["branch"] = value::string(r.branch);
  v["deleted"] = value::boolean(r.deleted.ok());
  v["succeeded"] = value::boolean(r.ok());
  v["apply"] = ApplyJson(r.apply);
  value checks = value::array();
  for (size_t i = 0; i < r.checks.size(); ++i) {
    value c = value::object();
    c["name"] = value::string(r.checks[i].name);
    c["passed"] = value::boolean(r.checks[i].passed);
    c["output"] = value::string(r.checks[i].output);
    checks[i] = c;
  }
  v["checks"] = checks;
  value diff = value::array();
  for (size_t i = 0; i < r.result_diff.size(); ++i) {
    value d = value::object();
    d["object"] = value::string(r.result_diff[i].label);
    d["change"] = value::string(r.result_diff[i].change);
    diff[i] = d;
  }
  v["resultAgainstBranch"] = diff;
  if (!r.result_diff_error.empty()) v["resultDiffError"] = value::string(r.result_diff_error);
  return v;
}

void PrintRehearsal(const Rehearsal& r, const std::string& branch) {
  PrintApply(r.apply);
  if (!r.checks.empty()) {
    int passed = 0;
    for (const auto& c : r.checks) passed += c.passed ? 1 : 0;
    std::cout << "  checks: " << passed << " passed, " << r.checks.size() - passed << " failed\n";
    for (const auto& c : r.checks) {
      std::cout << "    " << (c.passed ? "ok    " : "FAILED") << " " << c.name << "\n";
      if (!c.passed) {
        for (absl::string_view line : absl::StrSplit(c.output, '\n', absl::SkipEmpty())) {
          std::cout << "             " << line << "\n";
        }
      }
    }
  }
  if (r.apply.complete) {
    if (!r.result_diff_error.empty()) {
      std::cout << "  schema of the result against " << branch
                << ": not compared: " << r.result_diff_error << "\n";
    } else if (r.result_diff.empty()) {
      std::cout << "  schema of the result: identical to " << branch << "'s\n";
    } else {
      std::cout << "  schema of the result against " << branch << ": " << r.result_diff.size()
                << " object(s) differ (drift of the parent, or changes the migration lacks):\n";
      for (const auto& c : r.result_diff) {
        // TwoWaySchemaDiff names changes from the branch's side: "added" is on the branch only.
        std::cout << "    " << c.label << ": "
                  << (c.change == "added"     ? "only on " + branch
                      : c.change == "dropped" ? "only in the result"
                                              : "differs")
                  << "\n";
      }
    }
  }
  if (r.deleted.ok()) {
    std::cout << "  rehearsal branch " << r.branch << " deleted\n";
  } else {
    std::cout << "  deleting the rehearsal branch failed: " << r.deleted.message()
              << "; remove it with `pgbranch branch delete " << r.branch << "` (it expires within "
              << kRehearsalTtl << " anyway)\n";
  }
}

std::string RehearsalFailure(const Rehearsal& r, const std::string& parent) {
  if (!r.apply.complete) {
    std::string at = r.apply.failed >= 0 && !r.apply.statements.empty()
                         ? absl::StrCat(" at `", OneLine(r.apply.statements.back().sql), "`")
                         : "";
    return absl::StrCat("the rehearsal failed", at, ": ", r.apply.error, "\n  ", parent,
                        " was not touched; fix the migration on the branch (or the --file) and "
                        "try again");
  }
  std::vector<std::string> failed;
  for (const auto& c : r.checks) {
    if (!c.passed) failed.push_back(c.name);
  }
  return absl::StrCat("the migration applied in the rehearsal but check(s) failed: ",
                      absl::StrJoin(failed, ", "), "\n  ", parent, " was not touched");
}

}  // namespace pgbranch::cli
