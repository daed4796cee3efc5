#include "compute/recovery_choice.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace pgbranch::compute {
namespace {

// XLogPageHeaderData of PostgreSQL 15: xlp_magic (2), xlp_info (2), xlp_tli (4), xlp_pageaddr (8).
constexpr uint16_t kWalPageMagic = 0xD110;

// The timeline of a "%08X.history" name, or 0.
uint32_t HistoryTimeline(const std::string& name) {
  if (name.size() != 16 || name.compare(8, 8, ".history") != 0) return 0;
  for (int i = 0; i < 8; ++i) {
    if (!isxdigit(static_cast<unsigned char>(name[i]))) return 0;
  }
  return static_cast<uint32_t>(strtoul(name.substr(0, 8).c_str(), nullptr, 16));
}

}  // namespace

std::string WalFileName(uint32_t tli, uint64_t segno, uint32_t segment_size) {
  const uint64_t per_id = 0x100000000ull / segment_size;
  char buf[32];
  snprintf(buf, sizeof(buf), "%08X%08X%08X", tli, static_cast<uint32_t>(segno / per_id),
           static_cast<uint32_t>(segno % per_id));
  return buf;
}

RecoveryMode ChooseRecovery(const PgControlSummary& control,
                            const std::vector<std::string>& wal_files,
                            const FirstPageAddress& first_page_address) {
  if (control.clean()) return RecoveryMode::kNone;
  if (control.wal_level < PgControlSummary::kWalLevelReplica) return RecoveryMode::kCrash;
  const uint32_t seg = control.wal_segment_size;
  // Segment sizes are powers of two from 1 MB to 1 GB.
  if (control.timeline == 0 || seg < (1u << 20) || (seg & (seg - 1)) != 0) {
    return RecoveryMode::kCrash;
  }
  bool listed = false;
  const uint64_t far_segno = (control.redo_lsn + kCrashRecoveryMaxWalBytes) / seg;
  const std::string far = WalFileName(control.timeline, far_segno, seg);
  for (const std::string& name : wal_files) {
    if (HistoryTimeline(name) > control.timeline) return RecoveryMode::kPromote;
    if (name == far) listed = true;
  }
  if (!listed) return RecoveryMode::kCrash;
  std::optional<uint64_t> addr = first_page_address(far, control.timeline);
  return addr.has_value() && *addr == far_segno * seg ? RecoveryMode::kPromote
                                                      : RecoveryMode::kCrash;
}

std::vector<std::string> ListWalFiles(const std::string& data_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir + "/pg_wal", ec)) {
    out.push_back(entry.path().filename().string());
  }
  return out;
}

std::optional<uint64_t> ReadFirstPageAddress(const std::string& data_dir, const std::string& file,
                                             uint32_t tli) {
  const std::string path = absl::StrCat(data_dir, "/pg_wal/", file);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  unsigned char header[16];
  ssize_t n;
  do {
    n = pread(fd, header, sizeof(header), 0);
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n != static_cast<ssize_t>(sizeof(header))) return std::nullopt;
  uint16_t magic;
  uint32_t page_tli;
  uint64_t addr;
  memcpy(&magic, header, sizeof(magic));
  memcpy(&page_tli, header + 4, sizeof(page_tli));
  memcpy(&addr, header + 8, sizeof(addr));
  if (magic != kWalPageMagic || page_tli != tli) return std::nullopt;
  return addr;
}

}  // namespace pgbranch::compute
