#include "pageserver/pagefs/startup_reads.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "pageserver/fs/fs_layout.h"

namespace pgbranch::pagefs {
namespace {

// A path PostgreSQL's files can have below the root: relative, no empty, "." or ".." part, no
// space (the file's separator).
bool UsablePath(absl::string_view path) {
  if (path.empty() || path.front() == '/' || path.find(' ') != absl::string_view::npos) {
    return false;
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

}  // namespace

void StartupReads::Record(uint64_t ino, uint64_t offset, uint64_t size) {
  if (!active_.load(std::memory_order_relaxed) || size == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (!active_.load(std::memory_order_relaxed)) return;
  const uint64_t first = fs::BlockOf(offset), last = fs::BlockOf(offset + size - 1);
  for (uint64_t b = first; b <= last; ++b) {
    if (seen_.size() >= max_pages_) {
      active_.store(false, std::memory_order_relaxed);
      return;
    }
    if (!seen_.insert({ino, b}).second) continue;
    auto [it, added] = index_.emplace(ino, order_.size());
    if (added) order_.push_back(Recorded{ino, {}});
    order_[it->second].blocks.push_back(b);
  }
}

std::vector<StartupReads::Recorded> StartupReads::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  active_.store(false, std::memory_order_relaxed);
  seen_.clear();
  index_.clear();
  return std::move(order_);
}

std::vector<std::pair<uint64_t, uint64_t>> StartupReads::Ranges(
    const std::vector<uint64_t>& blocks) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (uint64_t b : blocks) {
    if (!out.empty() && out.back().first + out.back().second == b) {
      ++out.back().second;
    } else {
      out.push_back({b, 1});
    }
  }
  return out;
}

std::string StartupReads::Encode(const std::vector<File>& files) {
  std::string out = absl::StrCat(kHeader, "\n");
  for (const File& f : files) {
    if (f.ranges.empty() || !UsablePath(f.path)) continue;
    absl::StrAppend(&out, f.path);
    for (const auto& [first, count] : f.ranges) absl::StrAppend(&out, " ", first, "+", count);
    out.push_back('\n');
  }
  return out;
}

std::vector<StartupReads::File> StartupReads::Decode(absl::string_view text) {
  std::vector<File> out;
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (lines.empty() || lines[0] != kHeader) return out;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<absl::string_view> parts = absl::StrSplit(lines[i], ' ', absl::SkipEmpty());
    if (parts.size() < 2 || !UsablePath(parts[0])) continue;
    File f{std::string(parts[0]), {}};
    bool ok = true;
    for (size_t j = 1; j < parts.size() && ok; ++j) {
      std::pair<absl::string_view, absl::string_view> r = absl::StrSplit(parts[j], '+');
      uint64_t first = 0, count = 0;
      ok = absl::SimpleAtoi(r.first, &first) && absl::SimpleAtoi(r.second, &count) && count > 0 &&
           first + count > first;
      if (ok) f.ranges.push_back({first, count});
    }
    if (ok) out.push_back(std::move(f));
  }
  return out;
}

}  // namespace pgbranch::pagefs
