// The CPU twin: every kernel of the CUDA engine, each output element reduced by the
// same cuda/common functions in the same order as its GPU thread/warp. What one GPU
// block owns (matvec output rows, a row's attention head, a logits row) is a work item
// of the engine's thread pool (thread_pool.h); the rest runs on the calling thread.
#include <algorithm>
#include <cstring>
#include <memory>

#include "cuda/common/attention_math.h"
#include "cuda/common/kv_encode.h"
#include "cuda/common/kv_layout.h"
#include "cuda/common/latent_math.h"
#include "cuda/common/log_softmax.h"
#include "cuda/common/rope.h"
#include "cuda/common/row_dot.h"
#include "cuda/engine/backend.h"
#include "cuda/engine/eviction.h"
#include "cuda/engine/kv_plan.h"
#include "cuda/engine/packed_model.h"
#include "cuda/engine/rope_table.h"
#include "cuda/engine/sequence_buffers.h"
#include "cuda/engine/split_keys.h"
#include "cuda/twin/attention_simd.h"
#include "cuda/twin/row_dot_simd.h"
#include "cuda/twin/thread_pool.h"
#include "reference/formats/quant/registry.h"
#include "reference/formats/quant/row_blocks.h"
#include "reference/util/input_error.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

using ref::FloatFormat;
using num::Storage;

struct TwinSequence {
  int capacity = 0;  // tokens
  // The planes' layout: capacity tokens (under an eviction, `planes` instead).
  num::KvLayout layout;
  std::unique_ptr<CacheEviction> evict;    // set under an eviction policy
  EvictedPlanes planes;                    // under an eviction: each layer's slots
  // Fast path: KvLayout in the fast format, per layer K then V. Tiered path
  // (kv_plan.h): the cold planes, KvLayout of FP32. Under an eviction: `planes` in
  // KvPlan::evict_planes.
  std::vector<std::uint8_t> cache;
  std::vector<float> hot;                  // tiered with a hot plane: as the cold planes, FP32
  std::vector<float> raw;                  // tiered under KIVI: [n_layers] KvLayout K planes, FP32
  std::vector<std::uint8_t> codes;         // tiered: slot regions at code_offsets
  std::vector<std::size_t> code_offsets;   // KvPlan::code_offsets
  // Latent attention (config.h's LatentAttention) holds no K and V planes: its cache is
  // `latent`, per layer [capacity, kv_lora_rank + rope_dim] in the fast format. rk and rv
  // hold each cached token's keys and values reconstructed from its row, FP32
  // [n_layers, n_heads, capacity, head_dim] and [.., v_head_dim]: a pure function of the
  // row, so the same bits as rebuilding them at every step, as a prefill kernel does.
  std::vector<std::uint8_t> latent;
  std::vector<float> rk, rv;
  // Layer `layer`'s planes: its K or V plane's offset (elements) and their layout.
  std::size_t plane_at(int layer, bool values) const {
    if (evict) return planes.k_at[std::size_t(layer)] + (values ? planes.layer[std::size_t(layer)].plane() : 0);
    return values ? layout.v_offset(layer) : layout.k_offset(layer);
  }
  const num::KvLayout& plane_layout(int layer) const { return evict ? planes.layer[std::size_t(layer)] : layout; }
  float* cold_plane(int layer, bool values) { return reinterpret_cast<float*>(cache.data()) + plane_at(layer, values); }
  // Under an eviction: layer `layer`'s K or V slot plane in KvPlan::evict_planes.
  template <FloatFormat K>
  typename Storage<K>::T* slot_plane(int layer, bool values) {
    return reinterpret_cast<typename Storage<K>::T*>(cache.data()) + plane_at(layer, values);
  }
  float* hot_plane(int layer, bool values) { return hot.data() + plane_at(layer, values); }
  float* raw_plane(int layer) { return raw.data() + layout.plane() * layer; }
  std::uint8_t* slot_codes(int layer, bool values) { return codes.data() + code_offsets[2 * layer + values]; }
};

// Where a query reads its keys and values: the fast path's one plane per K and V in
// the storage format.
template <FloatFormat K>
struct PlainKv {
  const typename Storage<K>::T* k;
  const typename Storage<K>::T* v;
  const num::KvLayout& lay;
  const typename Storage<K>::T* key(int kvh, int j) const { return k + lay.row(kvh, j); }
  const typename Storage<K>::T* value(int kvh, int j) const { return v + lay.row(kvh, j); }
};

// The tiered path: FP32 cold and hot planes, the plane chosen per key by cold_end.
struct TieredKv {
  const float *k_cold, *k_hot, *v_cold, *v_hot;
  int k_end, v_end;  // cold_end for this query's keys and values
  const num::KvLayout& lay;
  const float* key(int kvh, int j) const { return (j < k_end ? k_cold : k_hot) + lay.row(kvh, j); }
  const float* value(int kvh, int j) const { return (j < v_end ? v_cold : v_hot) + lay.row(kvh, j); }
};

// A slot-addressed cache under an eviction (cuda/engine/eviction.h): cold planes in K
// (KvPlan::evict_planes) and FP32 hot ones (K is FP32 whenever there is a hot plane) of
// `lay` (capacity: the slots), position j in kv head h at slot[h * capacity + j].
template <FloatFormat K>
struct SlotKv {
  const typename Storage<K>::T *k_cold, *k_hot, *v_cold, *v_hot;
  int k_end, v_end;  // cold_end for this query's keys and values
  const num::KvLayout& lay;
  const int* slot;  // [n_kv_heads, capacity]
  int capacity;
  const typename Storage<K>::T* key(int kvh, int j) const {
    return (j < k_end ? k_cold : k_hot) + lay.row(kvh, slot[std::size_t(kvh) * capacity + j]);
  }
  const typename Storage<K>::T* value(int kvh, int j) const {
    return (j < v_end ? v_cold : v_hot) + lay.row(kvh, slot[std::size_t(kvh) * capacity + j]);
  }
};

// Latent attention's reconstructed keys and values (TwinSequence::rk, rv) of one layer:
// query head h reads key head h.
struct ReconstructedKv {
  const float* k;  // [n_heads, capacity, head_dim]
  const float* v;  // [n_heads, capacity, v_head_dim]
  int capacity, head_dim, v_head_dim;
  const float* key(int h, int j) const { return k + (std::size_t(h) * capacity + j) * head_dim; }
  const float* value(int h, int j) const { return v + (std::size_t(h) * capacity + j) * v_head_dim; }
};

// The absorbed path's reading of one layer's cached rows [capacity, width]: one key head
// whose keys are the whole rows (latent, k_pe) and whose values their latent part.
template <FloatFormat K>
struct LatentRows {
  const typename Storage<K>::T* rows;
  int width;
  const typename Storage<K>::T* key(int, int j) const { return rows + std::size_t(j) * width; }
  const typename Storage<K>::T* value(int, int j) const { return rows + std::size_t(j) * width; }
};

// The widths attend() reads: a key's (what q is dotted with) and a value's (what it sums).
struct AttendWidths {
  int key, value;
};

