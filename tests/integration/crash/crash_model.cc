#include "tests/integration/crash/crash_model.h"

#include <cinttypes>
#include <cstdio>
#include <set>

#include "absl/strings/str_cat.h"

namespace pgbranch::crash {
namespace {

uint64_t SplitMix(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

std::string KeyName(uint32_t writer, uint32_t key) {
  char buf[32];
  snprintf(buf, sizeof(buf), "w%02u/k%06u", writer, key);
  return buf;
}

std::string WriterPrefix(uint32_t writer) {
  char buf[16];
  snprintf(buf, sizeof(buf), "w%02u/", writer);
  return buf;
}

std::string WriterEnd(uint32_t writer) {
  char buf[16];
  snprintf(buf, sizeof(buf), "w%02u0", writer);  // '0' follows '/' in ASCII
  return buf;
}

bool ParseKeyName(std::string_view name, uint32_t* writer, uint32_t* key) {
  unsigned w = 0, k = 0;
  char tail = 0;
  std::string s(name);
  if (sscanf(s.c_str(), "w%2u/k%6u%c", &w, &k, &tail) != 2) return false;
  if (KeyName(w, k) != s) return false;
  *writer = w;
  *key = k;
  return true;
}

std::string BatchValue(uint32_t writer, uint64_t seq, uint32_t key) {
  uint64_t state = (uint64_t{writer} << 48) ^ (seq << 20) ^ key;
  size_t len = 8192 - 64 + SplitMix(&state) % 128;
  char header[96];
  int n = snprintf(header, sizeof(header), "pgbranch-crash writer=%u batch=%" PRIu64 " key=%u|",
                   writer, seq, key);
  std::string value(header, n);
  value.reserve(len + 8);
  while (value.size() < len) {
    uint64_t r = SplitMix(&state);
    value.append(reinterpret_cast<const char*>(&r), sizeof(r));
  }
  value.resize(len);
  return value;
}

std::string DescribeValue(std::string_view value) {
  unsigned w = 0, k = 0;
  uint64_t seq = 0;
  std::string head(value.substr(0, 80));
  if (sscanf(head.c_str(), "pgbranch-crash writer=%u batch=%" SCNu64 " key=%u|", &w, &seq, &k) ==
      3) {
    bool intact = BatchValue(w, seq, k) == value;
    return absl::StrCat("writer ", w, " batch ", seq, " key ", k,
                        intact ? "" : " (header only: the bytes are corrupt)");
  }
  return absl::StrCat("unrecognisable ", value.size(), " bytes");
}

WriterModel::WriterModel(uint32_t writer, uint64_t seed) : writer_(writer), rng_(seed) {}

const Batch& WriterModel::PlanBatch() {
  Batch b;
  b.seq = batches_.size();
  size_t n = 1 + rng_() % kMaxBatchKeys;
  std::set<uint32_t> keys;
  for (size_t i = 0; i < n; ++i) {
    bool fresh = num_keys_ < kMaxKeys && (num_keys_ == 0 || rng_() % 2 == 0);
    keys.insert(fresh ? num_keys_++ : static_cast<uint32_t>(rng_() % num_keys_));
  }
  b.keys.assign(keys.begin(), keys.end());
  for (uint32_t k : b.keys) history_[k].push_back(batches_.size());
  batches_.push_back(std::move(b));
  return batches_.back();
}

void WriterModel::AckLast(uint64_t lsn) {
  batches_.back().state = BatchState::kAcked;
  batches_.back().lsn = lsn;
}

void WriterModel::FailLast() { batches_.back().state = BatchState::kUncertain; }

void WriterModel::ResolveLast(bool present, uint64_t lsn) {
  Batch& b = batches_.back();
  b.state = present ? BatchState::kCommitted : BatchState::kLost;
  b.lsn = present ? lsn : 0;
}

const Batch* WriterModel::uncertain() const {
  if (batches_.empty() || batches_.back().state != BatchState::kUncertain) return nullptr;
  return &batches_.back();
}

const Batch* WriterModel::VisibleAt(uint32_t key, uint64_t lsn) const {
  auto it = history_.find(key);
  if (it == history_.end()) return nullptr;
  // A writer's committed batches have increasing LSNs in seq order.
  for (auto i = it->second.rbegin(); i != it->second.rend(); ++i) {
    const Batch& b = batches_[*i];
    if (b.committed() && b.lsn <= lsn) return &b;
  }
  return nullptr;
}

uint64_t WriterModel::max_lsn() const {
  for (auto i = batches_.rbegin(); i != batches_.rend(); ++i) {
    if (i->committed()) return i->lsn;
  }
  return 0;
}

}  // namespace pgbranch::crash
