#pragma once

#include <cstdint>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

// Progress of a long import or export, shown on stderr: a line rewritten in place on a terminal,
// an occasional line otherwise. Disabled with `-q`. Not thread-safe.
namespace pgbranch::pagectl {

class Progress {
 public:
  // `verb` names the operation in the output ("imported", "exported").
  Progress(std::string verb, bool enabled);

  // Counts one more file (of any kind) and `bytes` more bytes of file data.
  void AddFile() { ++files_; }
  void AddBytes(uint64_t bytes);

  uint64_t files() const { return files_; }
  uint64_t bytes() const { return bytes_; }
  absl::Duration Elapsed() const { return absl::Now() - start_; }

  // Prints the final summary line (when enabled) and ends the in-place line.
  void Finish();

 private:
  void MaybePrint();
  std::string Line() const;

  std::string verb_;
  bool enabled_;
  bool tty_;
  absl::Time start_;
  absl::Time last_print_;
  uint64_t files_ = 0;
  uint64_t bytes_ = 0;
  bool printed_ = false;
};

}  // namespace pgbranch::pagectl
