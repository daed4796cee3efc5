// crc32-bench: the throughput of the pageserver's CRC-32 (common/crc32.h) with zlib's tables and
// with PCLMULQDQ folding, at the sizes it checksums: a short record (64 B), a small commit (512 B),
// a PostgreSQL page (8 KiB) and a layer file's block (1 MiB). Every log record and layer value is
// checksummed once when written and once when read back.
//
//   crc32-bench [--quick]
//
// Both columns compute the same value (checked); not run by ctest.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/crc32.h"
#include "tests/bench/common/bench_net.h"

namespace {

// GB/s over `total` bytes checksummed in pieces of `size`; *crc receives a checksum of the
// results so the work cannot be optimised away and both implementations can be compared.
double Measure(const std::string& buf, size_t size, size_t total, uint32_t* crc) {
  const size_t pieces = buf.size() / size;
  uint32_t acc = 0;
  auto start = std::chrono::steady_clock::now();
  for (size_t done = 0, i = 0; done < total; done += size, i = (i + 1) % pieces) {
    acc ^= pgbranch::Crc32Update(0, buf.data() + i * size, size);
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  *crc = acc;
  return static_cast<double>(total) / s / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  const size_t total = quick ? (size_t{64} << 20) : (size_t{1} << 30);
  std::string buf(size_t{4} << 20, '\0');
  uint32_t x = 12345;
  for (char& c : buf) c = static_cast<char>((x = x * 1103515245 + 12345) >> 16);

  const std::string implementation = pgbranch::Crc32Implementation();
  std::vector<std::vector<std::string>> rows;
  bool mismatch = false;
  for (size_t size : {size_t{64}, size_t{512}, size_t{8192}, size_t{1} << 20}) {
    uint32_t crc_zlib = 0, crc_fast = 0;
    pgbranch::Crc32ForceZlibForTesting(true);
    const double zlib = Measure(buf, size, total, &crc_zlib);
    pgbranch::Crc32ForceZlibForTesting(false);
    const double fast = Measure(buf, size, total, &crc_fast);
    mismatch |= crc_zlib != crc_fast;
    rows.push_back(
        {size >= 1024 ? absl::StrFormat("%d KiB", size / 1024) : absl::StrFormat("%d B", size),
         absl::StrFormat("%.2f", zlib), absl::StrFormat("%.2f", fast),
         absl::StrFormat("%.2fx", fast / zlib)});
  }
  pgbranch::bench_common::PrintTable(
      "CRC-32 throughput (GB/s, one thread)",
      {"PIECE", "ZLIB TABLES", absl::StrFormat("THIS CPU (%s)", implementation), "SPEEDUP"}, rows,
      {absl::StrFormat("%d MiB per cell; CPU: %s", total >> 20,
                       pgbranch::bench_common::FirstMatch("/proc/cpuinfo", "model name"))});
  if (mismatch) {
    std::fprintf(stderr, "crc32-bench: the two implementations disagree\n");
    return 1;
  }
  return 0;
}
