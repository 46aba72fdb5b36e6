// An evicting KV cache on the device (cuda/engine/eviction.h): the twin's
// attend_evicting, row after row within the layer (query t reads what the policy kept
// after query t - 1). The decisions stay on the host, in the same CacheEviction the twin
// keeps, fed the same FP32 values: the decoded keys (knorm) and the probabilities the
// attention weighted by, computed on the device and copied back.
#include <algorithm>

#include "cuda/kernels/device_state.cuh"
#include "cuda/kernels/eviction_kernels.cuh"
#include "reference/formats/quant/registry.h"
#include "reference/formats/quant/row_blocks.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

constexpr int kThreads = 128;

template <FloatFormat K>
void evicting_impl(CudaEngine::State& s, int l, const std::vector<StepRow>& rows, int split, bool want_taps,
                   StepOutput* out) {
  using KT = typename num::Storage<K>::T;
  const ModelConfig& c = s.c;
  const int n = int(rows.size()), H = c.n_heads, KVH = c.n_kv_heads, hd = c.head_dim, qd = c.q_dim();
  const int kvd = c.kv_dim(), group = c.group();
  const quant::KvPolicy& policy = s.plan.policy;
  float *q = s.q.p, *k = s.k.p, *v = s.v.p, *att = s.att.p, *stats = s.stats.p;
  const float* k_scales = s.kv_scales.p + std::size_t(2 * l) * KVH;
  const float* v_scales = k_scales + KVH;
  float* row_k = s.row_k.get(kvd);
  float* row_v = s.row_v.get(kvd);
  float* taps = nullptr;
  int taps_width = 0;
  if (want_taps && out) {
    LayerTaps& t = out->layers[std::size_t(l)];
    t.probs_width = 0;
    for (const StepRow& r : rows) t.probs_width = std::max(t.probs_width, s.seqs[r.seq].capacity);
    t.probs.assign(std::size_t(n) * H * t.probs_width, 0.0f);
    taps = t.probs.data();
    taps_width = t.probs_width;
  }
  for (int r = 0; r < n; ++r) {
    DeviceSequence& seq = s.seqs[rows[r].seq];
    CacheEviction& ev = *seq.evict;
    const int pos = rows[r].pos;
    const num::KvLayout& lay = seq.planes.layer[std::size_t(l)];
    const int slots = lay.capacity;
    KT* k_plane = static_cast<KT*>(seq.cache) + seq.planes.k_at[std::size_t(l)];
    KT* v_plane = k_plane + lay.plane();
    float* k_hot = s.plan.hot_plane ? seq.hot + seq.planes.k_at[std::size_t(l)] : nullptr;
    float* v_hot = k_hot ? k_hot + lay.plane() : nullptr;
    float* kr = k + std::size_t(r) * kvd;
    float* vr = v + std::size_t(r) * kvd;

    // The store: decoded rows, the slots the host gives them, the scorers told the key.
    const num::KvLayout one{1, KVH, hd, 1};  // the token's row as one plane row
    encode_row(s, policy.v[std::size_t(l)].format, vr, one, v_scales, row_v);
    encode_row(s, policy.k[std::size_t(l)].format, kr, one, k_scales, row_k);
    std::vector<int> token_slots(static_cast<std::size_t>(KVH));
    for (int h = 0; h < KVH; ++h) token_slots[h] = ev.place(l, h, pos);
    launch::to_device(s.token_slots, token_slots);
    const int cold_end = quant::cold_end(pos, policy.hot_window, 0);
    KVFID_LAUNCH(1, kThreads, 0, kernels::evict_store_kernel<K>)(kr, vr, row_k, row_v, s.token_slots.p, k_plane,
                                                                 v_plane, k_hot, v_hot, lay, pos >= cold_end);
    KVFID_LAUNCHED("evict_store_kernel");
    launch::to_host(s.row_k_host, row_k, std::size_t(kvd));
    for (int h = 0; h < KVH; ++h) ev.scorer(l, h).cached(pos, s.row_k_host.data() + std::size_t(h) * hd, hd);

    // The kept keys of each KV head in position order, with their slots.
    ev.key_lists(l, slots, s.key_lists_host);
    launch::to_device(s.key_lists, s.key_lists_host);
    int max_keys = 0;
    for (int h = 0; h < KVH; ++h) max_keys = std::max(max_keys, int(ev.cached(l, h).size()));
    kernels::IndexedKeys ik{};
    ik.k = k_plane;
    ik.v = v_plane;
    if constexpr (K == FloatFormat::f32) ik.k_hot = k_hot, ik.v_hot = v_hot;  // a hot plane only with FP32 slot planes
    ik.k_head = ik.v_head = (long long)slots * hd;
    ik.k_step = ik.v_step = hd;
    ik.k_end = ik.v_end = cold_end;
    ik.pos = s.key_lists.p;
    ik.slot = s.key_lists.p + std::size_t(KVH) * slots;
    ik.count = s.key_lists.p + std::size_t(2 * KVH) * slots;
    ik.list = slots;
    s.indexed_host.assign(1, ik);
    launch::to_device(s.indexed, s.indexed_host);
    kernels::IndexedArgs args{};
    args.q = q + std::size_t(r) * qd, args.q_row = 0, args.q_head = hd;
    args.rows = s.indexed.p;
    args.n_heads = H, args.group = group, args.kw = hd, args.vw = hd;
    args.scale = s.scale, args.softcap = float(c.attn_softcap), args.split = split;
    args.out = att + std::size_t(r) * qd, args.out_row = 0, args.out_head = hd;
    args.stats = stats + std::size_t(r) * H * 2;
    launch::indexed_attention<K>(args, 1, KVH);

    // The probabilities the output weighted by, [H, slots] by key index: the scorers'
    // input and the tap; then the policy's evictions.
    float* probs = s.probs.get(std::size_t(H) * slots);
    launch::indexed_probs<K>(args, 1, max_keys, probs, slots, false);
    launch::to_host(s.probs_host, probs, std::size_t(H) * slots);
    for (int h = 0; taps && h < H; ++h) {
      const std::vector<int>& kept = ev.cached(l, h / group);
      for (std::size_t i = 0; i < kept.size(); ++i)
        taps[(std::size_t(r) * H + h) * taps_width + kept[i]] = s.probs_host[std::size_t(h) * slots + i];
    }
    ev.attended(l, pos, s.probs_host.data(), std::size_t(slots), group);
  }
}

}  // namespace

// One thread per block of the row; the codes go to scratch (not kept).
void encode_row(CudaEngine::State& s, int format, const float* x, const num::KvLayout& one, const float* scales,
                float* decoded) {
  quant::with_codec(format, [&]<class C>() {
    const int blocks = quant::row_block_count(one.n_kv_heads * one.head_dim, C::kBlock);
    KVFID_LAUNCH((blocks + kThreads - 1) / kThreads, kThreads, 0, kernels::encode_row_kernel<C>)(
        x, one, scales, s.row_codes.get(std::size_t(blocks) * C::kBytes), decoded);
    KVFID_LAUNCHED("encode_row_kernel");
  });
}

void evicting_attention(CudaEngine::State& s, int l, const std::vector<StepRow>& rows, int split, bool want_taps,
                        StepOutput* out) {
  num::dispatch_fmt(s.plan.evict_planes,
                    [&]<FloatFormat K>() { evicting_impl<K>(s, l, rows, split, want_taps, out); });
}

}  // namespace kvfid::engine