// The keys a query reads, in position order: a range (causal, or a sliding window), or
// the positions an eviction kept.
struct KeyRange {
  int first, end;
  int size() const { return end - first; }
  int operator[](int i) const { return first + i; }
};
struct KeyList {
  const std::vector<int>& positions;
  int size() const { return int(positions.size()); }
  int operator[](int i) const { return positions[std::size_t(i)]; }
};

// One worker's buffers for a query head's attention: a split's scores and
// probabilities [kSplit], the running and the split's weighted value sums [value width].
struct AttendScratch {
  std::vector<float> scores, probs, acc, split_acc;
};

int checked_threads(int threads) {
  if (threads < 0) throw InputError("engine", "thread count " + std::to_string(threads) + " is negative");
  return threads == 0 ? hardware_threads() : threads;
}

class TwinBackend final : public EngineBackend {
 public:
  TwinBackend(const Model& model, const EngineOptions& options)
      : pool_(checked_threads(options.threads)),
        m_(pack_model(model, options.weights)),
        plan_(make_kv_plan(options.kv, options.kv_scales, model.config)),
        rotation_(quant::view_of(plan_.policy.rotation)),
        rot_tmp_(std::size_t(model.config.head_dim)),
        split_mode_(options.split),
        latent_path_(options.latent),
        scratch_(pool_.size()) {
    if (model.config.mla.active()) quant::require_latent_policy(plan_.policy, options.kv.source);
  }

  int add_sequence(int capacity) override {
    const ModelConfig& c = m_.config;
    if (capacity < 1 || capacity > c.max_seq)
      throw InputError("engine", "sequence capacity " + std::to_string(capacity) + " outside [1, max_seq=" +
                                     std::to_string(c.max_seq) + "]");
    if (capacity > rope_.positions) rope_ = make_rope_table(c, capacity);
    const SequenceSizes sizes = sequence_sizes(plan_, c, capacity);
    TwinSequence s;
    s.capacity = capacity;
    s.layout = {c.n_layers, c.n_kv_heads, c.head_dim, capacity};
    if (plan_.policy.evict) {
      s.evict = std::make_unique<CacheEviction>(*plan_.policy.evict, c.n_layers, c.n_kv_heads, capacity);
      s.planes = evicted_planes(*plan_.policy.evict, c, capacity);
    }
    s.latent.assign(sizes.latent, 0);  // latent attention's rows and reconstructions, else empty
    s.rk.assign(sizes.rk / 4, 0.0f);
    s.rv.assign(sizes.rv / 4, 0.0f);
    s.cache.assign(sizes.cache, 0);
    s.hot.assign(sizes.hot / 4, 0.0f);
    s.raw.assign(sizes.raw / 4, 0.0f);
    s.codes.assign(sizes.codes, 0);
    s.code_offsets = sizes.code_offsets;
    seqs_.push_back(std::move(s));
    return int(seqs_.size()) - 1;
  }

  int fork_sequence(int source, int prefix_length, int capacity) override {
    const int id = add_sequence(capacity);
    TwinSequence& from = seqs_[source];  // after add_sequence, which may move seqs_
    TwinSequence& to = seqs_[id];
    auto base = [](TwinSequence& q, SequenceBuffer b) -> std::uint8_t* {
      switch (b) {
        case SequenceBuffer::cache: return q.cache.data();
        case SequenceBuffer::hot: return reinterpret_cast<std::uint8_t*>(q.hot.data());
        case SequenceBuffer::raw: return reinterpret_cast<std::uint8_t*>(q.raw.data());
        case SequenceBuffer::codes: return q.codes.data();
        case SequenceBuffer::latent: return q.latent.data();
        case SequenceBuffer::rk: return reinterpret_cast<std::uint8_t*>(q.rk.data());
        case SequenceBuffer::rv: return reinterpret_cast<std::uint8_t*>(q.rv.data());
      }
      return nullptr;
    };
    for (const StridedCopy& copy : fork_copies(plan_, m_.config, from.layout.capacity, capacity, prefix_length))
      for (std::size_t r = 0; r < copy.height; ++r)
        std::memcpy(base(to, copy.buffer) + copy.dst_offset + r * copy.dst_pitch,
                    base(from, copy.buffer) + copy.src_offset + r * copy.src_pitch, copy.width);
    return id;
  }

  void step(const std::vector<StepRow>& rows, bool want_taps, StepOutput& out) override {
    num::dispatch_fmt(m_.weights, [&]<FloatFormat W>() {
      if (!plan_.fast) return run<W, FloatFormat::f32, true>(rows, want_taps, out);
      num::dispatch_fmt(*plan_.fast, [&]<FloatFormat K>() { run<W, K, false>(rows, want_taps, out); });
    });
  }

  CacheValues cache_values(int seq, int layer, int length) override {
    TwinSequence& s = seqs_[seq];
    if (m_.config.mla.active()) return latent_cache_values(s, layer, length);
    if (s.evict) {
      const num::KvLayout& lay = s.plane_layout(layer);
      std::vector<float> decoded(2 * lay.plane());  // the layer's K and V slot planes, FP32 (contiguous)
      num::dispatch_fmt(plan_.evict_planes, [&]<FloatFormat K>() {
        const typename Storage<K>::T* planes = s.slot_plane<K>(layer, false);
        for (std::size_t i = 0; i < decoded.size(); ++i) decoded[i] = Storage<K>::load(planes[i]);
      });
      return gather_evicted_values(plan_, lay, *s.evict, layer, length, s.capacity, decoded.data(),
                                   decoded.data() + lay.plane(), plan_.hot_plane ? s.hot_plane(layer, false) : nullptr,
                                   plan_.hot_plane ? s.hot_plane(layer, true) : nullptr);
    }
    if (!plan_.fast)
      return gather_cache_values(plan_, s.layout, layer, length, s.cold_plane(layer, false), s.cold_plane(layer, true),
                                 plan_.hot_plane ? s.hot_plane(layer, false) : nullptr,
                                 plan_.hot_plane ? s.hot_plane(layer, true) : nullptr);
    std::vector<float> decoded(2 * s.layout.plane());  // the layer's K and V planes, FP32
    num::dispatch_fmt(*plan_.fast, [&]<FloatFormat K>() {
      const auto* planes = reinterpret_cast<const typename Storage<K>::T*>(s.cache.data()) + s.layout.k_offset(layer);
      for (std::size_t i = 0; i < decoded.size(); ++i) decoded[i] = Storage<K>::load(planes[i]);
    });
    return gather_cache_values(plan_, s.layout, layer, length, decoded.data(), decoded.data() + s.layout.plane(),
                               nullptr, nullptr);
  }

  std::vector<quant::EvictionEvent> evictions(int seq) override {
    return seqs_[seq].evict ? seqs_[seq].evict->events() : std::vector<quant::EvictionEvent>{};
  }

