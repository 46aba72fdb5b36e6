#pragma once
// Element storage of weights and the KV cache: FP32, FP16 or BF16 held in memory,
// always computed with in FP32. Kernels are templated on the format so loads compile
// to the right width; Storage<F>::load/store are the only conversions.
#include <cstdint>

#include "reference/numeric/convert.h"
#include "reference/numeric/float_format_enum.h"

namespace kvfid::engine::num {
using namespace kvfid::ref::num;  // the numeric core's conversions
using namespace kvfid::ref;  // the specification's names: the layer below

template <FloatFormat F>
struct Storage;

template <>
struct Storage<FloatFormat::f32> {
  using T = float;
  static KVFID_HD float load(T v) { return v; }
  static KVFID_HD T store(float v) { return v; }
};
template <>
struct Storage<FloatFormat::f16> {
  using T = std::uint16_t;
  static KVFID_HD float load(T v) { return f16_to_f32(v); }
  static KVFID_HD T store(float v) { return f32_to_f16(v); }
};
template <>
struct Storage<FloatFormat::bf16> {
  using T = std::uint16_t;
  static KVFID_HD float load(T v) { return bf16_to_f32(v); }
  static KVFID_HD T store(float v) { return f32_to_bf16(v); }
};

KVFID_HD int bytes_of(FloatFormat f) { return f == FloatFormat::f32 ? 4 : 2; }

// Dispatches a runtime format to a templated callable: fn.template operator()<F>().
template <class Fn>
inline void dispatch_fmt(FloatFormat f, Fn&& fn) {
  switch (f) {
    case FloatFormat::f32: fn.template operator()<FloatFormat::f32>(); return;
    case FloatFormat::f16: fn.template operator()<FloatFormat::f16>(); return;
    case FloatFormat::bf16: fn.template operator()<FloatFormat::bf16>(); return;
  }
}

}  // namespace kvfid::engine::num
