#include "pageserver/storage/mem_env.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pgbranch::storage {

class MemWritableFile : public WritableFile {
 public:
  MemWritableFile(MemEnv* env, std::string path, std::shared_ptr<MemEnv::FileData> data)
      : env_(env), path_(std::move(path)), data_(std::move(data)) {}

  absl::Status Append(std::string_view data) override {
    absl::Status s = env_->ConsumeSpace(data.size());
    if (!s.ok()) return s;
    std::lock_guard<std::mutex> lock(env_->mu_);
    data_->data.append(data);
    return absl::OkStatus();
  }
  absl::Status WriteAt(uint64_t offset, std::string_view data) override {
    // A write over the write budget is torn: its first bytes land, then it fails.
    size_t allowed = env_->TakeWriteBudget(data.size());
    if (allowed < data.size()) {
      absl::Status s = WriteBytes(offset, data.substr(0, allowed));
      if (!s.ok()) return s;
      return absl::InternalError(absl::StrCat("pwrite ", path_, ": EIO (injected)"));
    }
    return WriteBytes(offset, data);
  }
  absl::Status WriteBytes(uint64_t offset, std::string_view data) {
    uint64_t end = offset + data.size();
    uint64_t size = Size();
    if (end > size) {
      absl::Status s = env_->ConsumeSpace(end - size);
      if (!s.ok()) return s;
    }
    std::lock_guard<std::mutex> lock(env_->mu_);
    if (data_->data.size() < end) data_->data.resize(end, '\0');
    data_->data.replace(offset, data.size(), data);
    return absl::OkStatus();
  }
  absl::Status Sync() override {
    if (env_->SyncFails()) return absl::InternalError(absl::StrCat("fdatasync ", path_, ": EIO"));
    std::lock_guard<std::mutex> lock(env_->mu_);
    data_->durable = data_->data;
    return absl::OkStatus();
  }
  absl::Status Truncate(uint64_t size) override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    data_->data.resize(size);
    return absl::OkStatus();
  }
  absl::Status Close() override { return absl::OkStatus(); }
  uint64_t Size() const override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    return data_->data.size();
  }

 private:
  MemEnv* env_;
  std::string path_;
  std::shared_ptr<MemEnv::FileData> data_;
};

namespace {

class MemRandomAccessFile : public RandomAccessFile {
 public:
  explicit MemRandomAccessFile(std::string contents) : contents_(std::move(contents)) {}
  absl::Status Read(uint64_t offset, size_t n, std::string* out) const override {
    if (offset >= contents_.size()) {
      out->clear();
      return absl::OkStatus();
    }
    out->assign(contents_, offset, n);
    return absl::OkStatus();
  }
  uint64_t Size() const override { return contents_.size(); }

 private:
  // A snapshot: files read through this interface are immutable once written.
  std::string contents_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<WritableFile>> MemEnv::NewWritableFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto data = std::make_shared<FileData>();
  files_[path] = data;
  return std::make_unique<MemWritableFile>(this, path, data);
}

absl::StatusOr<std::unique_ptr<WritableFile>> MemEnv::ReopenWritableFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return absl::NotFoundError(absl::StrCat("open ", path, ": no such file"));
  return std::make_unique<MemWritableFile>(this, path, it->second);
}

absl::StatusOr<std::unique_ptr<RandomAccessFile>> MemEnv::NewRandomAccessFile(
    const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return absl::NotFoundError(absl::StrCat("open ", path, ": no such file"));
  return std::make_unique<MemRandomAccessFile>(it->second->data);
}

bool MemEnv::FileExists(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  return files_.count(path) > 0 || dirs_.count(path) > 0;
}

absl::StatusOr<std::vector<std::string>> MemEnv::GetChildren(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string prefix = dir.back() == '/' ? dir : dir + "/";
  std::vector<std::string> out;
  for (const auto& [path, _] : files_) {
    if (absl::StartsWith(path, prefix) && path.find('/', prefix.size()) == std::string::npos) {
      out.push_back(path.substr(prefix.size()));
    }
  }
  return out;
}

