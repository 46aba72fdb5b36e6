#pragma once
// Peak memory of the MPFR forwards, derived from the shapes they allocate, so that a run
// that cannot fit is refused before it starts instead of dying of bad_alloc hours in.
// The weights are not part of it: they stay in the memory-mapped model file, which a
// forward touches whole (its pages count in the resident set once), so the caller adds
// the file's size (reference/util/available_memory.h).
//
// One MPFR number of precision p takes sizeof(__mpfr_struct) + mpfr_custom_get_size(p)
// bytes (MpArray: the structs in one block, the significands in another). With T
// tokens, L layers, H query heads, q = q_dim, kv = kv_dim, V = vocab, c = max(dim, q,
// hidden) the widest weight row, n threads, one forward at working precision p and
// weight precision w = weight_precision_for(p) holds at its peak (mp_forward.cpp):
//   persistent  T (3 dim + 2 hidden + head_dim)            numbers at p  (x, normed,
//               block_out, gate, up, the RoPE table)
//   one layer   T (2 q + 2 kv) + H T^2                     at p  (q, k, v, attn_out, probs)
//               + 6 T kv                                   at max(53, p) with a KV policy
//                                                          (cold and hot K and V, own k, v)
//   taps        the selected taps' values                  at p  (kept to the end)
//   logits      T V                                        at p
//   vectors     L (2 dim + q + 2 kv) + dim                 at w  (norm weights, biases)
//   scratch     n (c (8 + b(w)) + 4 b(p))                  one decoded weight row, its
//                                                          MPFR copy, products
// The golden (golden_forward.cpp) runs the forward at P + guard and at P side by side,
// a layer at a time, certifying each tap as both produce it and keeping only its float64
// value (8 bytes); the logits come a block of tokens at a time (golden_logits_block).
// Its peak is at most
//   8 N + working(P + guard) + working(P)        (N = tap values)
// where working(p) is the list above without the kept taps, the logits held for one
// block only, plus one layer's "out" copy. The enclosure method runs once at P, every
// value with a radius of kRadiusBits (enclosure.h):
//   8 N + working(P) + working(kRadiusBits)
// (the radii mirror the values; counting their weight vectors and scratch too only
// overstates). An escalation doubles P and frees the
// previous attempt first; the estimate is for the first attempt, which certifies almost
// always.
#include <cstdint>

#include <mpfr.h>

#include "reference/golden/taps.h"
#include "reference/model/config.h"

namespace kvfid::ref {

struct ForwardShape {
  ModelConfig config;
  int tokens = 0;
  TapSelection taps = TapSelection::all;
  bool kv_policy = false;  // K and V stored per a KV policy (kv_store.h)
  int threads = 1;         // as resolved by resolve_thread_count
};

// Bytes of one MPFR number of precision p in an MpArray.
std::uint64_t mp_number_bytes(mpfr_prec_t precision);

// The golden certifies the logits a block of tokens at a time (golden_forward.cpp),
// each of its two runs holding one block in MPFR: as many tokens as fit in
// kGoldenLogitsBlockBytes at `precision`, at least one and at most `tokens`. 64 MiB:
// a block costs its exact dot products whatever its size (the classifier's rows are
// decoded again per block, one float64 row per thread, ~1% of a row's dots at 7
// tokens), and two blocks of 64 MiB are small beside the 0.5B shape's 2 GB goal
// (vocab 151936 at 192 bits: 7 tokens a block).
inline constexpr std::uint64_t kGoldenLogitsBlockBytes = std::uint64_t(64) << 20;
int golden_logits_block(const ModelConfig& config, int tokens, mpfr_prec_t precision);

// Peak bytes one mp_forward allocates at `precision` (weights excluded).
std::uint64_t mp_forward_bytes(const ForwardShape& shape, mpfr_prec_t precision);

// Peak bytes of compute_golden's first attempt (weights excluded).
// guard_bits: the agreement method's; 0 for the enclosure method.
std::uint64_t golden_bytes(const ForwardShape& shape, int precision_bits, int guard_bits);

// Peak bytes of emulated_forward (weights excluded), which runs natively
// (reference/native/native_forward.cpp) and holds every format's values as binary32
// (4 bytes), the KV store in MPFR at 53 bits, the taps as float64. With the names above
// and W = T + 31 (the binary32 kernel's tokens, padded to its 32-token block):
//   persistent  T (3 dim + 2 hidden) floats + T head_dim (4 + b(24))   (x, normed,
//               block_out, gate, up; RoPE's table as MPFR and as floats)
//   one layer   T (2 q + 2 kv) + H T^2 floats                         (q, k, v, attn_out, probs)
//               + 2 T kv b(24) + 6 T kv b(53) + 6 T kv 8              (the cache: K and V
//               in MPFR, its cold and hot forms and own k, v, as float64 copies too)
//   projection  c W floats + n (c (8 + 4) + 4 W)                      (the transposed
//               activations; per thread a decoded row as float64 and float, its sums)
//   taps        8 N, and the T V logits as floats before their tap
// A latent-attention model's emulation is the MPFR forward at 24 bits instead:
// mp_forward_bytes(shape, 24) and its taps as float64.
std::uint64_t emulated_bytes(const ForwardShape& shape);

}  // namespace kvfid::ref