  // A row per work item, as the GPU's one block per row.
  void log_softmax(const StepOutput& last, std::vector<float>& logprobs) override {
    const int vocab = m_.config.vocab;
    logprobs.resize(last.logits.size());
    pool_.parallel_for(std::int64_t(last.logits.size() / vocab), 1, [&](std::int64_t r0, std::int64_t r1, int) {
      for (std::int64_t r = r0; r < r1; ++r)
        num::log_softmax_host(last.logits.data() + r * vocab, vocab, logprobs.data() + r * vocab);
    });
  }

 private:
  template <FloatFormat W, FloatFormat K, bool kTiered>
  void run(const std::vector<StepRow>& rows, bool want_taps, StepOutput& out);
  // Row r's attention for query head h over `keys` (KeyRange or KeyList, in position
  // order) in splits of `split` keys (attention_math.h's order).
  template <FloatFormat K, class Source, class Keys>
  void attend(const Source& kv, const float* q, int kvh, const Keys& keys, int split, float* out, float* stats,
              AttendScratch& scratch, AttendWidths widths);
  // Under an eviction: the step's rows one after another (each query reads what the
  // policy kept after the one before), a row's query heads in parallel, then the scorer
  // told and the cache evicted (cuda/engine/eviction.h). taps: when non-null, the
  // probabilities [rows, n_heads, taps_width] of the step.
  // The slot planes hold K (KvPlan::evict_planes).
  template <FloatFormat K>
  void attend_evicting(const std::vector<StepRow>& rows, int layer, int split, float* taps, int taps_width);
  // Under an eviction: row `pos` of K and V (k, v: its [kv_dim]) encoded in the layer's
  // formats, placed in a free slot per KV head (in K: exact, the decoded values are K's),
  // replaced by what its own query reads.
  template <FloatFormat K>
  void store_evicting(TwinSequence& s, int layer, int pos, float* k, float* v);
  // One layer's attention of the step's rows, from its normed input xn_ to att_ (and the
  // taps' q_, k_, v_, stats_): q, k, v projected, RoPE'd, stored, read back; the
  // attention over each row's keys (per row and query head a work item).
  template <FloatFormat W, FloatFormat K, bool kTiered>
  void attention_layer(const std::vector<StepRow>& rows, int layer, int split, bool want_taps, StepOutput& out);
  // The same for latent attention (config.h's LatentAttention), by latent_path_: the
  // rows' cache rows computed and stored (read back as the cache holds them), their keys
  // and values reconstructed into rk, rv, then the attention reads those (reconstruct)
  // or the cached rows themselves with the absorbed query (absorb). k_, v_ hold the
  // step's reconstructed keys and values for the taps; with taps, the probabilities each
  // query weighted its keys by (LayerTaps::probs), from its path's own scores.
  template <FloatFormat W, FloatFormat K>
  void latent_layer(const std::vector<StepRow>& rows, int layer, int split, bool want_taps, StepOutput& out);
  int latent_width() const { return m_.config.mla.kv_lora_rank + m_.config.mla.rope_dim; }
  // One token's row of `one` (a one-token KvLayout: n_kv_heads x head_dim values) in
  // `format`'s row blocks (kv_encode.h), `decoded` given what the codes decode to; the
  // codes (row_codes_) are not kept.
  void encode_row(int format, const num::KvLayout& one, const float* row, const float* scales, float* decoded);
  // A block format's latent row: encode_row as one head of latent_width().
  void encode_latent_row(int layer, const float* row, float* decoded);
  // Layer `layer`'s cached rows of s, [capacity, latent_width()] in K.
  template <FloatFormat K>
  typename Storage<K>::T* latent_rows(TwinSequence& s, int layer) {
    return reinterpret_cast<typename Storage<K>::T*>(s.latent.data()) + std::size_t(layer) * s.capacity * latent_width();
  }
  CacheValues latent_cache_values(TwinSequence& s, int layer, int length);
  template <FloatFormat W>
  void matvec(const PackedMatrix& w, const std::vector<float>& bias, const float* x, int rows, float* y);
  void rmsnorm(const float* x, const std::vector<float>& w, float eps, int rows, float* y);
  // The tiered store of one row (kv_plan.h); k, v: its [kv_dim] K (after RoPE) and V,
  // replaced by what its own query reads (the taps).
  void store_tiered(TwinSequence& s, int layer, int pos, float* k, float* v);

  ThreadPool pool_;
  PackedModel m_;
  KvPlan plan_;
  quant::RotationView rotation_;  // of plan_.policy.rotation
  std::vector<float> rot_tmp_;    // [head_dim] rotate_head's scratch
  SplitMode split_mode_;
  LatentPath latent_path_;
  RopeTable rope_;
  std::vector<TwinSequence> seqs_;
  // Step buffers, reused between steps (grown, never shrunk).
  std::vector<float> x_, xn_, q_, k_, v_, att_, proj_, h1_, h3_, stats_;
  // Latent attention's: [rows, q_lora_rank] the low-rank query, [rows, kv_lora_rank +
  // rope_dim] the cache rows, [rows, kv_lora_rank] a row's latent alone, [rows, n_heads
  // (nope + v_head_dim)] wkv_b's output, and the absorbed path's [rows, n_heads, width]
  // queries and [rows, n_heads, kv_lora_rank] outputs before W_UV.
  std::vector<float> qa_, kva_, lat_, kvb_, qabs_, olat_;
  std::vector<float> xt_;               // [rows, cols / kRowStep * kRowStep] a matvec's x rows, lane-major (row_dot_simd.h)
  std::vector<AttendScratch> scratch_;  // [pool_.size()]
  std::vector<float> evict_probs_;      // [n_heads, slots] a row's probabilities, for the scorers
  std::vector<float> row_k_, row_v_;    // [kv_dim] a row's decoded K and V
  std::vector<std::uint8_t> row_codes_; // a row's code blocks
};

// Work items per thread a parallel_for aims at: enough that a thread finishing early
// takes over part of a slower one's share, few enough that claiming stays cheap.
constexpr std::int64_t kItemsPerThread = 4;

std::int64_t grain_for(std::int64_t items, int threads) {
  const std::int64_t ranges = kItemsPerThread * threads;
  return (items + ranges - 1) / ranges;
}

// Output rows and x rows a matvec work item takes in tiles of, so that a tile of each
// (at most 16 weight rows of 9.5 KiB in BF16 and 16 x rows of 19 KiB for a 4864-wide
// row, Qwen2.5-0.5B's down projection) stays in a 512 KiB L2 while they are dotted.
constexpr int kMatvecTile = 16;

