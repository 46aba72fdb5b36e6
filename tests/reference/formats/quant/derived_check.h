#pragma once
// The per-block checks the derived codec tests share: the claimed bound and the FP32
// decode on every element, reported as one line naming the block and the element.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "reference/numeric/ieee.h"
#include "reference/formats/quant/registry.h"
#include "tests/reference/formats/quant/block_families.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types

// The test's own float64 arithmetic (the error |x - decode_exact| and the bound
// formula) rounds a few times by 2^-53 each; 2^-45 relative is ample, and far below
// every bound's own slack terms (>= 2^-24 relative).
inline constexpr double kEvaluationSlack = 0x1p-45;

inline std::string hex_bytes(const std::vector<std::uint8_t>& bytes) {
  std::ostringstream s;
  s << std::hex;
  for (std::uint8_t b : bytes) s << (b < 16 ? "0" : "") << int(b);
  return s.str();
}

inline std::string describe(const TestBlock& b, const quant::CodecParams& p, int i, const std::vector<std::uint8_t>& bytes) {
  std::ostringstream s;
  s << b.family << " block, scale " << p.scale << ", element " << i << " x = " << std::hexfloat << b.x[i]
    << std::defaultfloat << " (" << b.x[i] << "), bytes " << hex_bytes(bytes);
  return s.str();
}

struct BlockCheck {
  std::string failure;   // empty when every element passed
  double worst_use = 0;  // the largest error / bound over elements with a nonzero bound
  bool any_bound = false;
};

// |x - decode_exact| <= error_bound for every element, and decode (FP32) is
// decode_exact rounded to FP32, bit for bit (NaN for NaN).
inline BlockCheck check_block(const quant::FormatInfo& f, const TestBlock& b, const quant::CodecParams& p) {
  std::vector<std::uint8_t> bytes(std::size_t(f.bytes));
  f.encode(b.x.data(), bytes.data(), p);
  BlockCheck r;
  for (int i = 0; i < f.block; ++i) {
    const double exact = f.decode_exact(bytes.data(), i, p);
    const float fp32 = f.decode(bytes.data(), i, p);
    const double err = std::fabs(double(b.x[i]) - exact);
    const double bound = f.error_bound(b.x.data(), i, p);
    std::ostringstream why;
    if (!(err <= bound * (1 + kEvaluationSlack)))
      why << "error " << err << " exceeds the bound " << bound << " (decode_exact " << exact << ")";
    else if (std::isnan(exact) ? !std::isnan(fp32) : num::bits_of(fp32) != num::bits_of(float(exact)))
      why << "decode " << std::hexfloat << fp32 << " is not decode_exact " << exact << " rounded to FP32";
    if (!why.str().empty()) {
      r.failure = describe(b, p, i, bytes) + ": " + why.str();
      return r;
    }
    if (bound > 0) {
      r.any_bound = true;
      r.worst_use = std::max(r.worst_use, err / bound);
    }
  }
  return r;
}

}  // namespace kvfid::test
