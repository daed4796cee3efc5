#include "tests/bench/common/bench_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace pgbranch::bench_common {

std::string FirstMatch(const std::string& file, const std::string& prefix) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      size_t colon = line.find(':');
      std::string v = colon == std::string::npos ? line : line.substr(colon + 1);
      size_t b = v.find_first_not_of(" \t");
      return b == std::string::npos ? "" : v.substr(b);
    }
  }
  return "?";
}

std::string FilesystemOf(const std::string& dir) {
  std::error_code ec;
  std::string path = std::filesystem::weakly_canonical(dir, ec).string();
  std::ifstream in("/proc/mounts");
  std::string dev, mnt, type, rest, best_dev = "?", best_type = "?";
  size_t best = 0;
  while (in >> dev >> mnt >> type && std::getline(in, rest)) {
    bool under = path == mnt || mnt == "/" ||
                 (path.rfind(mnt, 0) == 0 && path.size() > mnt.size() && path[mnt.size()] == '/');
    if (under && mnt.size() >= best) {
      best = mnt.size();
      best_dev = dev;
      best_type = type;
    }
  }
  return absl::StrCat(best_type, " on ", best_dev);
}

double MetricValue(const std::string& text, const std::string& name, const std::string& labels) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    if (!labels.empty() && line.find(labels) == std::string::npos) continue;
    size_t space = line.rfind(' ');
    return strtod(line.c_str() + space + 1, nullptr);
  }
  return -1;
}

}  // namespace pgbranch::bench_common

namespace pgbranch::bench_common {

int ParseBenchArgs(int argc, char** argv, const char* usage, BenchArgs* out) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      out->quick = true;
    } else if ((a == "--only" || a == "--dir") && i + 1 < argc) {
      (a == "--only" ? out->only : out->dir) = argv[++i];
    } else if (a.rfind("--only=", 0) == 0) {
      out->only = a.substr(7);
    } else if (a.rfind("--dir=", 0) == 0) {
      out->dir = a.substr(6);
    } else if (a == "--help" || a == "-h") {
      std::cout << usage;
      return 0;
    } else {
      std::cerr << "unknown argument '" << a << "'\n" << usage;
      return 2;
    }
  }
  return -1;
}

}  // namespace pgbranch::bench_common

namespace pgbranch::bench_common {

void PrintTable(const std::string& title, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows,
                const std::vector<std::string>& notes) {
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size() && c < width.size(); ++c) {
      width[c] = std::max(width[c], row[c].size());
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < width.size(); ++c) {
      std::string cell = c < cells.size() ? cells[c] : "";
      cell.resize(width[c], ' ');
      absl::StrAppend(&out, c == 0 ? "" : " | ", cell);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    std::cout << out << "\n";
  };
  std::cout << "\n## " << title << "\n\n";
  line(header);
  std::vector<std::string> rule;
  for (size_t w : width) rule.push_back(std::string(w, '-'));
  line(rule);
  for (const auto& row : rows) line(row);
  for (const std::string& n : notes) std::cout << "  note: " << n << "\n";
  std::cout << std::flush;
}

}  // namespace pgbranch::bench_common
