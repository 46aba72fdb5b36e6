// attn_indexed_kernel and attn_indexed_probs_kernel (cuda/kernels/indexed_attention.cuh),
// the CUDA engine's attention over listed keys, run on the CPU by the kernel emulation
// (emulation/: the kernels' own code, block by block, barriers and warp shuffles
// included) against the twin's outputs of the same attention, bit for bit: the GQA
// plane cache read through a permuted slot list across a 256-key split, Gemma 2's
// windows and score soft-cap, latent attention's reconstructed keys, and the window
// cache of an eviction. CI has no GPU: this is where the kernel's order is checked.
#include "tests/cuda/kernels/emulation/emulated_launch.h"  // first: the kernels' <cuda_runtime.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/engine/engine.h"
#include "cuda/engine/packed_model.h"
#include "cuda/kernels/indexed_attention.cuh"
#include "reference/io/load_model.h"
#include "tests/common/test_env.h"
#include "tests/common/typed_options.h"
#include "tests/cuda/engine/engine_test_util.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

// The twin's outputs of one layer for a one-shot prompt, and the cache it attended.
struct TwinLayer {
  LayerTaps taps;
  CacheValues cache;
};

TwinLayer twin_layer(const Model& m, const EngineOptions& o, const std::vector<int>& tokens, int layer) {
  Engine e(m, o);
  const int seq = e.add_sequence(int(tokens.size()));
  const StepOutput& out = e.step({{seq, tokens}}, true);
  return {out.layers[std::size_t(layer)], e.cache_values(seq, layer)};
}

// The emulated launches' outputs for the rows `rows` of the prompt.
struct Emulated {
  std::vector<float> out, stats, probs;  // [rows, n_heads, vw], [rows, n_heads, 2], [rows, n_heads, width]
};

// The kernel over `keys` (one per emulated row) with the twin's q rows, then the
// probabilities by position into [rows, n_heads, width].
template <FloatFormat K>
Emulated emulate(const ModelConfig& c, const std::vector<int>& rows, const std::vector<kernels::IndexedKeys>& keys,
                 const std::vector<float>& q_tap, int q_width, int key_heads, int kw, int vw, int width) {
  const int H = c.n_heads, group = H / key_heads;
  std::vector<float> q(rows.size() * std::size_t(H) * q_width);
  for (std::size_t r = 0; r < rows.size(); ++r)
    std::copy_n(q_tap.begin() + std::size_t(rows[r]) * H * q_width, std::size_t(H) * q_width, q.begin() + r * H * q_width);
  Emulated e;
  e.out.assign(rows.size() * H * vw, 0.0f);
  e.stats.assign(rows.size() * H * 2, 0.0f);
  e.probs.assign(rows.size() * H * width, 0.0f);
  kernels::IndexedArgs a{};
  a.q = q.data(), a.q_row = (long long)H * q_width, a.q_head = q_width;
  a.rows = keys.data();
  a.n_heads = H, a.group = group, a.kw = kw, a.vw = vw;
  a.scale = attention_scale(c), a.softcap = float(c.attn_softcap), a.split = num::kSplit;
  a.out = e.out.data(), a.out_row = (long long)H * vw, a.out_head = vw;
  a.stats = e.stats.data();
  // Two heads a block where the group allows (the CUDA engine's split of a group over
  // blocks when shared memory is short): a head's values must not depend on its company.
  const int per_block = group % 2 == 0 ? 2 : 1;
  test::emulated_launch(dim3(unsigned(rows.size()), unsigned(key_heads * (group / per_block))), dim3(num::kSplit),
                        kernels::indexed_shared_floats(per_block, kw, vw) * 4,
                        [&] { kernels::attn_indexed_kernel<K>(a, per_block); });
  int max_keys = 0;
  for (const kernels::IndexedKeys& k : keys)
    for (int g = 0; g < key_heads; ++g) max_keys = std::max(max_keys, k.pos ? k.count[g] : k.keys);
  const std::size_t threads = rows.size() * H * max_keys;
  test::emulated_launch(dim3(unsigned((threads + 255) / 256)), dim3(256), 0, [&] {
    kernels::attn_indexed_probs_kernel<K>(a, int(rows.size()), max_keys, e.probs.data(), width, true);
  });
  return e;
}

