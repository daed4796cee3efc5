#include "cli/sql_script.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace pgbranch::cli {
namespace {

bool IsIdentStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || (c & 0x80);
}
bool IsIdentChar(char c) { return IsIdentStart(c) || std::isdigit(static_cast<unsigned char>(c)); }

int LineOf(const std::string& s, size_t pos) {
  int line = 1;
  for (size_t i = 0; i < pos && i < s.size(); ++i) line += s[i] == '\n' ? 1 : 0;
  return line;
}

// The dollar-quote tag starting at `i` ("$$", "$fn$"), or "" if `i` starts none.
std::string DollarTag(const std::string& s, size_t i) {
  if (s[i] != '$') return "";
  size_t j = i + 1;
  if (j < s.size() && s[j] == '$') return "$$";
  if (j >= s.size() || !IsIdentStart(s[j])) return "";
  while (j < s.size() && IsIdentChar(s[j]) && s[j] != '$') ++j;
  if (j < s.size() && s[j] == '$') return s.substr(i, j - i + 1);
  return "";
}

// Skips the comment at `i` (which starts one); returns the position after it, or npos if it is
// not terminated.
size_t SkipComment(const std::string& s, size_t i) {
  if (s[i] == '-') {
    size_t end = s.find('\n', i);
    return end == std::string::npos ? s.size() : end + 1;
  }
  int depth = 0;
  while (i < s.size()) {
    if (s.compare(i, 2, "/*") == 0) {
      ++depth;
      i += 2;
    } else if (s.compare(i, 2, "*/") == 0) {
      i += 2;
      if (--depth == 0) return i;
    } else {
      ++i;
    }
  }
  return std::string::npos;
}

bool StartsComment(const std::string& s, size_t i) {
  return s.compare(i, 2, "--") == 0 || s.compare(i, 2, "/*") == 0;
}

// True when the statement has something besides whitespace and comments.
bool HasContent(const std::string& stmt) {
  size_t i = 0;
  while (i < stmt.size()) {
    if (std::isspace(static_cast<unsigned char>(stmt[i]))) {
      ++i;
    } else if (StartsComment(stmt, i)) {
      i = SkipComment(stmt, i);
    } else {
      return true;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitSqlStatements(const std::string& sql) {
  std::vector<std::string> out;
  size_t start = 0;
  size_t i = 0;
  bool at_line_start = true;
  // As psql's lexer: in CREATE [OR REPLACE] FUNCTION|PROCEDURE, BEGIN ... END blocks outside
  // parentheses (and CASE ... END inside them) are counted, and a semicolon inside one (the
  // statements of a SQL-standard body, BEGIN ATOMIC ...; ...; END) does not end the statement.
  // Elsewhere BEGIN is a transaction or a name (a column called begin) and opens nothing.
  std::vector<std::string> words;  // the statement's first four words, upper-cased
  int word_count = 0;
  int paren_depth = 0;
  int begin_depth = 0;
  auto in_routine = [&] {
    auto w = [&](size_t k) { return k < words.size() ? words[k] : std::string(); };
    const std::string kind = w(1) == "OR" && w(2) == "REPLACE" ? w(3) : w(1);
    return w(0) == "CREATE" && (kind == "FUNCTION" || kind == "PROCEDURE");
  };
  auto flush = [&](size_t end) {
    std::string stmt(absl::StripAsciiWhitespace(sql.substr(start, end - start)));
    if (HasContent(stmt)) out.push_back(std::move(stmt));
    words.clear();
    word_count = 0;
    paren_depth = 0;
    begin_depth = 0;
  };
  while (i < sql.size()) {
    const char c = sql[i];
    if (at_line_start && c == '\\') {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", LineOf(sql, i),
                       ": psql meta-commands (\\...) are not SQL; remove them from the script"));
    }
    if (c == '\n') {
      at_line_start = true;
      ++i;
      continue;
    }
    if (!std::isspace(static_cast<unsigned char>(c))) at_line_start = false;
    if (StartsComment(sql, i)) {
      size_t end = SkipComment(sql, i);
      if (end == std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("line ", LineOf(sql, i), ": unterminated /* comment"));
      }
      // A -- comment ends at a newline, which starts a line.
      at_line_start = sql[i] == '-';
      i = end;
    } else if (c == '\'' || c == '"') {
      // E'...' strings take backslash escapes; standard strings and identifiers double the
      // quote to escape it.
      const bool escapes = c == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                           (i < 2 || !IsIdentChar(sql[i - 2]));
      size_t j = i + 1;
      while (true) {
        if (j >= sql.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("line ", LineOf(sql, i), ": unterminated ",
                           c == '"' ? "quoted identifier" : "string"));
        }
        if (escapes && sql[j] == '\\') {
          j += 2;
        } else if (sql[j] == c) {
          if (j + 1 < sql.size() && sql[j + 1] == c) {
            j += 2;
          } else {
            break;
          }
        } else {
          ++j;
        }
      }
      i = j + 1;
    } else if (c == '$' && (i == 0 || !IsIdentChar(sql[i - 1]))) {
      std::string tag = DollarTag(sql, i);
      if (tag.empty()) {
        ++i;
        continue;
      }
      size_t end = sql.find(tag, i + tag.size());
      if (end == std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("line ", LineOf(sql, i), ": unterminated dollar quote ", tag));
      }
      i = end + tag.size();
    } else if (c == '(' || c == ')') {
      paren_depth += c == '(' ? 1 : (paren_depth > 0 ? -1 : 0);
      ++i;
    } else if (c == ';') {
      if (begin_depth > 0) {
        ++i;
        continue;
      }
      flush(i);
      start = ++i;
    } else if (IsIdentStart(c) && (i == 0 || !IsIdentChar(sql[i - 1]))) {
      size_t j = i;
      while (j < sql.size() && IsIdentChar(sql[j])) ++j;
      const std::string word = absl::AsciiStrToUpper(sql.substr(i, j - i));
      if (word_count++ < 4) words.push_back(word);
      if (in_routine() && paren_depth == 0) {
        if (word == "BEGIN") {
          ++begin_depth;
        } else if (word == "CASE") {
          if (begin_depth > 0) ++begin_depth;
        } else if (word == "END" && begin_depth > 0) {
          --begin_depth;
        }
      }
      i = j;
    } else {
      ++i;
    }
  }
  flush(sql.size());
  return out;
}