// y[r, o] = W[o, :] . x[r, :] (+ bias[o]): one warp per (r, o) on the GPU. A work item
// is a range of output rows o, dotted with the x rows tile by tile (a prefill step
// reads each weight from memory once, not once per token), by row_dot_simd (the same
// bits) where the CPU has AVX2, FMA and F16C.
template <FloatFormat W>
void TwinBackend::matvec(const PackedMatrix& w, const std::vector<float>& bias, const float* x, int rows, float* y) {
  const auto* data = w.data<W>();
  const bool simd = twin::row_dot_simd_available();
  const std::size_t full = std::size_t(w.cols / num::kRowStep) * num::kRowStep;  // lane-major floats per x row
  if (simd) {
    if (xt_.size() < rows * full) xt_.resize(rows * full);
    for (int r = 0; r < rows; ++r) twin::lane_major(x + std::size_t(r) * w.cols, w.cols, xt_.data() + r * full);
  }
  pool_.parallel_for(w.rows, grain_for(w.rows, pool_.size()), [&](std::int64_t o0, std::int64_t o1, int) {
    for (std::int64_t ot = o0; ot < o1; ot += kMatvecTile)
      for (int rt = 0; rt < rows; rt += kMatvecTile)
        for (std::int64_t o = ot; o < std::min<std::int64_t>(ot + kMatvecTile, o1); ++o)
          for (int r = rt; r < std::min(rt + kMatvecTile, rows); ++r) {
            const auto* wo = data + std::size_t(o) * w.cols;
            const float* xr = x + std::size_t(r) * w.cols;
            float d = simd ? twin::row_dot_simd<W>(wo, xr, xt_.data() + r * full, w.cols)
                           : num::row_dot_host<W>(wo, xr, w.cols);
            if (!bias.empty()) d = d + bias[o];
            y[std::size_t(r) * w.rows + o] = d;
          }
  });
}

// A row per work item (one block per row on the GPU).
void TwinBackend::rmsnorm(const float* x, const std::vector<float>& w, float eps, int rows, float* y) {
  const int n = int(w.size());
  pool_.parallel_for(rows, 1, [&](std::int64_t r0, std::int64_t r1, int) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const float* xr = x + std::size_t(r) * n;
      const float inv = num::rms_inverse(num::sum_squares_host(xr, n), n, eps);
      for (int i = 0; i < n; ++i) y[std::size_t(r) * n + i] = num::rms_apply(xr[i], inv, w[i]);
    }
  });
}

void rope(float* v, int heads, int head_dim, bool interleaved, const RopeTable& t, int pos) {
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < t.pairs; ++i) {
      int a, b;
      num::rope_dims(interleaved, head_dim, i, a, b);
      const std::size_t ti = std::size_t(pos) * t.pairs + i;
      num::rope_pair(v[h * head_dim + a], v[h * head_dim + b], t.cos[ti], t.sin[ti]);
    }
}

// The tiered store (kv_plan.h) of one row, in the order the CUDA kernels keep: the hot
// and raw forms and the token's row blocks, then (KIVI) the key group the token
// completes, whose other tokens' raw keys were stored by earlier rows or steps.
void TwinBackend::store_tiered(TwinSequence& s, int l, int pos, float* k, float* v) {
  const ModelConfig& c = m_.config;
  const int kvd = c.kv_dim(), hd = c.head_dim;
  const quant::KvPolicy& policy = plan_.policy;
  const float *k_scales = plan_.layer_scales(l, false, c.n_kv_heads), *v_scales = plan_.layer_scales(l, true, c.n_kv_heads);
  float *k_cold = s.cold_plane(l, false), *v_cold = s.cold_plane(l, true);
  for (int i = 0; i < kvd; ++i) {
    const std::size_t at = s.layout.row(i / hd, pos) + i % hd;
    if (plan_.hot_plane) {
      s.hot_plane(l, false)[at] = num::hot_value(k[i]);
      s.hot_plane(l, true)[at] = num::hot_value(v[i]);
    }
    if (policy.kivi) s.raw_plane(l)[at] = k[i];
  }
  quant::with_codec(policy.v[l].format, [&]<class C>() {
    for (int b = 0; b < quant::row_block_count(kvd, C::kBlock); ++b)
      num::encode_row_block<C>(v, b, pos, s.layout, v_scales, s.slot_codes(l, true), v_cold);
  });
  quant::with_codec(policy.k[l].format, [&]<class C>() {
    if (!policy.kivi) {
      for (int b = 0; b < quant::row_block_count(kvd, C::kBlock); ++b)
        num::encode_row_block<C>(k, b, pos, s.layout, k_scales, s.slot_codes(l, false), k_cold);
    } else if ((pos + 1) % C::kBlock == 0) {
      for (int ch = 0; ch < kvd; ++ch)
        num::encode_key_group<C>(s.raw_plane(l), ch, pos / C::kBlock, s.layout, k_scales, s.slot_codes(l, false), k_cold);
    }
  });
  const float* k_read = num::plane_read(k_cold, plan_.hot_plane ? s.hot_plane(l, false) : k_cold, pos, pos,
                                        policy.hot_window, plan_.k_group[l]);
  const float* v_read =
      num::plane_read(v_cold, plan_.hot_plane ? s.hot_plane(l, true) : v_cold, pos, pos, policy.hot_window, 0);
  for (int i = 0; i < kvd; ++i) {
    const std::size_t at = s.layout.row(i / hd, pos) + i % hd;
    k[i] = k_read[at];
    v[i] = v_read[at];
  }
}

template <FloatFormat K, class Source, class Keys>
void TwinBackend::attend(const Source& kv, const float* q, int kvh, const Keys& keys, int split, float* out,
                         float* stats, AttendScratch& scratch, AttendWidths widths) {
  const int kw = widths.key, vw = widths.value;
  float* scores = scratch.scores.data();
  float* probs = scratch.probs.data();
  float* acc = scratch.acc.data();
  float* split_acc = scratch.split_acc.data();
  const bool simd_scores = twin::attention_simd_available(kw), simd_values = twin::attention_simd_available(vw);
  const typename Storage<K>::T* rows[num::kSplit];  // the split's keys, then its values
  num::SoftmaxStats run{};
  const int n = keys.size();
  for (int sp = 0; sp < num::split_count(n, split); ++sp) {
    const int i0 = sp * split, i1 = std::min(i0 + split, n), count = i1 - i0;
    if (simd_scores) {
      for (int i = i0; i < i1; ++i) rows[i - i0] = kv.key(kvh, keys[i]);
      twin::attn_scores_simd<K>(q, rows, count, kw, m_.attn_scale, scores);
    } else {
      for (int i = i0; i < i1; ++i) scores[i - i0] = num::attn_score<K>(q, kv.key(kvh, keys[i]), kw, m_.attn_scale);
    }
    if (m_.attn_softcap > 0)
      for (int j = 0; j < count; ++j) scores[j] = num::capped_score(scores[j], m_.attn_softcap);
    // Max and sum: butterfly per warp of 32 keys (padding: -inf for the max, +0
    // for the sum, the values idle GPU lanes hold), then warps in order. Warps
    // wholly past the split's end only contribute those identities, so they are skipped.
    float lanes[num::kWarp];
    float m = 0, lsum = 0;
    for (int wj = 0; wj * num::kWarp < count; ++wj) {
      for (int i = 0; i < num::kWarp; ++i) {
        const int j = wj * num::kWarp + i;
        lanes[i] = j < count ? scores[j] : -num::infinity();
      }
      const float wm = num::butterfly_host<num::Max>(lanes);
      m = wj == 0 ? wm : num::max(m, wm);
    }
    for (int j = 0; j < count; ++j) probs[j] = num::exp_portable(scores[j] - m);
    for (int wj = 0; wj * num::kWarp < count; ++wj) {
      for (int i = 0; i < num::kWarp; ++i) {
        const int j = wj * num::kWarp + i;
        lanes[i] = j < count ? probs[j] : 0.0f;
      }
      const float ws = num::butterfly_host<num::Add>(lanes);
      lsum = wj == 0 ? ws : lsum + ws;
    }
    if (simd_values) {
      for (int i = i0; i < i1; ++i) rows[i - i0] = kv.value(kvh, keys[i]);
      twin::weighted_values_simd<K>(probs, rows, count, vw, split_acc);
    } else {
      for (int d = 0; d < vw; ++d) {
        float a = 0.0f;
        for (int i = i0; i < i1; ++i) a = num::fma(probs[i - i0], Storage<K>::load(kv.value(kvh, keys[i])[d]), a);
        split_acc[d] = a;
      }
    }
    if (sp == 0) {
      run = {m, lsum};
      std::copy_n(split_acc, vw, acc);
    } else {
      const num::FoldFactors f = num::fold_factors(run.m, m);
      for (int d = 0; d < vw; ++d) acc[d] = num::fold_value(acc[d], split_acc[d], f);
      run = num::fold_stats(run, lsum, f);
    }
  }
  for (int d = 0; d < vw; ++d) out[d] = num::div(acc[d], run.l);
  stats[0] = run.m;
  stats[1] = run.l;
}

