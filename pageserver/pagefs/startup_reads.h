#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace pgbranch::pagefs {

// The pages a mount's PostgreSQL read in the first seconds after the mount (its start, its first
// connections and their first queries), and their file form.
//
// A new branch's compute starts from its parent's files: it reads what its parent's last start
// read, with the same kernel read-ahead windows. Read cold, each window is a round trip to the
// pageserver on the start's path (docs/pagefs.md, "A new branch's start reads what its parent's
// start read"). A read-write mount records its FUSE READs for a while and then writes them, by
// path, to kFileName at the root of the timeline (outside PostgreSQL's data directory), where
// the next start of the timeline and every branch taken from it later find them and prefetch
// exactly those pages at mount, in the order they were first read.
//
// Thread-safe. Recording costs one relaxed atomic load per READ once it stopped.
class StartupReads {
 public:
  // At the root of the mount, beside PostgreSQL's data directory.
  static constexpr char kFileName[] = ".pagefs-startup-reads";
  // The first line of the file: a file without it is ignored.
  static constexpr char kHeader[] = "pagefs startup reads v1";

  // The pages of one file: ranges [first, first + count) in the order first read.
  struct File {
    std::string path;  // relative to the mount's root, "pgdata/base/5/1259"
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    bool operator==(const File& o) const { return path == o.path && ranges == o.ranges; }
  };
  // The recorded pages of one inode, blocks in the order first read (each once).
  struct Recorded {
    uint64_t ino;
    std::vector<uint64_t> blocks;
  };

  // Records at most `max_pages` distinct pages.
  explicit StartupReads(uint64_t max_pages) : max_pages_(max_pages) {}

  // A READ of `size` bytes at `offset` of inode `ino`; nothing once stopped or full.
  void Record(uint64_t ino, uint64_t offset, uint64_t size);
  // Ends the recording; what was recorded, inodes in the order first read.
  std::vector<Recorded> Stop();

  // The file's text; files without ranges are left out.
  static std::string Encode(const std::vector<File>& files);
  // The files of `text`; empty if the header is not kHeader. Lines that do not parse (a path
  // that is absolute or has a "." or ".." part, a bad range) are skipped.
  static std::vector<File> Decode(absl::string_view text);
  // Consecutive blocks as ranges, in the order given.
  static std::vector<std::pair<uint64_t, uint64_t>> Ranges(const std::vector<uint64_t>& blocks);

 private:
  const uint64_t max_pages_;
  std::mutex mu_;
  // Cleared (under mu_) when the recording ends; read without it first, so that a READ after
  // the end takes no lock.
  std::atomic<bool> active_{true};
  std::map<uint64_t, size_t> index_;              // ino -> position in order_; guarded by mu_
  std::vector<Recorded> order_;                   // guarded by mu_
  std::set<std::pair<uint64_t, uint64_t>> seen_;  // (ino, block); guarded by mu_
};

}  // namespace pgbranch::pagefs