absl::Status MemEnv::DeleteFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (files_.erase(path) == 0) return absl::NotFoundError(absl::StrCat("unlink ", path));
  return absl::OkStatus();
}

absl::Status MemEnv::RenameFile(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(from);
  if (it == files_.end()) return absl::NotFoundError(absl::StrCat("rename ", from));
  files_[to] = it->second;
  files_.erase(it);
  return absl::OkStatus();
}

absl::Status MemEnv::CreateDirs(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  dirs_[dir] = true;
  return absl::OkStatus();
}

absl::Status MemEnv::SyncDir(const std::string& dir) {
  if (SyncFails()) return absl::InternalError(absl::StrCat("fsync ", dir, ": EIO"));
  std::lock_guard<std::mutex> lock(mu_);
  std::string prefix = dir.back() == '/' ? dir : dir + "/";
  auto in_dir = [&](const std::string& p) {
    return absl::StartsWith(p, prefix) && p.find('/', prefix.size()) == std::string::npos;
  };
  for (auto it = durable_files_.begin(); it != durable_files_.end();) {
    if (in_dir(it->first) && files_.count(it->first) == 0) {
      it = durable_files_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [path, data] : files_) {
    if (in_dir(path)) durable_files_[path] = data;
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> MemEnv::GetFileSize(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return absl::NotFoundError(absl::StrCat("stat ", path));
  return it->second->data.size();
}

absl::Status MemEnv::TruncateFile(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return absl::NotFoundError(absl::StrCat("truncate ", path));
  // truncate(2) on a path is a metadata change; model it as durable at once.
  it->second->data.resize(size);
  it->second->durable = it->second->data;
  return absl::OkStatus();
}

void MemEnv::SimulateCrash() {
  std::lock_guard<std::mutex> lock(mu_);
  files_.clear();
  for (auto& [path, data] : durable_files_) {
    // Copy so that stale handles from before the crash cannot touch the survivor.
    auto survivor = std::make_shared<FileData>();
    survivor->data = data->durable;
    survivor->durable = data->durable;
    files_[path] = survivor;
    data = survivor;
  }
}

void MemEnv::SetSpaceBudget(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  space_budget_ = bytes;
}

void MemEnv::SetSyncFailure(bool fail) {
  std::lock_guard<std::mutex> lock(mu_);
  sync_fails_ = fail;
}

void MemEnv::SetWriteBudget(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  write_budget_ = bytes;
}

size_t MemEnv::TakeWriteBudget(size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  if (write_budget_ < 0) return n;
  size_t allowed = std::min<size_t>(n, static_cast<size_t>(write_budget_));
  write_budget_ -= static_cast<int64_t>(allowed);
  if (allowed < n) write_budget_ = -1;  // one fault: the writes after it succeed
  return allowed;
}

bool MemEnv::SyncFails() {
  std::lock_guard<std::mutex> lock(mu_);
  return sync_fails_;
}

absl::Status MemEnv::ConsumeSpace(size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  if (space_budget_ < 0) return absl::OkStatus();
  if (static_cast<int64_t>(n) > space_budget_) {
    space_budget_ = 0;
    return absl::ResourceExhaustedError(
        "write: No space left on device (free disk space and retry)");
  }
  space_budget_ -= static_cast<int64_t>(n);
  return absl::OkStatus();
}

uint64_t MemEnv::TotalBytes() {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t total = 0;
  for (const auto& [_, data] : files_) total += data->data.size();
  return total;
}

absl::Status MemEnv::CorruptByte(const std::string& path, uint64_t offset) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end() || offset >= it->second->data.size()) {
    return absl::NotFoundError("corrupt: no such byte");
  }
  it->second->data[offset] ^= 0x5a;
  if (offset < it->second->durable.size()) it->second->durable[offset] ^= 0x5a;
  auto d = durable_files_.find(path);
  if (d != durable_files_.end() && d->second != it->second && offset < d->second->durable.size()) {
    d->second->durable[offset] ^= 0x5a;
  }
  return absl::OkStatus();
}

}  // namespace pgbranch::storage