template <FloatFormat K>
void TwinBackend::store_evicting(TwinSequence& s, int l, int pos, float* k, float* v) {
  const ModelConfig& c = m_.config;
  const int kvd = c.kv_dim(), hd = c.head_dim;
  const quant::KvPolicy& policy = plan_.policy;
  const float *k_scales = plan_.layer_scales(l, false, c.n_kv_heads), *v_scales = plan_.layer_scales(l, true, c.n_kv_heads);
  // The row's blocks encoded and decoded as the tiered store's (kv_encode.h) through a
  // one-token layout, whose one plane row is the [kv_dim] row; the codes are not kept
  // (the cold plane holds decode() of them: kv_plan.h).
  const num::KvLayout one{1, c.n_kv_heads, hd, 1};
  row_k_.resize(std::size_t(kvd));
  row_v_.resize(std::size_t(kvd));
  encode_row(policy.v[l].format, one, v, v_scales, row_v_.data());
  encode_row(policy.k[l].format, one, k, k_scales, row_k_.data());
  // Its own query reads the hot forms under a hot window (cold_end(pos) <= pos), else the cold.
  const bool own_hot = pos >= quant::cold_end(pos, policy.hot_window, 0);
  typename Storage<K>::T *k_slots = s.slot_plane<K>(l, false), *v_slots = s.slot_plane<K>(l, true);
  float* k_hot = plan_.hot_plane ? s.hot_plane(l, false) : nullptr;
  float* v_hot = plan_.hot_plane ? s.hot_plane(l, true) : nullptr;
  for (int h = 0; h < c.n_kv_heads; ++h) {
    const std::size_t at = s.plane_layout(l).row(h, s.evict->place(l, h, pos));
    for (int d = 0; d < hd; ++d) {
      const int i = h * hd + d;
      k_slots[at + d] = Storage<K>::store(row_k_[i]);
      v_slots[at + d] = Storage<K>::store(row_v_[i]);
      if (k_hot) {
        k_hot[at + d] = num::hot_value(k[i]);
        v_hot[at + d] = num::hot_value(v[i]);
      }
      k[i] = own_hot ? num::hot_value(k[i]) : row_k_[i];
      v[i] = own_hot ? num::hot_value(v[i]) : row_v_[i];
    }
    s.evict->scorer(l, h).cached(pos, row_k_.data() + std::size_t(h) * hd, hd);  // the slot's values
  }
}

template <FloatFormat K>
void TwinBackend::attend_evicting(const std::vector<StepRow>& rows, int l, int split, float* taps, int taps_width) {
  const ModelConfig& c = m_.config;
  const int hd = c.head_dim, qd = c.q_dim(), kvd = c.kv_dim(), group = c.group();
  for (std::size_t r = 0; r < rows.size(); ++r) {
    TwinSequence& s = seqs_[rows[r].seq];
    const int pos = rows[r].pos, slots = s.plane_layout(l).capacity;
    store_evicting<K>(s, l, pos, k_.data() + r * kvd, v_.data() + r * kvd);
    if (evict_probs_.size() < std::size_t(c.n_heads) * slots) evict_probs_.resize(std::size_t(c.n_heads) * slots);
    const typename Storage<K>::T* k_cold = s.slot_plane<K>(l, false);
    const typename Storage<K>::T* v_cold = s.slot_plane<K>(l, true);
    const typename Storage<K>::T* k_hot = k_cold;  // a hot plane only with FP32 slot planes (a hot window)
    const typename Storage<K>::T* v_hot = v_cold;
    if constexpr (K == FloatFormat::f32)
      if (plan_.hot_plane) k_hot = s.hot_plane(l, false), v_hot = s.hot_plane(l, true);
    const int cold_end = quant::cold_end(pos, plan_.policy.hot_window, 0);
    const SlotKv<K> kv{k_cold, k_hot, v_cold, v_hot, cold_end, cold_end, s.plane_layout(l), s.evict->slot_map(l),
                       s.capacity};
    pool_.parallel_for(c.n_heads, 1, [&](std::int64_t h0, std::int64_t h1, int worker) {
      for (int h = int(h0); h < int(h1); ++h) {
        const int kvh = h / group;
        const std::vector<int>& keys = s.evict->cached(l, kvh);
        const float* q = q_.data() + r * qd + std::size_t(h) * hd;
        float* st = stats_.data() + (r * c.n_heads + h) * 2;
        attend<K>(kv, q, kvh, KeyList{keys}, split, att_.data() + r * qd + std::size_t(h) * hd, st, scratch_[worker],
                  {hd, hd});
        // The probabilities the output weighted by, as engine_forward's attn.probs: the
        // scorer's input and the tap.
        float* p = evict_probs_.data() + std::size_t(h) * slots;
        for (std::size_t i = 0; i < keys.size(); ++i) {
          p[i] = num::attn_prob(num::capped_score(num::attn_score<K>(q, kv.key(kvh, keys[i]), hd, m_.attn_scale),
                                                   m_.attn_softcap),
                                num::SoftmaxStats{st[0], st[1]});
          if (taps) taps[(r * c.n_heads + h) * std::size_t(taps_width) + std::size_t(keys[i])] = p[i];
        }
      }
    });
    s.evict->attended(l, pos, evict_probs_.data(), std::size_t(slots), group);
  }
}

