#include "pageserver/pagefs/fsync_replies.h"

#include <utility>

namespace pgbranch::pagefs {

uint64_t FsyncReplies::Add(Reply reply) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return 0;
  uint64_t id = next_id_++;
  replies_.emplace(id, std::move(reply));
  return id;
}

void FsyncReplies::Finish(uint64_t id, const std::function<void(Reply& reply)>& finish) {
  Reply reply;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    auto it = replies_.find(id);
    if (it == replies_.end()) return;
    reply = std::move(it->second);
    replies_.erase(it);
    ++finishing_;
  }
  finish(reply);
  std::lock_guard<std::mutex> lock(mu_);
  if (--finishing_ == 0 && replies_.empty()) idle_cv_.notify_all();
}

void FsyncReplies::WaitIdle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [&] { return replies_.empty() && finishing_ == 0; });
}

std::vector<FsyncReplies::Reply> FsyncReplies::Close() {
  std::unique_lock<std::mutex> lock(mu_);
  closed_ = true;
  idle_cv_.wait(lock, [&] { return finishing_ == 0; });
  std::vector<Reply> left;
  left.reserve(replies_.size());
  for (auto& [id, reply] : replies_) left.push_back(std::move(reply));
  replies_.clear();
  idle_cv_.notify_all();  // a WaitIdle sees it empty
  return left;
}

size_t FsyncReplies::pending() {
  std::lock_guard<std::mutex> lock(mu_);
  return replies_.size();
}

}  // namespace pgbranch::pagefs
