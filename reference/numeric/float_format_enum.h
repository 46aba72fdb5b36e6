#pragma once
// The binary formats a value is stored or computed in: FP32, FP16, BF16. The one enum of
// the concept, for the specification (reference/formats/float_format.h: names, rounding)
// and the engine (cuda/common/storage.h: the element types its kernels are templated
// on) alike. Here, with no host header, so device code includes it as it is.

namespace kvfid::ref {

enum class FloatFormat : int { f32 = 0, f16 = 1, bf16 = 2 };

}  // namespace kvfid::ref