template <FloatFormat W, FloatFormat K, bool kTiered>
void TwinBackend::attention_layer(const std::vector<StepRow>& rows, int l, int split, bool want_taps, StepOutput& out) {
  using KT = typename Storage<K>::T;
  const ModelConfig& c = m_.config;
  const int n = int(rows.size());
  const int hd = c.head_dim, qd = c.q_dim(), kvd = c.kv_dim(), group = c.group();
  const bool interleaved = c.rope == RopeStyle::interleaved;
  const PackedLayer& w = m_.layers[l];
  matvec<W>(w.wq, w.bq, xn_.data(), n, q_.data());
  matvec<W>(w.wk, w.bk, xn_.data(), n, k_.data());
  matvec<W>(w.wv, w.bv, xn_.data(), n, v_.data());
  if (c.qk_norm) {  // Qwen3: each head of q and k RMSNorm'd, in place (a head per row), before RoPE
    rmsnorm(q_.data(), w.q_norm, m_.eps, n * c.n_heads, q_.data());
    rmsnorm(k_.data(), w.k_norm, m_.eps, n * c.n_kv_heads, k_.data());
  }
  // RoPE, the policy's rotation of every head (kv_rotation.h), then K and V into the
  // cache; the taps read K and V back from the cache.
  for (int r = 0; r < n; ++r) {
    rope(q_.data() + std::size_t(r) * qd, c.n_heads, hd, interleaved, rope_, rows[r].pos);
    rope(k_.data() + std::size_t(r) * kvd, c.n_kv_heads, hd, interleaved, rope_, rows[r].pos);
    TwinSequence& s = seqs_[rows[r].seq];
    float* kr = k_.data() + std::size_t(r) * kvd;
    float* vr = v_.data() + std::size_t(r) * kvd;
    if (rotation_.kind != quant::RotationKind::none) {
      for (int h = 0; h < c.n_heads; ++h) quant::rotate_head(rotation_, q_.data() + std::size_t(r) * qd + h * hd, rot_tmp_.data());
      for (int h = 0; h < c.n_kv_heads; ++h) {
        quant::rotate_head(rotation_, kr + h * hd, rot_tmp_.data());
        quant::rotate_head(rotation_, vr + h * hd, rot_tmp_.data());
      }
    }
    if constexpr (kTiered) {
      if (!s.evict) store_tiered(s, l, rows[r].pos, kr, vr);  // else attend_evicting stores, row by row
    } else {
      KT* kc = reinterpret_cast<KT*>(s.cache.data()) + s.layout.k_offset(l);
      KT* vc = reinterpret_cast<KT*>(s.cache.data()) + s.layout.v_offset(l);
      for (int h = 0; h < c.n_kv_heads; ++h)
        for (int d = 0; d < hd; ++d) {
          const std::size_t at = s.layout.row(h, rows[r].pos) + d;
          kc[at] = Storage<K>::store(kr[h * hd + d]);
          vc[at] = Storage<K>::store(vr[h * hd + d]);
          kr[h * hd + d] = Storage<K>::load(kc[at]);
          vr[h * hd + d] = Storage<K>::load(vc[at]);
        }
    }
  }
  // Attention (attention_math.h): per row and query head (a work item), splits of
  // the step's size from the row's first key, folded in order.
  const int window = c.window_of(l);
  if (plan_.policy.evict) {
    float* taps = nullptr;
    int width = 0;
    if (want_taps) {
      LayerTaps& t = out.layers[l];
      t.probs_width = 0;
      for (const StepRow& r : rows) t.probs_width = std::max(t.probs_width, seqs_[r.seq].capacity);
      t.probs.assign(std::size_t(n) * c.n_heads * t.probs_width, 0.0f);
      taps = t.probs.data();
      width = t.probs_width;
    }
    num::dispatch_fmt(plan_.evict_planes,
                      [&]<FloatFormat P>() { attend_evicting<P>(rows, l, split, taps, width); });
  } else pool_.parallel_for(std::int64_t(n) * c.n_heads, 1, [&](std::int64_t i0, std::int64_t i1, int worker) {
    for (std::int64_t i = i0; i < i1; ++i) {
      const int r = int(i / c.n_heads), h = int(i % c.n_heads);
      TwinSequence& s = seqs_[rows[r].seq];
      const int pos = rows[r].pos;
      const float* q = q_.data() + std::size_t(r) * qd + h * hd;
      float* o = att_.data() + std::size_t(r) * qd + h * hd;
      float* st = stats_.data() + (std::size_t(r) * c.n_heads + h) * 2;
      if constexpr (kTiered) {
        float* k_cold = s.cold_plane(l, false);
        float* v_cold = s.cold_plane(l, true);
        const TieredKv kv{k_cold,
                          plan_.hot_plane ? s.hot_plane(l, false) : k_cold,
                          v_cold,
                          plan_.hot_plane ? s.hot_plane(l, true) : v_cold,
                          quant::cold_end(pos, plan_.policy.hot_window, plan_.k_group[l]),
                          quant::cold_end(pos, plan_.policy.hot_window, 0),
                          s.layout};
        attend<K>(kv, q, h / group, KeyRange{num::first_key(window, pos), pos + 1}, split, o, st, scratch_[worker],
                  {hd, hd});
      } else {
        const KT* kc = reinterpret_cast<const KT*>(s.cache.data()) + s.layout.k_offset(l);
        const KT* vc = reinterpret_cast<const KT*>(s.cache.data()) + s.layout.v_offset(l);
        attend<K>(PlainKv<K>{kc, vc, s.layout}, q, h / group, KeyRange{num::first_key(window, pos), pos + 1}, split, o,
                  st, scratch_[worker], {hd, hd});
      }
    }
  });
  if (rotation_.kind != quant::RotationKind::none)  // the output back to the model's basis
    for (int i = 0; i < n * c.n_heads; ++i) quant::unrotate_head(rotation_, att_.data() + std::size_t(i) * hd, rot_tmp_.data());
}