std::vector<std::string> LeadingKeywords(const std::string& statement, size_t n) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < statement.size() && words.size() < n) {
    if (std::isspace(static_cast<unsigned char>(statement[i]))) {
      ++i;
    } else if (StartsComment(statement, i)) {
      i = SkipComment(statement, i);
    } else if (IsIdentStart(statement[i])) {
      size_t j = i;
      while (j < statement.size() && IsIdentChar(statement[j])) ++j;
      words.push_back(absl::AsciiStrToUpper(statement.substr(i, j - i)));
      i = j;
    } else {
      break;
    }
  }
  return words;
}

std::string WithoutLeadingComments(const std::string& statement) {
  size_t i = 0;
  while (i < statement.size()) {
    if (std::isspace(static_cast<unsigned char>(statement[i]))) {
      ++i;
    } else if (StartsComment(statement, i)) {
      i = SkipComment(statement, i);
    } else {
      break;
    }
  }
  return i >= statement.size() ? "" : statement.substr(i);
}

bool IsNonTransactional(const std::string& statement) {
  std::vector<std::string> w = LeadingKeywords(statement, 6);
  if (w.empty()) return false;
  auto has = [&](const char* word) {
    for (const auto& x : w) {
      if (x == word) return true;
    }
    return false;
  };
  const std::string& first = w[0];
  const std::string second = w.size() > 1 ? w[1] : "";
  if (first == "VACUUM") return true;
  if ((first == "CREATE" || first == "DROP") &&
      (second == "DATABASE" || second == "TABLESPACE" || second == "SUBSCRIPTION")) {
    return true;
  }
  if (first == "ALTER" && second == "SYSTEM") return true;
  if ((first == "CREATE" || first == "DROP" || first == "REINDEX") && has("CONCURRENTLY")) {
    return true;
  }
  return false;
}

bool IsTransactionControl(const std::string& statement) {
  std::vector<std::string> w = LeadingKeywords(statement, 2);
  if (w.empty()) return false;
  const std::string& first = w[0];
  if (first == "START") return w.size() > 1 && w[1] == "TRANSACTION";
  return first == "BEGIN" || first == "COMMIT" || first == "END" || first == "ROLLBACK" ||
         first == "ABORT";
}

}  // namespace pgbranch::cli
