#include "common/crc32.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>

#include "common/coding.h"

namespace pgbranch {
namespace {

constexpr uint64_t kPoly = 0x104C11DB7;  // x^32 + ... + 1, most significant bit first

uint64_t Reflect(uint64_t v, int bits) {
  uint64_t r = 0;
  for (int i = 0; i < bits; ++i) r |= ((v >> i) & 1) << (bits - 1 - i);
  return r;
}

// x^n mod P as a 32-bit polynomial, most significant bit first.
uint64_t XPowModP(int n) {
  uint64_t r = 1;
  for (int i = 0; i < n; ++i) {
    r <<= 1;
    if (r & (uint64_t{1} << 32)) r ^= kPoly;
  }
  return r;
}

uint64_t FoldConstant(int n) { return Reflect(XPowModP(n), 32) << 1; }

// floor(x^64 / P), a 33-bit polynomial.
uint64_t BarrettQuotient() {
  unsigned __int128 d = static_cast<unsigned __int128>(1) << 64;
  uint64_t q = 0;
  for (int bit = 64; bit >= 32; --bit) {
    if ((d >> bit) & 1) {
      d ^= static_cast<unsigned __int128>(kPoly) << (bit - 32);
      q |= uint64_t{1} << (bit - 32);
    }
  }
  return q;
}

uint32_t Zlib(uint32_t crc, const std::string& s, size_t off, size_t n) {
  return static_cast<uint32_t>(crc32_z(crc, reinterpret_cast<const Bytef*>(s.data() + off), n));
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class Crc32Test : public ::testing::Test {
 protected:
  void TearDown() override { Crc32ForceZlibForTesting(false); }
};

TEST_F(Crc32Test, ConstantsDeriveFromThePolynomial) {
  const Crc32FoldConstants& k = Crc32Constants();
  EXPECT_EQ(k.k_512_plus_32, FoldConstant(512 + 32));
  EXPECT_EQ(k.k_512_minus_32, FoldConstant(512 - 32));
  EXPECT_EQ(k.k_128_plus_32, FoldConstant(128 + 32));
  EXPECT_EQ(k.k_128_minus_32, FoldConstant(128 - 32));
  EXPECT_EQ(k.k_64, FoldConstant(64));
  EXPECT_EQ(k.barrett_p, Reflect(kPoly, 33));
  EXPECT_EQ(k.barrett_mu, Reflect(BarrettQuotient(), 33));
}

TEST_F(Crc32Test, UsesCarrylessMultiplicationWhereTheCpuHasIt) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("pclmul") || !__builtin_cpu_supports("sse4.1")) {
    GTEST_SKIP() << "this CPU has no PCLMULQDQ";
  }
  EXPECT_STREQ(Crc32Implementation(), "pclmul");
  Crc32ForceZlibForTesting(true);
  EXPECT_STREQ(Crc32Implementation(), "zlib");
#else
  EXPECT_STREQ(Crc32Implementation(), "zlib");
#endif
}

TEST_F(Crc32Test, KnownValue) {
  // The CRC-32 check value, and a page of zeros (long enough to be folded).
  EXPECT_EQ(Crc32("123456789"), 0xCBF43926u);
  const std::string page(8192, '\0');
  EXPECT_EQ(Crc32(page), Zlib(0, page, 0, page.size()));
}

TEST_F(Crc32Test, EqualsZlibForEveryLengthAlignmentAndSeed) {
  const std::string data = RandomBytes(600, 1);
  std::mt19937 rng(2);
  for (size_t off = 0; off < 16; ++off) {
    for (size_t n = 0; off + n <= 560; ++n) {
      const uint32_t seed = (n % 3 == 0) ? 0 : static_cast<uint32_t>(rng());
      ASSERT_EQ(Crc32Update(seed, data.data() + off, n), Zlib(seed, data, off, n))
          << "offset " << off << " length " << n;
    }
  }
}

TEST_F(Crc32Test, EqualsZlibForLargeBuffers) {
  for (size_t n : {size_t{8192}, size_t{8192 + 7}, size_t{65536 + 13}, size_t{1} << 20}) {
    const std::string data = RandomBytes(n, static_cast<uint32_t>(n));
    EXPECT_EQ(Crc32(data), Zlib(0, data, 0, n)) << n;
    EXPECT_EQ(Crc32(data, 0xdeadbeef), Zlib(0xdeadbeef, data, 0, n)) << n;
  }
}

TEST_F(Crc32Test, AllOnesAndPatternsEqualZlib) {
  // Inputs that stress the carries of the folding: all ones, alternating bits, one set bit.
  for (char c : {'\xff', '\xaa', '\x55', '\x01', '\x80'}) {
    const std::string data(4096 + 48, c);
    EXPECT_EQ(Crc32(data), Zlib(0, data, 0, data.size())) << static_cast<int>(c);
  }
  for (size_t bit = 0; bit < 1024; bit += 37) {
    std::string data(128, '\0');
    data[bit / 8] = static_cast<char>(1 << (bit % 8));
    EXPECT_EQ(Crc32(data), Zlib(0, data, 0, data.size())) << bit;
  }
}

TEST_F(Crc32Test, ChainingEqualsOnePass) {
  const std::string data = RandomBytes(20000, 3);
  for (size_t cut : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{8191}, size_t{12345}}) {
    const uint32_t a = Crc32(std::string_view(data).substr(0, cut));
    EXPECT_EQ(Crc32(std::string_view(data).substr(cut), a), Crc32(data)) << cut;
    const uint32_t b = Crc32(std::string_view(data).substr(cut));
    EXPECT_EQ(Crc32Combine(a, b, data.size() - cut), Crc32(data)) << cut;
  }
}

TEST_F(Crc32Test, ForcedZlibGivesTheSameValues) {
  const std::string data = RandomBytes(8192 + 100, 4);
  const uint32_t folded = Crc32(data);
  Crc32ForceZlibForTesting(true);
  EXPECT_EQ(Crc32(data), folded);
}

TEST_F(Crc32Test, NullDataIsZeroLikeZlib) {
  // zlib answers a null buffer with its initial value, 0, whatever the length or seed.
  EXPECT_EQ(Crc32Update(0x1234, nullptr, 0), crc32_z(0x1234, Z_NULL, 0));
  EXPECT_EQ(Crc32Update(0x1234, nullptr, 100), crc32_z(0x1234, Z_NULL, 100));
}

}  // namespace
}  // namespace pgbranch