template <FloatFormat W, FloatFormat K>
void TwinBackend::latent_layer(const std::vector<StepRow>& rows, int l, int split, bool want_taps, StepOutput& out) {
  using KT = typename Storage<K>::T;
  const ModelConfig& c = m_.config;
  const LatentAttention& a = c.mla;
  const int n = int(rows.size()), H = c.n_heads, hd = c.head_dim, nope = c.nope_dim(), vd = a.v_head_dim;
  const int rd = a.rope_dim, kvl = a.kv_lora_rank, lw = latent_width(), kv_b = nope + vd;
  const int qd = c.q_dim(), out_dim = c.attn_out_dim();
  const bool interleaved = c.rope == RopeStyle::interleaved;
  const PackedLayer& w = m_.layers[l];

  // q = wq xn, or wq norm(wq_a xn); its rope parts turned below.
  if (a.q_lora_rank > 0) {
    matvec<W>(w.wq_a, {}, xn_.data(), n, qa_.data());
    rmsnorm(qa_.data(), w.q_a_norm, m_.eps, n, qa_.data());
    matvec<W>(w.wq, {}, qa_.data(), n, q_.data());
  } else {
    matvec<W>(w.wq, {}, xn_.data(), n, q_.data());
  }
  // The cache rows: the latent (wkv_a's first kv_lora_rank, RMSNorm'd) and k_pe (its
  // rest, RoPE'd), stored, then read back as the cache holds them.
  matvec<W>(w.wkv_a, {}, xn_.data(), n, kva_.data());
  for (int r = 0; r < n; ++r) std::copy_n(kva_.data() + std::size_t(r) * lw, kvl, lat_.data() + std::size_t(r) * kvl);
  rmsnorm(lat_.data(), w.kv_a_norm, m_.eps, n, lat_.data());
  for (int r = 0; r < n; ++r) {
    const int pos = rows[r].pos;
    float* row = kva_.data() + std::size_t(r) * lw;
    std::copy_n(lat_.data() + std::size_t(r) * kvl, kvl, row);
    rope(row + kvl, 1, rd, interleaved, rope_, pos);
    for (int h = 0; h < H; ++h) rope(q_.data() + std::size_t(r) * qd + h * hd + nope, 1, rd, interleaved, rope_, pos);
    KT* cached = latent_rows<K>(seqs_[rows[r].seq], l) + std::size_t(pos) * lw;
    if (plan_.fast) {
      for (int i = 0; i < lw; ++i) {
        cached[i] = Storage<K>::store(row[i]);
        row[i] = Storage<K>::load(cached[i]);
      }
    } else if constexpr (K == FloatFormat::f32) {  // a block format: the tiered run, FP32 planes
      encode_latent_row(l, row, cached);
      std::copy_n(cached, lw, row);
    }
    std::copy_n(row, kvl, lat_.data() + std::size_t(r) * kvl);
  }
  // Their keys and values, reconstructed from the stored rows: wkv_b's per-head nope keys
  // and values, each key ending with the row's k_pe; into the sequence's rk, rv and
  // (the taps) k_, v_.
  matvec<W>(w.wkv_b, {}, lat_.data(), n, kvb_.data());
  for (int r = 0; r < n; ++r) {
    TwinSequence& s = seqs_[rows[r].seq];
    const int pos = rows[r].pos;
    const float* kv = kvb_.data() + std::size_t(r) * H * kv_b;
    const float* k_pe = kva_.data() + std::size_t(r) * lw + kvl;
    for (int h = 0; h < H; ++h) {
      float* k = k_.data() + std::size_t(r) * qd + h * hd;
      float* v = v_.data() + std::size_t(r) * H * vd + h * vd;
      std::copy_n(kv + h * kv_b, nope, k);
      std::copy_n(k_pe, rd, k + nope);
      std::copy_n(kv + h * kv_b + nope, vd, v);
      const std::size_t at = (std::size_t(l) * H + h) * s.capacity + pos;
      std::copy_n(k, hd, s.rk.data() + at * hd);
      std::copy_n(v, vd, s.rv.data() + at * vd);
    }
  }

  // The attention: per row and query head a work item, keys 0..pos (no window: validated).
  const bool absorb = latent_path_ == LatentPath::absorb;
  const PackedMatrix& wkv_b = w.wkv_b;
  pool_.parallel_for(std::int64_t(n) * H, 1, [&](std::int64_t i0, std::int64_t i1, int worker) {
    for (std::int64_t i = i0; i < i1; ++i) {
      const int r = int(i / H), h = int(i % H), pos = rows[r].pos;
      TwinSequence& s = seqs_[rows[r].seq];
      const float* q = q_.data() + std::size_t(r) * qd + h * hd;
      float* o = att_.data() + std::size_t(r) * out_dim + h * vd;
      float* st = stats_.data() + std::size_t(i) * 2;
      if (!absorb) {
        const std::size_t layer_at = std::size_t(l) * H * s.capacity;
        attend<FloatFormat::f32>(ReconstructedKv{s.rk.data() + layer_at * hd, s.rv.data() + layer_at * vd, s.capacity, hd, vd},
                                 q, h, KeyRange{0, pos + 1}, split, o, st, scratch_[worker], {hd, vd});
        continue;
      }
      // Absorbed: the query W_UK_h^T q_nope then q_pe, against the cached rows; the
      // latent sum it weights out through W_UV_h (the rows of wkv_b matvec would use).
      float* qa = qabs_.data() + std::size_t(i) * lw;
      const auto* w_keys = wkv_b.data<W>() + std::size_t(h) * kv_b * kvl;
      for (int cc = 0; cc < kvl; ++cc) qa[cc] = num::absorbed_query<W>(w_keys, kvl, q, nope, cc);
      std::copy_n(q + nope, rd, qa + kvl);
      float* ol = olat_.data() + std::size_t(i) * kvl;
      attend<K>(LatentRows<K>{latent_rows<K>(s, l), lw}, qa, 0, KeyRange{0, pos + 1}, split, ol, st, scratch_[worker],
                {lw, kvl});
      for (int d = 0; d < vd; ++d) o[d] = num::row_dot_host<W>(w_keys + std::size_t(nope + d) * kvl, ol, kvl);
    }
  });
  if (!want_taps) return;
  // The probabilities each query weighted its keys by, from its path's own scores.
  LayerTaps& t = out.layers[l];
  t.probs_width = 0;
  for (const StepRow& r : rows) t.probs_width = std::max(t.probs_width, seqs_[r.seq].capacity);
  t.probs.assign(std::size_t(n) * H * t.probs_width, 0.0f);
  for (int r = 0; r < n; ++r) {
    TwinSequence& s = seqs_[rows[r].seq];
    for (int h = 0; h < H; ++h) {
      const std::size_t i = std::size_t(r) * H + h;
      const num::SoftmaxStats st{stats_[2 * i], stats_[2 * i + 1]};
      for (int j = 0; j <= rows[r].pos; ++j) {
        const float score =
            absorb ? num::attn_score<K>(qabs_.data() + i * lw, latent_rows<K>(s, l) + std::size_t(j) * lw, lw, m_.attn_scale)
                   : num::attn_score<FloatFormat::f32>(q_.data() + std::size_t(r) * qd + h * hd,
                                                       s.rk.data() + ((std::size_t(l) * H + h) * s.capacity + j) * hd, hd,
                                                       m_.attn_scale);
        t.probs[i * t.probs_width + j] = num::attn_prob(score, st);
      }
    }
  }
}

void TwinBackend::encode_row(int format, const num::KvLayout& one, const float* row, const float* scales,
                             float* decoded) {
  const int width = one.n_kv_heads * one.head_dim;
  quant::with_codec(format, [&]<class C>() {
    const std::size_t bytes = std::size_t(quant::row_block_count(width, C::kBlock)) * C::kBytes;
    if (row_codes_.size() < bytes) row_codes_.resize(bytes);
    for (int b = 0; b < quant::row_block_count(width, C::kBlock); ++b)
      num::encode_row_block<C>(row, b, 0, one, scales, row_codes_.data(), decoded);
  });
}

void TwinBackend::encode_latent_row(int l, const float* row, float* decoded) {
  const num::KvLayout one{1, 1, latent_width(), 1};  // one token of one head: the row
  const float* scales = plan_.layer_scales(l, false, m_.config.n_kv_heads);  // the first head's: store_latent's
  encode_row(plan_.policy.k[std::size_t(l)].format, one, row, scales, decoded);
}