// Row r's outputs, stats (and probabilities, when the twin gave them) equal the twin's.
void expect_twin_bits(const Emulated& e, const TwinLayer& t, const std::vector<int>& rows, int H, int vw, int width,
                      const std::vector<float>& twin_probs, int twin_width) {
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const std::size_t row = std::size_t(rows[r]);
    for (int i = 0; i < H * vw; ++i)
      ASSERT_EQ(num::bits_of(e.out[r * H * vw + i]), num::bits_of(t.taps.attn_out[row * H * vw + i]))
          << "row " << row << " output " << i;
    for (int i = 0; i < H * 2; ++i)
      ASSERT_EQ(num::bits_of(e.stats[r * H * 2 + i]), num::bits_of(t.taps.stats[row * H * 2 + i]))
          << "row " << row << " stats " << i;
    if (twin_probs.empty()) continue;
    for (int h = 0; h < H; ++h)
      for (int j = 0; j < width; ++j)
        ASSERT_EQ(num::bits_of(e.probs[(r * H + h) * width + j]),
                  num::bits_of(twin_probs[(row * H + h) * std::size_t(twin_width) + j]))
            << "row " << row << " head " << h << " key " << j;
  }
}

// A KV head's keys in the layout the kernel reads from slots: [key heads, slots, hd] of
// K, position j at slot T - 1 - j (reversed, so no key sits at its own position).
template <FloatFormat K>
std::vector<typename num::Storage<K>::T> reversed_slots(const std::vector<float>& plane, int heads, int T, int hd) {
  std::vector<typename num::Storage<K>::T> slots(plane.size());
  for (int g = 0; g < heads; ++g)
    for (int j = 0; j < T; ++j)
      for (int d = 0; d < hd; ++d)
        slots[(std::size_t(g) * T + (T - 1 - j)) * hd + d] = num::Storage<K>::store(plane[(std::size_t(g) * T + j) * hd + d]);
  return slots;
}

// Per emulated row, the listed keys first_key(window, pos) .. pos of every key head at
// their reversed slots: lists [rows][2 * heads * T + heads] as CacheEviction::key_lists.
std::vector<std::vector<int>> window_lists(const std::vector<int>& rows, int heads, int T, int window) {
  std::vector<std::vector<int>> lists;
  for (int pos : rows) {
    std::vector<int> l(std::size_t(2 * heads) * T + heads, 0);
    const int first = num::first_key(window, pos);
    for (int g = 0; g < heads; ++g) {
      for (int j = first; j <= pos; ++j) {
        l[std::size_t(g) * T + (j - first)] = j;
        l[std::size_t(heads + g) * T + (j - first)] = T - 1 - j;
      }
      l[std::size_t(2 * heads) * T + g] = pos - first + 1;
    }
    lists.push_back(std::move(l));
  }
  return lists;
}

// The plane cache of layer `layer` (f16 K and V, [kv heads, T, head_dim]) read through
// the lists, with hot planes absent.
template <FloatFormat K>
void check_listed_plane_cache(const Model& m, const std::string& kv, int T, int layer, const std::vector<int>& rows,
                              bool from_taps) {
  const ModelConfig& c = m.config;
  EngineOptions o;
  o.kv = test::kv_spec(kv);
  const auto tokens = test::prompt_tokens(T, c.vocab, test::test_seed() + 7);
  const TwinLayer t = twin_layer(m, o, tokens, layer);
  const int KVH = c.n_kv_heads, hd = c.head_dim;
  // The keys and values as the cache holds them: its planes, or (an eviction, whose
  // cache no longer holds the evicted ones) each row's own k and v taps, [T, KVH, hd].
  std::vector<float> k_plane = t.cache.k, v_plane = t.cache.v;
  if (from_taps)
    for (int j = 0; j < T; ++j)
      for (int i = 0; i < KVH * hd; ++i) {
        k_plane[(std::size_t(i / hd) * T + j) * hd + i % hd] = t.taps.k[std::size_t(j) * KVH * hd + i];
        v_plane[(std::size_t(i / hd) * T + j) * hd + i % hd] = t.taps.v[std::size_t(j) * KVH * hd + i];
      }
  const auto k_slots = reversed_slots<K>(k_plane, KVH, T, hd), v_slots = reversed_slots<K>(v_plane, KVH, T, hd);
  const std::vector<std::vector<int>> lists = window_lists(rows, KVH, T, c.window_of(layer));
  std::vector<kernels::IndexedKeys> keys;
  for (const std::vector<int>& l : lists) {
    kernels::IndexedKeys k{};
    k.k = k_slots.data(), k.v = v_slots.data();
    k.k_head = k.v_head = (long long)T * hd;
    k.k_step = k.v_step = hd;
    k.k_end = k.v_end = T;
    k.pos = l.data(), k.slot = l.data() + std::size_t(KVH) * T, k.count = l.data() + std::size_t(2 * KVH) * T;
    k.list = T;
    keys.push_back(k);
  }
  const Emulated e = emulate<K>(c, rows, keys, t.taps.q, hd, KVH, hd, hd, T);
  expect_twin_bits(e, t, rows, c.n_heads, hd, T, t.taps.probs, t.taps.probs_width);
}

