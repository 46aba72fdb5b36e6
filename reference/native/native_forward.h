#pragma once
// The emulated baseline (reference/native/emulated_forward.h: the plain algorithm with every
// result rounded to binary32, binary16 or bfloat16) computed natively, bit for bit what
// mp_forward computes with MpArith::ieee(format) (format_arith.h argues each operation;
// tests/reference/native/ hold the MPFR emulation as the oracle). The same algorithm in
// the same order: mp_forward.cpp and its kernels (rms_norm, projection, rope, attention,
// softmax, swiglu, attention_score, kv_store) are the specification this file follows
// step by step, Gemma 2's steps included (tanh, like exp, by format_arith.h's enclosure).
// RoPE's sin/cos table, the attention scale and GeGLU's two constants stay in MPFR (a few
// thousand values), as does the KV store (kv_store.h: per layer, tokens x kv_dim values).
#include <vector>

#include "reference/formats/float_format.h"
#include "reference/formats/quant/kv_policy.h"
#include "reference/golden/taps.h"
#include "reference/model/model.h"

namespace kvfid::ref::native {

// `stored`: the model as the engine stores it (stored_model(...)); tokens valid for it;
// threads as resolved by resolve_thread_count. Taps in tap_specs order, every value in
// the format except k and v, which hold what the cache stores.
TapSet native_forward(const Model& stored, const std::vector<int>& tokens, FloatFormat arithmetic,
                      const quant::KvPolicy& kv, const TapSelection& selection, int threads);

}  // namespace kvfid::ref::native
