#include "pageserver/pagefs/read_batcher.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pgbranch::pagefs {

ReadBatcher::ReadBatcher(PageStore* store, Options options) : store_(store), options_(options) {}

absl::StatusOr<std::vector<std::optional<std::string>>> ReadBatcher::Read(
    uint64_t lsn, std::vector<std::string> keys) {
  Request r;
  r.lsn = lsn;
  r.keys = std::move(keys);
  std::unique_lock<std::mutex> lock(mu_);
  ++stats_.reads;
  queue_.push_back(&r);
  // While our read is queued and an RPC slot is free, send the batch at the head of the queue
  // (ours may be in it, or in a later one). Otherwise wait: for a slot, or for the batch that
  // carries our read to finish (its sender wakes everyone).
  while (!r.done) {
    if (r.taken || in_flight_ >= std::max<uint32_t>(options_.max_in_flight, 1)) {
      cv_.wait(lock);
      continue;
    }
    std::vector<Request*> batch = TakeBatchLocked();
    ++in_flight_;
    lock.unlock();
    Send(batch);
    lock.lock();
    --in_flight_;
    cv_.notify_all();
  }
  return std::move(r.result);
}

ReadBatcher::Stats ReadBatcher::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

std::vector<ReadBatcher::Request*> ReadBatcher::TakeBatchLocked() {
  std::vector<Request*> batch = {queue_.front()};
  queue_.pop_front();
  batch[0]->taken = true;
  size_t keys = batch[0]->keys.size();
  for (auto it = queue_.begin(); it != queue_.end();) {
    Request* q = *it;
    if (q->lsn != batch[0]->lsn || keys + q->keys.size() > options_.max_batch_keys) {
      ++it;
      continue;
    }
    keys += q->keys.size();
    q->taken = true;
    batch.push_back(q);
    it = queue_.erase(it);
  }
  return batch;
}

void ReadBatcher::Send(const std::vector<Request*>& batch) {
  uint64_t rpcs = 0;
  // Alone: the store's answer as it is, with its count checked.
  auto read_alone = [&](Request* r) {
    ++rpcs;
    r->result = store_->Read(r->lsn, r->keys);
    if (r->result.ok() && r->result->size() != r->keys.size()) {
      r->result = absl::InternalError(absl::StrCat("the pageserver answered ", r->result->size(),
                                                   " values for ", r->keys.size(), " keys"));
    }
  };
  if (batch.size() == 1) {
    read_alone(batch[0]);
  } else {
    std::vector<std::string> keys;
    for (const Request* r : batch) keys.insert(keys.end(), r->keys.begin(), r->keys.end());
    ++rpcs;
    auto combined = store_->Read(batch[0]->lsn, keys);
    if (combined.ok() && combined->size() == keys.size()) {
      size_t pos = 0;
      for (Request* r : batch) {
        std::vector<std::optional<std::string>> values;
        values.reserve(r->keys.size());
        for (size_t i = 0; i < r->keys.size(); ++i) values.push_back(std::move((*combined)[pos++]));
        r->result = std::move(values);
      }
    } else {
      // One read's keys may be what failed: each read gets its own answer (and error).
      for (Request* r : batch) read_alone(r);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.rpcs += rpcs;
  if (batch.size() > 1) stats_.combined_reads += batch.size();
  for (Request* r : batch) r->done = true;
}

}  // namespace pgbranch::pagefs
