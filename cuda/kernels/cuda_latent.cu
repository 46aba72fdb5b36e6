// Latent attention (DeepSeek MLA) on the device: the twin's TwinBackend::latent_layer,
// kernel by kernel (latent_kernels.cuh, indexed_attention.cuh), in its order.
#include <climits>

#include "cuda/kernels/device_state.cuh"
#include "cuda/kernels/latent_kernels.cuh"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

constexpr int kRowThreads = 128;  // threads of a block that owns one step row
constexpr int kThreads = 256;     // threads of a block of a one-item-per-thread kernel

template <FloatFormat W, FloatFormat K>
void latent_layer_impl(CudaEngine::State& s, int l, const std::vector<StepRow>& rows, int split, bool want_taps,
                       StepOutput* out) {
  using KT = typename num::Storage<K>::T;
  const ModelConfig& c = s.c;
  const LatentAttention& a = c.mla;
  const int n = int(rows.size()), H = c.n_heads, hd = c.head_dim, nope = c.nope_dim(), vd = a.v_head_dim;
  const int kvl = a.kv_lora_rank, lw = kvl + a.rope_dim, kv_b = nope + vd, qd = c.q_dim(), out_dim = c.attn_out_dim();
  const kernels::LatentShape shape{H, hd, nope, a.rope_dim, vd, kvl};
  const DeviceLayerWeights& w = s.w.layers[l];
  float *xn = s.xn.p, *q = s.q.p, *k = s.k.p, *v = s.v.p, *att = s.att.p, *stats = s.stats.p;
  float* kva = s.kva.get(std::size_t(n) * lw);
  float* lat = s.lat.get(std::size_t(n) * kvl);
  float* kvb = s.kvb.get(std::size_t(n) * H * kv_b);

  // q = wq xn, or wq norm(wq_a xn); its rope parts turned below.
  if (a.q_lora_rank > 0) {
    float* qa = s.qa.get(std::size_t(n) * a.q_lora_rank);
    launch::matvec<W>(w.wq_a, xn, nullptr, qa, n, a.q_lora_rank, c.dim, false);
    launch::rmsnorm(qa, w.q_a_norm, s.eps, a.q_lora_rank, n, qa);
    launch::matvec<W>(w.wq, qa, nullptr, q, n, qd, a.q_lora_rank, false);
  } else {
    launch::matvec<W>(w.wq, xn, nullptr, q, n, qd, c.dim, false);
  }
  // The cache rows: the latent (wkv_a's first kv_lora_rank, RMSNorm'd) and k_pe (its rest,
  // RoPE'd), stored, then read back as the cache holds them.
  launch::matvec<W>(w.wkv_a, xn, nullptr, kva, n, lw, c.dim, false);
  KVFID_LAUNCH(n, kRowThreads, 0, kernels::latent_split_kernel)(kva, lat, shape);
  KVFID_LAUNCHED("latent_split_kernel");
  launch::rmsnorm(lat, w.kv_a_norm, s.eps, kvl, n, lat);
  std::vector<kernels::LatentRow> latent_rows(static_cast<std::size_t>(n));
  int width = 0, max_keys = 0;  // the widest sequence (the probabilities tap), the most keys a row reads
  for (int r = 0; r < n; ++r) {
    DeviceSequence& seq = s.seqs[rows[r].seq];
    const std::size_t layer_rows = std::size_t(l) * seq.capacity;
    latent_rows[r] = {static_cast<KT*>(seq.latent) + (layer_rows + rows[r].pos) * lw,
                      seq.rk + layer_rows * H * hd, seq.rv + layer_rows * H * vd, seq.capacity, rows[r].pos};
    width = std::max(width, seq.capacity);
    max_keys = std::max(max_keys, rows[r].pos + 1);
  }
  launch::to_device(s.latent_rows, latent_rows);
  const kernels::LatentRow* rows_d = s.latent_rows.p;
  KVFID_LAUNCH(n, kRowThreads, 0, kernels::latent_rope_kernel)(kva, lat, q, rows_d, s.rope_cos.p, s.rope_sin.p,
                                                               c.rope_head_dim() / 2, c.rope == RopeStyle::interleaved,
                                                               shape);
  KVFID_LAUNCHED("latent_rope_kernel");
  if (s.plan.fast) {
    KVFID_LAUNCH(n, kRowThreads, 0, kernels::latent_store_kernel<K>)(kva, lat, rows_d, shape);
    KVFID_LAUNCHED("latent_store_kernel");
  } else {  // a block format: each row's decode() into its FP32 cache row (the first head's scales, as the twin)
    const num::KvLayout one{1, 1, lw, 1};
    for (int r = 0; r < n; ++r)
      encode_row(s, s.plan.policy.k[std::size_t(l)].format, kva + std::size_t(r) * lw, one,
                 s.kv_scales.p + std::size_t(2 * l) * c.n_kv_heads, static_cast<float*>(latent_rows[r].row));
    KVFID_LAUNCH(n, kRowThreads, 0, kernels::latent_read_back_kernel)(kva, lat, rows_d, shape);
    KVFID_LAUNCHED("latent_read_back_kernel");
  }
  // Their keys and values, reconstructed from the stored rows into the sequences and the taps.
  launch::matvec<W>(w.wkv_b, lat, nullptr, kvb, n, H * kv_b, kvl, false);
  KVFID_LAUNCH(n, kRowThreads, 0, kernels::latent_scatter_kernel)(kvb, kva, k, v, rows_d, shape);
  KVFID_LAUNCHED("latent_scatter_kernel");

  // The attention, keys 0 .. pos of each row: over the reconstructions (a key head per
  // query head), or absorbed (the cached rows one key head for every query head).
  const bool absorb = s.latent_path == LatentPath::absorb;
  s.indexed_host.assign(std::size_t(n), kernels::IndexedKeys{});
  for (int r = 0; r < n; ++r) {
    kernels::IndexedKeys& ik = s.indexed_host[r];
    const DeviceSequence& seq = s.seqs[rows[r].seq];
    if (absorb) {
      ik.k = ik.v = static_cast<const KT*>(seq.latent) + std::size_t(l) * seq.capacity * lw;
      ik.k_step = ik.v_step = lw;
    } else {
      ik.k = latent_rows[r].rk;
      ik.v = latent_rows[r].rv;
      ik.k_head = (long long)seq.capacity * hd;
      ik.v_head = (long long)seq.capacity * vd;
      ik.k_step = hd;
      ik.v_step = vd;
    }
    ik.k_end = ik.v_end = INT_MAX;  // no hot planes
    ik.keys = rows[r].pos + 1;
  }
  launch::to_device(s.indexed, s.indexed_host);
  kernels::IndexedArgs args{};
  args.rows = s.indexed.p;
  args.n_heads = H;
  args.scale = s.scale;
  args.softcap = float(c.attn_softcap);
  args.split = split;
  args.stats = stats;
  if (!absorb) {
    args.q = q, args.q_row = qd, args.q_head = hd;
    args.group = 1, args.kw = hd, args.vw = vd;
    args.out = att, args.out_row = out_dim, args.out_head = vd;
    launch::indexed_attention<FloatFormat::f32>(args, n, H);
  } else {
    float* qabs = s.qabs.get(std::size_t(n) * H * lw);
    float* olat = s.olat.get(std::size_t(n) * H * kvl);
    using WT = typename num::Storage<W>::T;
    const std::size_t queries = std::size_t(n) * H * lw;
    const WT* wkv_b = static_cast<const WT*>(w.wkv_b);
    KVFID_LAUNCH(launch::blocks_for(queries, kThreads), kThreads, 0, kernels::absorbed_query_kernel<W>)(wkv_b, q, qabs,
                                                                                                      n, shape);
    KVFID_LAUNCHED("absorbed_query_kernel");
    args.q = qabs, args.q_row = (long long)H * lw, args.q_head = lw;
    args.group = H, args.kw = lw, args.vw = kvl;
    args.out = olat, args.out_row = (long long)H * kvl, args.out_head = kvl;
    launch::indexed_attention<K>(args, n, 1);
    const std::size_t lanes = std::size_t(n) * H * vd * num::kWarp;
    KVFID_LAUNCH(launch::blocks_for(lanes, kThreads), kThreads, 0, kernels::absorbed_output_kernel<W>)(wkv_b, olat, att,
                                                                                                     n, shape);
    KVFID_LAUNCHED("absorbed_output_kernel");
  }
  if (!want_taps || !out) return;
  // The probabilities each query weighted its keys by, from its path's own scores.
  float* probs = s.probs.get(std::size_t(n) * H * width);
  KVFID_CUDA(cudaMemset(probs, 0, std::size_t(n) * H * width * 4));
  if (absorb) launch::indexed_probs<K>(args, n, max_keys, probs, width, true);
  else launch::indexed_probs<FloatFormat::f32>(args, n, max_keys, probs, width, true);
  LayerTaps& t = out->layers[std::size_t(l)];
  t.probs_width = width;
  launch::to_host(t.probs, probs, std::size_t(n) * H * width);
}

}  // namespace

void latent_layer(CudaEngine::State& s, int l, const std::vector<StepRow>& rows, int split, bool want_taps,
                  StepOutput* out) {
  num::dispatch_fmt(s.wf, [&]<FloatFormat W>() {
    if (!s.plan.fast) return latent_layer_impl<W, FloatFormat::f32>(s, l, rows, split, want_taps, out);
    num::dispatch_fmt(*s.plan.fast,
                      [&]<FloatFormat K>() { latent_layer_impl<W, K>(s, l, rows, split, want_taps, out); });
  });
}

}  // namespace kvfid::engine
