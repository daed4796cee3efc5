#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pageserver/storage/env.h"

namespace pgbranch::storage {

// A WritableFile that passes everything to `inner` and records, in order, each WriteOut range and
// each Sync, with how many bytes had been written when it came. For tests of who writes a large
// file out in pieces (WritableFile::WriteOut).
class WriteOutRecorder : public WritableFile {
 public:
  struct Event {
    bool sync;            // a Sync; otherwise a WriteOut of [offset, offset + length)
    uint64_t offset = 0;  // WriteOut only
    uint64_t length = 0;  // WriteOut only
    uint64_t written;     // the file's size when it came
  };

  explicit WriteOutRecorder(std::unique_ptr<WritableFile> inner) : inner_(std::move(inner)) {}

  absl::Status Append(std::string_view data) override { return inner_->Append(data); }
  absl::Status WriteAt(uint64_t offset, std::string_view data) override {
    return inner_->WriteAt(offset, data);
  }
  absl::Status Sync() override {
    events_.push_back({true, 0, 0, inner_->Size()});
    return inner_->Sync();
  }
  absl::Status WriteOut(uint64_t offset, uint64_t length) override {
    events_.push_back({false, offset, length, inner_->Size()});
    return inner_->WriteOut(offset, length);
  }
  absl::Status Truncate(uint64_t size) override { return inner_->Truncate(size); }
  absl::Status Close() override { return inner_->Close(); }
  uint64_t Size() const override { return inner_->Size(); }

  // Shared with the test, which keeps a pointer while the writer owns the recorder.
  const std::vector<Event>& events() const { return events_; }

 private:
  std::unique_ptr<WritableFile> inner_;
  std::vector<Event> events_;
};

}  // namespace pgbranch::storage
