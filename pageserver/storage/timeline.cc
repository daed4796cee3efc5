#include "pageserver/storage/timeline.h"

#include <algorithm>

namespace pgbranch::storage {

const Timeline::Versions* Timeline::Find(std::string_view key) const {
  auto it = hash_.find(key);
  return it == hash_.end() ? nullptr : it->second;
}

Timeline::Versions* Timeline::FindMutable(std::string_view key) {
  auto it = hash_.find(key);
  return it == hash_.end() ? nullptr : it->second;
}

Timeline::Versions& Timeline::GetOrCreate(std::string_view key) {
  auto it = hash_.find(key);
  if (it != hash_.end()) return *it->second;
  auto [node, inserted] = keys_.emplace(std::string(key), Versions{});
  hash_.emplace(std::string_view(node->first), &node->second);
  return node->second;
}

void Timeline::Erase(std::string_view key) {
  auto node = keys_.find(key);
  if (node == keys_.end()) return;
  hash_.erase(std::string_view(node->first));
  keys_.erase(node);
}

void Timeline::ClearIndex() {
  hash_.clear();
  keys_.clear();
  diverged_bytes = 0;
}

void Timeline::TakeDataFrom(Timeline& other) {
  // A std::map move keeps its nodes, so the hash views stay valid.
  keys_ = std::move(other.keys_);
  hash_ = std::move(other.hash_);
  active = std::move(other.active);
  frozen = std::move(other.frozen);
  layers = std::move(other.layers);
  diverged_bytes = other.diverged_bytes;
  other.keys_.clear();
  other.hash_.clear();
  other.active.reset();
  other.frozen.clear();
  other.layers.clear();
  other.diverged_bytes = 0;
}

const VersionRef* Timeline::NewestAtOrBelow(const Versions& v, uint64_t lsn) {
  // Versions are sorted by LSN; most reads want the newest, so check the back first.
  if (v.empty()) return nullptr;
  if (v.back().lsn <= lsn) return &v.back();
  auto it = std::upper_bound(v.begin(), v.end(), lsn,
                             [](uint64_t l, const VersionRef& r) { return l < r.lsn; });
  if (it == v.begin()) return nullptr;
  return &*(it - 1);
}

uint64_t Timeline::mem_bytes() const {
  uint64_t total = active ? active->bytes() : 0;
  for (const auto& [id, arena] : frozen) total += arena->bytes();
  return total;
}

void Timeline::DropMem() {
  active.reset();
  frozen.clear();
}

const LsnPoint* Timeline::PointAtOrBelow(uint64_t lsn) const {
  auto it = std::upper_bound(points.begin(), points.end(), lsn,
                             [](uint64_t l, const LsnPoint& p) { return l < p.lsn; });
  if (it == points.begin()) return nullptr;
  return &*(it - 1);
}

}  // namespace pgbranch::storage
