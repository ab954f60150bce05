// FastDivisor (kernel_templates/fast_divisor.h) against plain division: the kernels index
// work units with it, so one wrong quotient would put a tile in the wrong place.
#include <catch2/catch.hpp>

#include <random>

#include "kernel_templates/fast_divisor.h"

using marlinrt::kern::FastDivisor;

TEST_CASE("FastDivisor divides dividends below 2^31 by divisors up to 2^31 exactly", "[fast_divisor]") {
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<unsigned> dividend(0, (1u << 31) - 1);
  std::vector<unsigned> divisors;
  for (unsigned d = 1; d <= 4096; ++d) divisors.push_back(d);
  for (int s = 12; s <= 31; ++s) {  // around every power of two, up to 2^31
    for (int e = -2; e <= 2; ++e) {
      if ((1ll << s) + e <= (1ll << 31)) divisors.push_back(static_cast<unsigned>((1ll << s) + e));
    }
  }
  std::uniform_int_distribution<unsigned> large(1, (1u << 31) - 1);
  for (int i = 0; i < 2000; ++i) divisors.push_back(large(rng));
  for (const unsigned d : divisors) {
    const FastDivisor f = FastDivisor::make(d);
    // The dividends where rounding errors show first: multiples of d, their neighbours, the top.
    for (const unsigned n : {0u, 1u, d - 1, d, d + 1, (1u << 31) - 1, ((1u << 31) - 1) / d * d,
                             ((1u << 31) - 1) / d * d - 1}) {
      if (n >= (1u << 31)) continue;
      if (f.divide(n) != n / d) FAIL("d " << d << " n " << n << ": " << f.divide(n));
    }
    for (int j = 0; j < 50; ++j) {
      const unsigned n = dividend(rng);
      if (f.divide(n) != n / d) FAIL("d " << d << " n " << n << ": " << f.divide(n));
    }
  }
  SUCCEED("all quotients exact");
}
