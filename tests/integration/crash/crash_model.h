#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

// The client-side model of what the crash test wrote: every batch a writer sent, what became of
// it, and so what any key must read as at any LSN.
namespace pgbranch::crash {

// The key `key` of writer `writer`; each writer owns the key range [WriterPrefix, WriterEnd).
std::string KeyName(uint32_t writer, uint32_t key);
std::string WriterPrefix(uint32_t writer);
std::string WriterEnd(uint32_t writer);
// Parses a key of KeyName's form; false for anything else.
bool ParseKeyName(std::string_view name, uint32_t* writer, uint32_t* key);

// The value batch `seq` of `writer` stores at `key`: 8 KiB give or take 64 bytes, starting with a
// readable header and followed by pseudo-random bytes derived from (writer, seq, key), so every
// byte is checkable and no two writes are equal.
std::string BatchValue(uint32_t writer, uint64_t seq, uint32_t key);
// "writer 2 batch 17 key 5", or a description of unrecognisable bytes; for failure messages.
std::string DescribeValue(std::string_view value);

enum class BatchState {
  kInFlight,   // sent, no reply yet
  kAcked,      // the commit returned OK (lsn known)
  kUncertain,  // the commit failed: it was in flight when the server died, may or may not exist
  kCommitted,  // was uncertain, found present after the restart (lsn found by search)
  kLost,       // was uncertain, found absent after the restart; must never appear
};

struct Batch {
  uint64_t seq = 0;
  std::vector<uint32_t> keys;
  BatchState state = BatchState::kInFlight;
  uint64_t lsn = 0;  // for kAcked and kCommitted

  bool committed() const { return state == BatchState::kAcked || state == BatchState::kCommitted; }
};

// One writer's batches. Not thread-safe: the writer thread owns it while running; the verifier
// reads it only while the writer is parked.
class WriterModel {
 public:
  static constexpr uint32_t kMaxKeys = 320;
  static constexpr uint32_t kMaxBatchKeys = 64;

  WriterModel(uint32_t writer, uint64_t seed);

  uint32_t writer() const { return writer_; }
  // Plans the next batch: 1..64 distinct keys, a mix of new keys and overwrites of earlier ones.
  const Batch& PlanBatch();
  void AckLast(uint64_t lsn);
  void FailLast();
  // Resolves the last batch, which must be uncertain.
  void ResolveLast(bool present, uint64_t lsn);

  // The last batch if it is uncertain, else nullptr.
  const Batch* uncertain() const;
  const std::vector<Batch>& batches() const { return batches_; }
  // Keys any batch (committed or not) ever named: [0, num_keys()).
  uint32_t num_keys() const { return num_keys_; }
  // The committed batch whose write of `key` is visible at `lsn`, or nullptr (key absent).
  // Requires no uncertain batch.
  const Batch* VisibleAt(uint32_t key, uint64_t lsn) const;
  // The highest LSN among committed batches (0 if none).
  uint64_t max_lsn() const;
  std::mt19937_64& rng() { return rng_; }

 private:
  uint32_t writer_;
  std::mt19937_64 rng_;
  uint32_t num_keys_ = 0;
  std::vector<Batch> batches_;
  // key -> indexes into batches_ of the batches that wrote it, in order.
  std::map<uint32_t, std::vector<size_t>> history_;
};

}  // namespace pgbranch::crash
