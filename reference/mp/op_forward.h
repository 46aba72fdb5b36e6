#pragma once
// One operation of the forward pass, alone, on inputs a user supplies (kvfid op; the
// inputs and their checks: op_case.h): the exact output, certified by enclosures
// (enclosure.h: each value's true result in a ball that rounds to one float64 -- a
// proof, and one pass suffices for a single op), and the plain algorithm with every
// operation rounded to an IEEE format, the baseline of the gate. Both run the forward's
// own MPFR kernels (rms_norm.h, rope.h, softmax.h, swiglu.h, projection.h, attention.h,
// kv_store.h), so an op's exact output is what the golden of a whole model computes at
// that point, and its baseline what the emulation computes there. The baseline rounds
// every input to its format first, as a plain implementation in that format holds them;
// weights (w, and rmsnorm's weight) stay as given, as stored weights do in the emulation.
#include <nlohmann/json.hpp>

#include "reference/formats/float_format.h"
#include "reference/golden/taps.h"
#include "reference/mp/op_case.h"

namespace kvfid::ref {

struct OpGolden {
  TapTensor out;                  // named after the op
  nlohmann::json certification;   // method, precision, attempts, values, tightness
};

// The first attempt's precision and the limit, as kvfid golden's (GoldenOptions).
inline constexpr int kOpPrecisionBits = 128;
inline constexpr int kOpMaxPrecisionBits = 1024;

// The exact output, each value proven to be the correctly rounded float64 (enclosure
// method); the precision doubles from precision_bits (at least 64) while some value
// does not certify, up to max_precision_bits (CertificationError past it).
OpGolden certify_op(const OpCase& op, int precision_bits, int max_precision_bits, int threads);

// The plain algorithm with every operation rounded to `arithmetic`.
TapTensor emulate_op(const OpCase& op, FloatFormat arithmetic, int threads);

}  // namespace kvfid::ref
