#pragma once
// Whether two native results are the same: the same bits, or both NaN (no format here
// specifies a NaN's payload).
#include "reference/native/format_arith.h"

namespace kvfid::test {

inline bool same_bits(float a, float b) {
  return (a != a && b != b) || ref::native::bits_of(double(a)) == ref::native::bits_of(double(b));
}

}  // namespace kvfid::test
