#include "reference/mp/attention.h"

#include <algorithm>
#include <optional>
#include <stdexcept>

#include "reference/formats/quant/kv_policy.h"
#include "reference/mp/attention_bounds.h"
#include "reference/mp/attention_score.h"
#include "reference/mp/ball_arith.h"
#include "reference/mp/mp_parallel.h"
#include "reference/mp/mp_weights.h"
#include "reference/mp/scaled_bounds.h"
#include "reference/mp/shards.h"
#include "reference/mp/softmax.h"

namespace kvfid::ref {

void causal_attention(MpArray* probs, MpArray& out, const MpArray& q, const AttentionKv& kv, int tokens,
                      const ModelConfig& config, const MpArith& arith, int threads, Shards* shards,
                      const AttentionRadii& radii, const AttentionMask& mask) {
  const int hd = config.head_dim, q_dim = config.q_dim(), kv_dim = config.kv_dim();
  // Values and the output are v_head_dim wide (head_dim but under latent attention).
  const int vd = config.v_head_dim(), v_dim = config.v_dim(), out_dim = config.attn_out_dim();
  const bool track = radii.out != nullptr;
  if (track && probs && !radii.probs) throw std::logic_error("causal_attention: kept probabilities need their radii");
  if ((kv.k_radii && &kv.k_hot != &kv.k_cold) || (kv.v_radii && &kv.v_hot != &kv.v_cold))
    throw std::logic_error("causal_attention: radii of keys and values need a single store");
  const ScoreFinish finish_score(config, arith, track);
  const std::optional<DotBounds> bounds = track ? std::optional<DotBounds>(std::in_place, q, kv, radii) : std::nullopt;
  // Items are (head, position), head-major, so every thread (and every rank: a block of
  // whole heads when the ranks divide the heads) gets the same mix of short and long rows.
  const std::int64_t items = std::int64_t(config.n_heads) * tokens;
  const ItemRange mine = shards ? share_of(items, shards->rank(), shards->ranks()) : ItemRange{0, items};
  parallel_for(mine.end - mine.begin, threads, [&](std::int64_t begin, std::int64_t end) {
    begin += mine.begin, end += mine.begin;
    BallArith ball(arith);
    MpArray scratch(3, arith.precision());
    mpfr_ptr product = scratch[0], softmax_scratch = scratch[1];
    MpArray scratch_r = exact_radii(track ? 1 : 0);
    MpArray own_row(probs ? 0 : std::size_t(tokens), arith.precision());           // [tokens] when probs are not kept
    MpArray own_row_r = exact_radii(probs || !track ? 0 : std::size_t(tokens));   // [tokens] its radii
    for (std::int64_t item = begin; item < end; ++item) {
      const int h = int(item / tokens), t = int(item % tokens);
      const int kv_h = config.kv_head_of(h);
      mpfr_ptr row = probs ? (*probs)[std::size_t(item) * tokens] : own_row.data();  // [tokens]
      mpfr_ptr row_r = !track ? nullptr : probs ? (*radii.probs)[std::size_t(item) * tokens] : own_row_r.data();
      const std::size_t q_at = std::size_t(t) * q_dim + std::size_t(h) * hd;
      mpfr_srcptr query = q[q_at];
      const int k_end = quant::cold_end(t, kv.hot_window, kv.k_group);
      const int v_end = quant::cold_end(t, kv.hot_window, 0);
      const int first = mask.window > 0 ? std::max(0, t - mask.window + 1) : 0;  // the keys read: [first, last]
      const int last = mask.causal ? t : tokens - 1;
      const int sink_end = std::min(mask.sinks, first);  // sinks before the window: keys [0, sink_end)
      if (sink_end > 0 && track) throw std::logic_error("causal_attention: attention sinks are not enclosed");
      for (int j = sink_end > 0 ? 0 : first; j <= last; ++j) {
        if (j == sink_end && j < first) j = first;  // past the sinks, on to the window
        const bool cold = j < k_end;
        const MpArray& k = cold ? kv.k_cold : kv.k_hot;
        const std::size_t k_at = std::size_t(j) * kv_dim + std::size_t(kv_h) * hd;
        const int ternary = arith.dot(row + j, query, 1, k[k_at], 1, hd, product);
        if (track) {
          RadiusSum sum;
          add_product_rule(sum, bounds->q_mag, opt(bounds->q_rad), q_at, 1, cold ? bounds->k_cold_mag : bounds->k_hot_mag,
                           opt(bounds->k_rad), k_at, 1, hd);
          set_dot_radius(row_r + j, sum, row + j, ternary, ball.enclosure(), scratch_r[0]);
        }
        finish_score(ball, {row + j, track ? row_r + j : nullptr});
      }
      if (sink_end == 0) {
        softmax_in_place(row + first, last - first + 1, ball, softmax_scratch, track ? row_r + first : nullptr);
      } else {  // the sinks and the window as one row: gathered, normalized, put back (exact copies)
        const int n = sink_end + last - first + 1;
        MpArray kept(std::size_t(n), arith.precision());
        for (int i = 0; i < n; ++i) mpfr_set(kept[i], row + (i < sink_end ? i : first + i - sink_end), MPFR_RNDN);
        softmax_in_place(kept.data(), n, ball, softmax_scratch);
        for (int i = 0; i < n; ++i) mpfr_set(row + (i < sink_end ? i : first + i - sink_end), kept[i], MPFR_RNDN);
      }
      for (int j = 0; j < tokens; ++j) {
        if (j < sink_end || (j >= first && j <= last)) continue;
        mpfr_set_zero(row + j, 1);  // masked: exactly zero
        if (row_r) mpfr_set_zero(row_r + j, 1);
      }
      std::optional<ScaledBounds> p_mag, p_rad;  // the row's probabilities, for the value sums' radii
      if (track) {
        p_mag = scaled_magnitudes(row, std::size_t(last) + 1);
        p_rad = scaled_magnitudes(row_r, std::size_t(last) + 1);
      }
      // Values [first, v_end) cold, then [v_end, last] hot, as one sum.
      const int cold_n = std::max(0, std::min(v_end, last + 1) - first);
      const int hot_first = std::max(v_end, first), hot_n = std::max(0, last + 1 - hot_first);
      // The sinks' values before them: [0, min(sink_end, v_end)) cold, [v_end, sink_end) hot.
      const int sink_cold_n = std::min(sink_end, v_end), sink_hot_n = std::max(0, sink_end - v_end);
      for (int d = 0; d < vd; ++d) {
        const std::size_t o_at = std::size_t(t) * out_dim + std::size_t(h) * vd + d;
        mpfr_ptr o = out[o_at];
        const std::size_t column = std::size_t(kv_h) * vd + d;
        // A run of no terms never reads its first element (v_hot may have no row hot_first).
        mpfr_srcptr v_cold = cold_n ? kv.v_cold[std::size_t(first) * v_dim + column] : nullptr;
        mpfr_srcptr v_hot = hot_n ? kv.v_hot[std::size_t(hot_first) * v_dim + column] : nullptr;
        mpfr_srcptr sink_cold = sink_cold_n ? kv.v_cold[column] : nullptr;
        mpfr_srcptr sink_hot = sink_hot_n ? kv.v_hot[std::size_t(v_end) * v_dim + column] : nullptr;
        const int ternary = arith.dot(o,
                                      {{row, 1, sink_cold, v_dim, sink_cold_n},
                                       {row + v_end, 1, sink_hot, v_dim, sink_hot_n},
                                       {row + first, 1, v_cold, v_dim, cold_n},
                                       {row + hot_first, 1, v_hot, v_dim, hot_n}},
                                      product);
        if (track) {
          RadiusSum sum;
          if (cold_n)
            add_product_rule(sum, *p_mag, &*p_rad, std::size_t(first), 1, bounds->v_cold_mag, opt(bounds->v_rad),
                             std::size_t(first) * v_dim + column, v_dim, cold_n);
          if (hot_n)
            add_product_rule(sum, *p_mag, &*p_rad, std::size_t(hot_first), 1, bounds->v_hot_mag, opt(bounds->v_rad),
                             std::size_t(hot_first) * v_dim + column, v_dim, hot_n);
          set_dot_radius((*radii.out)[o_at], sum, o, ternary, ball.enclosure(), scratch_r[0]);
        }
      }
    }
  });
  if (!shards) return;
  auto block = [&](int rank) { return share_of(items, rank, shards->ranks()); };
  auto probs_runs = [&](int rank) {
    const ItemRange r = block(rank);  // item i owns probs row i: [tokens] values
    return std::vector<ElementRun>{{std::size_t(r.begin) * tokens, std::size_t(r.end - r.begin) * tokens}};
  };
  auto out_runs = [&](int rank) {
    const ItemRange r = block(rank);
    std::vector<ElementRun> runs;  // [items] item (h, t) owns out[t, h, :]
    for (std::int64_t item = r.begin; item < r.end; ++item)
      runs.push_back({std::size_t(item % tokens) * out_dim + std::size_t(item / tokens) * vd, std::size_t(vd)});
    return runs;
  };
  if (probs) shards->exchange(*probs, probs_runs);
  shards->exchange(out, out_runs);
  if (track) {
    if (probs) shards->exchange(*radii.probs, probs_runs);
    shards->exchange(*radii.out, out_runs);
  }
}

}  // namespace kvfid::ref
