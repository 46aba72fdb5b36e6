#pragma once
// Element storage of weights and the KV cache: FP32, FP16 or BF16 held in memory,
// always computed with in FP32. Kernels are templated on the format so loads compile
// to the right width; Storage<F>::load/store are the only conversions.
#include <cstdint>

#include "reference/numeric/convert.h"

namespace kvfid::engine::num {
using namespace kvfid::ref::num;  // the numeric core's conversions
using namespace kvfid::ref;  // the specification's names: the layer below

// Matches kvfid::FloatFormat's enumerators (f32, f16, bf16), kept separate so that
// device code needs no host headers.
enum class Fmt : int { f32 = 0, f16 = 1, bf16 = 2 };

template <Fmt F>
struct Storage;

template <>
struct Storage<Fmt::f32> {
  using T = float;
  static KVFID_HD float load(T v) { return v; }
  static KVFID_HD T store(float v) { return v; }
};
template <>
struct Storage<Fmt::f16> {
  using T = std::uint16_t;
  static KVFID_HD float load(T v) { return f16_to_f32(v); }
  static KVFID_HD T store(float v) { return f32_to_f16(v); }
};
template <>
struct Storage<Fmt::bf16> {
  using T = std::uint16_t;
  static KVFID_HD float load(T v) { return bf16_to_f32(v); }
  static KVFID_HD T store(float v) { return f32_to_bf16(v); }
};

KVFID_HD int bytes_of(Fmt f) { return f == Fmt::f32 ? 4 : 2; }

// Dispatches a runtime format to a templated callable: fn.template operator()<F>().
template <class Fn>
inline void dispatch_fmt(Fmt f, Fn&& fn) {
  switch (f) {
    case Fmt::f32: fn.template operator()<Fmt::f32>(); return;
    case Fmt::f16: fn.template operator()<Fmt::f16>(); return;
    case Fmt::bf16: fn.template operator()<Fmt::bf16>(); return;
  }
}

}  // namespace kvfid::engine::num