TEST(EmulatedIndexedAttention, GqaPlaneCacheThroughPermutedSlotsAcrossASplit) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = load_model(test::fixtures_dir() + "/tiny-qwen2");
  ASSERT_GT(m.config.group(), 1);
  check_listed_plane_cache<FloatFormat::f16>(m, "f16", 300, 1, {0, 1, 31, 32, 255, 256, 257, 299}, false);
}

TEST(EmulatedIndexedAttention, Gemma2WindowsAndScoreSoftCap) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = load_model(test::fixtures_dir() + "/tiny-gemma2");
  ASSERT_GT(m.config.attn_softcap, 0.0);
  for (int layer = 0; layer < m.config.n_layers; ++layer) {
    SCOPED_TRACE("layer " + std::to_string(layer) + " window " + std::to_string(m.config.window_of(layer)));
    check_listed_plane_cache<FloatFormat::bf16>(m, "bf16", 40, layer, {0, 3, 4, 5, 17, 39}, false);
  }
}

// The window cache of an eviction: the twin's own probabilities (LayerTaps::probs) too.
TEST(EmulatedIndexedAttention, WindowCacheOfAnEvictionWithItsProbabilities) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = load_model(test::fixtures_dir() + "/tiny-mistral");
  for (int layer = 0; layer < m.config.n_layers; ++layer) {
    SCOPED_TRACE("layer " + std::to_string(layer));
    check_listed_plane_cache<FloatFormat::f16>(m, "f16+evict=window", 40, layer, {0, 5, 6, 7, 39}, true);
  }
}

// Latent attention's reconstruct path: a key head per query head, values v_head_dim wide
// (unlisted keys 0 .. pos), and the twin's probabilities from its own scores.
TEST(EmulatedIndexedAttention, LatentReconstructedKeysWithTheirProbabilities) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = load_model(test::fixtures_dir() + "/tiny-mla");
  const ModelConfig& c = m.config;
  const int T = 50, H = c.n_heads, hd = c.head_dim, vd = c.v_head_dim();
  EngineOptions o;
  o.kv = test::kv_spec("f32");
  const std::vector<int> rows = {0, 1, 31, 32, 49};
  for (int layer = 0; layer < c.n_layers; ++layer) {
    SCOPED_TRACE("layer " + std::to_string(layer));
    const TwinLayer t = twin_layer(m, o, test::prompt_tokens(T, c.vocab, test::test_seed() + 8), layer);
    std::vector<kernels::IndexedKeys> keys;
    for (int pos : rows) {
      kernels::IndexedKeys k{};
      k.k = t.cache.k.data(), k.v = t.cache.v.data();  // [H, T, hd], [H, T, vd]
      k.k_head = (long long)T * hd, k.v_head = (long long)T * vd;
      k.k_step = hd, k.v_step = vd;
      k.k_end = k.v_end = T;
      k.keys = pos + 1;
      keys.push_back(k);
    }
    const Emulated e = emulate<FloatFormat::f32>(c, rows, keys, t.taps.q, hd, H, hd, vd, T);
    expect_twin_bits(e, t, rows, H, vd, T, t.taps.probs, t.taps.probs_width);
  }
}

}  // namespace
}  // namespace kvfid::engine