CacheValues TwinBackend::latent_cache_values(TwinSequence& s, int l, int length) {
  // What the cache stands for: each token's keys and values as its row reconstructs them,
  // [n_heads, length, head_dim] and [n_heads, length, v_head_dim]; the bytes are the rows'
  // (held once, for keys and values alike: counted with the keys).
  const ModelConfig& c = m_.config;
  CacheValues v;
  for (int h = 0; h < c.n_heads; ++h) {
    const std::size_t at = (std::size_t(l) * c.n_heads + h) * s.capacity;
    v.k.insert(v.k.end(), s.rk.begin() + at * c.head_dim, s.rk.begin() + (at + length) * c.head_dim);
    v.v.insert(v.v.end(), s.rv.begin() + at * c.v_head_dim(), s.rv.begin() + (at + length) * c.v_head_dim());
  }
  v.k_bytes = std::size_t(length) * latent_row_bytes(plan_, c, l);
  return v;
}

template <FloatFormat W, FloatFormat K, bool kTiered>
void TwinBackend::run(const std::vector<StepRow>& rows, bool want_taps, StepOutput& out) {
  const ModelConfig& c = m_.config;
  const int n = int(rows.size());
  const int qd = c.q_dim(), kvd = c.kv_dim(), vd = c.v_dim(), out_dim = c.attn_out_dim();
  for (const StepRow& r : rows) {
    if (r.seq < 0 || r.seq >= int(seqs_.size())) throw InputError("engine", "unknown sequence id");
    if (r.pos >= seqs_[r.seq].capacity) throw InputError("engine", "sequence capacity exceeded");
    if (r.token < 0 || r.token >= c.vocab) throw InputError("engine", "token id outside the vocabulary");
  }
  auto grow = [](std::vector<float>& b, std::size_t size) {
    if (b.size() < size) b.resize(size);
  };
  grow(x_, std::size_t(n) * c.dim);
  grow(xn_, std::size_t(n) * c.dim);
  grow(q_, std::size_t(n) * qd);
  grow(k_, std::size_t(n) * kvd);
  grow(v_, std::size_t(n) * vd);
  grow(att_, std::size_t(n) * out_dim);
  grow(proj_, std::size_t(n) * c.dim);
  grow(h1_, std::size_t(n) * c.hidden);
  grow(h3_, std::size_t(n) * c.hidden);
  grow(stats_, std::size_t(n) * c.n_heads * 2);
  // The widest value attend() sums: a head's, or the absorbed path's latent.
  const int value_width = std::max(c.v_head_dim(), c.mla.kv_lora_rank);
  for (AttendScratch& s : scratch_) {
    grow(s.scores, num::kSplit);
    grow(s.probs, num::kSplit);
    grow(s.acc, value_width);
    grow(s.split_acc, value_width);
  }
  if (c.mla.active()) {
    const int H = c.n_heads, lw = latent_width();
    grow(qa_, std::size_t(n) * c.mla.q_lora_rank);
    grow(kva_, std::size_t(n) * lw);
    grow(lat_, std::size_t(n) * c.mla.kv_lora_rank);
    grow(kvb_, std::size_t(n) * H * (c.nope_dim() + c.v_head_dim()));
    grow(qabs_, std::size_t(n) * H * lw);
    grow(olat_, std::size_t(n) * H * c.mla.kv_lora_rank);
  }
  out.layers.resize(want_taps ? c.n_layers : 0);  // kept between steps: assign() reuses capacity

  // Embedding: the token's row, decoded to FP32, times Gemma's embed_scale (1: exact).
  const auto* emb = m_.embedding.data<W>();
  for (int r = 0; r < n; ++r)
    for (int i = 0; i < c.dim; ++i)
      x_[std::size_t(r) * c.dim + i] = Storage<W>::load(emb[std::size_t(rows[r].token) * c.dim + i]) * m_.embed_scale;

  const int split = step_split_keys(split_mode_, rows, c.n_kv_heads);  // keys per attention split
  for (int l = 0; l < c.n_layers; ++l) {
    const PackedLayer& w = m_.layers[l];
    rmsnorm(x_.data(), w.attn_norm, m_.eps, n, xn_.data());
    if (c.mla.active()) {
      latent_layer<W, K>(rows, l, split, want_taps, out);
    } else {
      attention_layer<W, K, kTiered>(rows, l, split, want_taps, out);
    }
    matvec<W>(w.wo, {}, att_.data(), n, proj_.data());
    if (c.sandwich_norms) rmsnorm(proj_.data(), w.post_attn_norm, m_.eps, n, proj_.data());  // Gemma 2, in place
    for (std::size_t i = 0; i < std::size_t(n) * c.dim; ++i) x_[i] = x_[i] + proj_[i];
    rmsnorm(x_.data(), w.ffn_norm, m_.eps, n, xn_.data());
    matvec<W>(w.w1, {}, xn_.data(), n, h1_.data());
    matvec<W>(w.w3, {}, xn_.data(), n, h3_.data());
    const std::int64_t gated = std::int64_t(n) * c.hidden;  // elementwise: any cut is exact
    pool_.parallel_for(gated, grain_for(gated, pool_.size()), [&](std::int64_t i0, std::int64_t i1, int) {
      if (c.activation == Activation::silu)
        for (std::int64_t i = i0; i < i1; ++i) h1_[i] = num::silu(h1_[i]) * h3_[i];
      else
        for (std::int64_t i = i0; i < i1; ++i) h1_[i] = num::gelu_tanh(h1_[i]) * h3_[i];
    });
    matvec<W>(w.w2, {}, h1_.data(), n, proj_.data());
    if (c.sandwich_norms) rmsnorm(proj_.data(), w.post_ffn_norm, m_.eps, n, proj_.data());
    for (std::size_t i = 0; i < std::size_t(n) * c.dim; ++i) x_[i] = x_[i] + proj_[i];
    if (want_taps) {
      LayerTaps& t = out.layers[l];
      t.q.assign(q_.begin(), q_.begin() + std::size_t(n) * qd);
      t.k.assign(k_.begin(), k_.begin() + std::size_t(n) * kvd);
      t.v.assign(v_.begin(), v_.begin() + std::size_t(n) * vd);
      t.stats.assign(stats_.begin(), stats_.begin() + std::size_t(n) * c.n_heads * 2);
      t.attn_out.assign(att_.begin(), att_.begin() + std::size_t(n) * out_dim);
      t.out.assign(x_.begin(), x_.begin() + std::size_t(n) * c.dim);
    }
  }
  rmsnorm(x_.data(), m_.final_norm, m_.eps, n, xn_.data());
  out.logits.resize(std::size_t(n) * c.vocab);
  matvec<W>(m_.classifier, {}, xn_.data(), n, out.logits.data());
  if (m_.final_softcap > 0)  // Gemma 2, elementwise
    for (float& z : out.logits) z = num::soft_cap(z, m_.final_softcap);
}

}  // namespace

std::unique_ptr<EngineBackend> make_twin_backend(const Model& model, const EngineOptions& options) {
  return std::make_unique<TwinBackend>(model, options);
}

}  // namespace kvfid::engine
