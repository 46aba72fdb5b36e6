#include "reference/mp/latent_attention.h"

#include <stdexcept>

#include "reference/mp/enclosure.h"
#include "reference/mp/kv_store.h"
#include "reference/mp/projection.h"
#include "reference/mp/rms_norm.h"

namespace kvfid::ref {

namespace {

// Rows of `width` values from column `column` on: where copy_columns reads or writes.
struct Block {
  MpArray& values;
  MpArray& radii;  // empty when not tracked
  int width;
  int column;
};

// n columns of each of `rows` rows from `src` into `dst` (their radii too when dst's are
// tracked). Exact: dst holds at least src's precision.
void copy_columns(const Block& src, const Block& dst, int rows, int n) {
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < n; ++i) {
      const std::size_t from = std::size_t(r) * src.width + src.column + i;
      const std::size_t to = std::size_t(r) * dst.width + dst.column + i;
      mpfr_set(dst.values[to], src.values[from], MPFR_RNDN);
      if (dst.radii.size()) mpfr_set(dst.radii[to], src.radii[from], MPFR_RNDN);
    }
}

MpArray* radii_or_null(MpArray& r) { return r.size() ? &r : nullptr; }

}  // namespace

LatentQkv latent_qkv(const MpArray& normed, const MpArray* normed_r, const MpWeights& weights,
                     const MpLayerVectors& vectors, const LayerWeights& layer, const RopeTable& rope, mpfr_srcptr eps,
                     int tokens, const ModelConfig& c, const MpArith& arith, int threads, Shards* shards, bool track,
                     const LatentStore* store) {
  if (!c.mla.active()) throw std::logic_error("latent_qkv: the model has no latent attention");
  const LatentAttention& a = c.mla;
  const mpfr_prec_t prec = arith.precision();
  const int T = tokens, H = c.n_heads, hd = c.head_dim, nope = c.nope_dim(), vd = a.v_head_dim, rd = a.rope_dim;
  const int kvl = a.kv_lora_rank, lw = kvl + rd;
  const std::size_t t_n = std::size_t(T);
  auto values = [&](std::size_t n) { return MpArray(n, prec); };
  auto radii = [&](std::size_t n) { return exact_radii(track ? n : 0); };
  const MpArray no_bias;
  LatentQkv out{values(t_n * c.q_dim()), values(t_n * c.kv_dim()), values(t_n * c.v_dim()), values(t_n * lw),
                radii(t_n * c.q_dim()), radii(t_n * c.kv_dim()), radii(t_n * c.v_dim()), radii(t_n * lw)};

  // q = wq h, or wq norm(wq_a h): [T, n_heads, head_dim].
  if (a.q_lora_rank > 0) {
    MpArray q_a = values(t_n * a.q_lora_rank), q_a_r = radii(q_a.size());
    project(q_a, weights.read(layer.wq_a), normed, no_bias, T, arith, threads, shards, normed_r, radii_or_null(q_a_r));
    MpArray q_c = values(q_a.size()), q_c_r = radii(q_a.size());
    rms_norm(q_c, q_a, vectors.q_a_norm, eps, T, arith, threads, radii_or_null(q_a_r), radii_or_null(q_c_r));
    project(out.q, weights.read(layer.wq), q_c, no_bias, T, arith, threads, shards, radii_or_null(q_c_r), radii_or_null(out.q_r));
  } else {
    project(out.q, weights.read(layer.wq), normed, no_bias, T, arith, threads, shards, normed_r, radii_or_null(out.q_r));
  }
  // q's rope part of each head, rotated: gathered as [T, n_heads, rope_dim], put back.
  MpArray q_pe = values(t_n * H * rd), q_pe_r = radii(q_pe.size());
  for (int h = 0; h < H; ++h) copy_columns({out.q, out.q_r, H * hd, h * hd + nope}, {q_pe, q_pe_r, H * rd, h * rd}, T, rd);
  apply_rope(q_pe, rope, T, H, c.rope, arith, threads, radii_or_null(q_pe_r));
  for (int h = 0; h < H; ++h) copy_columns({q_pe, q_pe_r, H * rd, h * rd}, {out.q, out.q_r, H * hd, h * hd + nope}, T, rd);

  // The cache's row: norm(first kv_lora_rank of wkv_a h), then RoPE(its last rope_dim).
  {
    MpArray kv_a = values(t_n * lw), kv_a_r = radii(kv_a.size());  // [T, kv_lora_rank + rope_dim]
    project(kv_a, weights.read(layer.wkv_a), normed, no_bias, T, arith, threads, shards, normed_r, radii_or_null(kv_a_r));
    MpArray raw = values(t_n * kvl), raw_r = radii(raw.size());  // [T, kv_lora_rank]
    copy_columns({kv_a, kv_a_r, lw, 0}, {raw, raw_r, kvl, 0}, T, kvl);
    MpArray latent = values(raw.size()), latent_r = radii(raw.size());
    rms_norm(latent, raw, vectors.kv_a_norm, eps, T, arith, threads, radii_or_null(raw_r), radii_or_null(latent_r));
    MpArray k_pe = values(t_n * rd), k_pe_r = radii(k_pe.size());  // [T, rope_dim], one head
    copy_columns({kv_a, kv_a_r, lw, kvl}, {k_pe, k_pe_r, rd, 0}, T, rd);
    apply_rope(k_pe, rope, T, 1, c.rope, arith, threads, radii_or_null(k_pe_r));
    copy_columns({latent, latent_r, kvl, 0}, {out.latent, out.latent_r, lw, 0}, T, kvl);
    copy_columns({k_pe, k_pe_r, rd, 0}, {out.latent, out.latent_r, lw, kvl}, T, rd);
  }
  if (store) {  // the cache's form of each row: exact (store_latent proves every rounding)
    out.latent = store_latent(out.latent, radii_or_null(out.latent_r), store->policy, store->layer, T, lw);
    out.latent_r = exact_radii(track ? out.latent.size() : 0);
  }

  // Keys and values from the cached row: per head wkv_b's nope keys and v_head_dim
  // values, [T, n_heads, nope + v_head_dim]; every key ends with the row's k_pe.
  MpArray cached = MpArray(t_n * kvl, out.latent.precision()), cached_r = radii(t_n * kvl);
  copy_columns({out.latent, out.latent_r, lw, 0}, {cached, cached_r, kvl, 0}, T, kvl);
  const int kv_b = nope + vd;
  MpArray kv = values(t_n * H * kv_b), kv_r = radii(kv.size());
  project(kv, weights.read(layer.wkv_b), cached, no_bias, T, arith, threads, shards, radii_or_null(cached_r), radii_or_null(kv_r));
  for (int h = 0; h < H; ++h) {
    copy_columns({kv, kv_r, H * kv_b, h * kv_b}, {out.k, out.k_r, H * hd, h * hd}, T, nope);
    copy_columns({out.latent, out.latent_r, lw, kvl}, {out.k, out.k_r, H * hd, h * hd + nope}, T, rd);
    copy_columns({kv, kv_r, H * kv_b, h * kv_b + nope}, {out.v, out.v_r, H * vd, h * vd}, T, vd);
  }
  return out;
}

}  // namespace kvfid::ref
