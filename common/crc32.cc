#include "common/crc32.h"

#include <zlib.h>

#include <atomic>

#if defined(__x86_64__)
#include <immintrin.h>
#define PGBRANCH_CRC32_PCLMUL 1
#endif

namespace pgbranch {
namespace {

// Checked against a derivation from the polynomial in crc32_test.cc.
constexpr Crc32FoldConstants kConstants = {
    0x154442bd4, 0x1c6e41596,  // x^544, x^480
    0x1751997d0, 0x0ccaa009e,  // x^160, x^96
    0x163cd6124,               // x^64
    0x1db710641, 0x1f7011641,  // P', mu'
};

// Inputs shorter than this go to zlib: setting up the four lanes costs more than it saves.
constexpr size_t kMinFoldBytes = 64;

std::atomic<bool> force_zlib{false};

uint32_t ZlibUpdate(uint32_t crc, const void* data, size_t n) {
  return static_cast<uint32_t>(crc32_z(crc, static_cast<const Bytef*>(data), n));
}

#if PGBRANCH_CRC32_PCLMUL
#define PGBRANCH_CLMUL_TARGET __attribute__((target("pclmul,sse4.1")))

bool CpuHasPclmul() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
}

PGBRANCH_CLMUL_TARGET inline __m128i Load(const unsigned char* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// x * x^(n+32) and x * x^(n-32) folded onto `next`: the 128 bits of `x` moved n bits ahead,
// where (k_lo, k_hi) in `k` are the constants for that distance.
PGBRANCH_CLMUL_TARGET inline __m128i Fold(__m128i x, __m128i k, __m128i next) {
  __m128i lo = _mm_clmulepi64_si128(x, k, 0x00);
  __m128i hi = _mm_clmulepi64_si128(x, k, 0x11);
  return _mm_xor_si128(_mm_xor_si128(lo, hi), next);
}

// The reflected CRC state `crc` (not inverted) continued by `n` bytes, n >= 64 and a multiple of
// 16. Invariant of the loops: the CRC of everything consumed so far equals the CRC of the lanes'
// 512 (then 128) bits as if they were the message.
PGBRANCH_CLMUL_TARGET uint32_t PclmulBlocks(uint32_t crc, const unsigned char* p, size_t n) {
  __m128i lane[4];
  for (int i = 0; i < 4; ++i) lane[i] = Load(p + 16 * i);
  lane[0] = _mm_xor_si128(lane[0], _mm_cvtsi32_si128(static_cast<int>(crc)));
  p += 64;
  n -= 64;

  const __m128i k512 = _mm_set_epi64x(static_cast<long long>(kConstants.k_512_minus_32),
                                      static_cast<long long>(kConstants.k_512_plus_32));
  for (; n >= 64; p += 64, n -= 64) {
    for (int i = 0; i < 4; ++i) lane[i] = Fold(lane[i], k512, Load(p + 16 * i));
  }

  const __m128i k128 = _mm_set_epi64x(static_cast<long long>(kConstants.k_128_minus_32),
                                      static_cast<long long>(kConstants.k_128_plus_32));
  __m128i x = lane[0];
  for (int i = 1; i < 4; ++i) x = Fold(x, k128, lane[i]);
  for (; n >= 16; p += 16, n -= 16) x = Fold(x, k128, Load(p));

  // 128 bits -> 96: the low half times x^96 onto the high half.
  const __m128i low32 = _mm_set_epi32(0, -1, 0, -1);
  x = _mm_xor_si128(_mm_srli_si128(x, 8), _mm_clmulepi64_si128(x, k128, 0x10));
  // 96 bits -> 64: the low 32 bits times x^64 onto the rest.
  const __m128i k64 = _mm_set_epi64x(0, static_cast<long long>(kConstants.k_64));
  x = _mm_xor_si128(_mm_srli_si128(x, 4), _mm_clmulepi64_si128(_mm_and_si128(x, low32), k64, 0));
  // Barrett: q = (x mod x^32) * mu, r = x - (q mod x^32) * P; the CRC is r's second word.
  const __m128i pmu = _mm_set_epi64x(static_cast<long long>(kConstants.barrett_mu),
                                     static_cast<long long>(kConstants.barrett_p));
  __m128i q = _mm_clmulepi64_si128(_mm_and_si128(x, low32), pmu, 0x10);
  q = _mm_clmulepi64_si128(_mm_and_si128(q, low32), pmu, 0x00);
  return static_cast<uint32_t>(_mm_extract_epi32(_mm_xor_si128(x, q), 1));
}

// A checksum taken by another static initializer before this one runs uses zlib: same value.
const bool kHavePclmul = CpuHasPclmul();
#else
const bool kHavePclmul = false;
#endif

bool UsePclmul() { return kHavePclmul && !force_zlib.load(std::memory_order_relaxed); }

}  // namespace

uint32_t Crc32Update(uint32_t crc, const void* data, size_t n) {
#if PGBRANCH_CRC32_PCLMUL
  if (n >= kMinFoldBytes && data != nullptr && UsePclmul()) {
    const size_t blocks = n & ~size_t{15};
    crc = ~PclmulBlocks(~crc, static_cast<const unsigned char*>(data), blocks);
    data = static_cast<const unsigned char*>(data) + blocks;
    n -= blocks;
  }
#endif
  return ZlibUpdate(crc, data, n);
}

const char* Crc32Implementation() { return UsePclmul() ? "pclmul" : "zlib"; }

void Crc32ForceZlibForTesting(bool force) { force_zlib.store(force, std::memory_order_relaxed); }

const Crc32FoldConstants& Crc32Constants() { return kConstants; }

}  // namespace pgbranch
