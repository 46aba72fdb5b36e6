#include "reference/mp/attention.h"

#include "reference/formats/quant/kv_policy.h"
#include "reference/mp/mp_parallel.h"
#include "reference/mp/mp_weights.h"
#include "reference/mp/shards.h"
#include "reference/mp/softmax.h"

namespace kvfid::ref {

void causal_attention(MpArray* probs, MpArray& out, const MpArray& q, const AttentionKv& kv, int tokens,
                      const ModelConfig& config, const MpArith& arith, int threads, Shards* shards) {
  const int hd = config.head_dim, q_dim = config.q_dim(), kv_dim = config.kv_dim();
  const MpArray head_dim = mp_constant(hd);
  MpArray scale(1, arith.precision());  // sqrt(head_dim), rounded once
  arith.sqrt(scale[0], head_dim[0]);
  // Items are (head, position), head-major, so every thread (and every rank: a block of
  // whole heads when the ranks divide the heads) gets the same mix of short and long rows.
  const std::int64_t items = std::int64_t(config.n_heads) * tokens;
  const ItemRange mine = shards ? share_of(items, shards->rank(), shards->ranks()) : ItemRange{0, items};
  parallel_for(mine.end - mine.begin, threads, [&](std::int64_t begin, std::int64_t end) {
    begin += mine.begin, end += mine.begin;
    MpArray scratch(3, arith.precision());
    mpfr_ptr product = scratch[0], softmax_scratch = scratch[1];
    MpArray own_row(probs ? 0 : std::size_t(tokens), arith.precision());  // [tokens] when probs are not kept
    for (std::int64_t item = begin; item < end; ++item) {
      const int h = int(item / tokens), t = int(item % tokens);
      const int kv_h = config.kv_head_of(h);
      mpfr_ptr row = probs ? (*probs)[std::size_t(item) * tokens] : own_row.data();  // [tokens]
      mpfr_srcptr query = q[std::size_t(t) * q_dim + std::size_t(h) * hd];
      const int k_end = quant::cold_end(t, kv.hot_window, kv.k_group);
      const int v_end = quant::cold_end(t, kv.hot_window, 0);
      for (int j = 0; j <= t; ++j) {
        const MpArray& k = j < k_end ? kv.k_cold : kv.k_hot;
        arith.dot(row + j, query, 1, k[std::size_t(j) * kv_dim + std::size_t(kv_h) * hd], 1, hd, product);
        arith.div(row + j, row + j, scale[0]);
      }
      softmax_in_place(row, t + 1, arith, softmax_scratch);
      for (int j = t + 1; j < tokens; ++j) mpfr_set_zero(row + j, 1);
      // Values [0, v_end) cold, then [v_end, t] hot, as one sum.
      for (int d = 0; d < hd; ++d) {
        mpfr_ptr o = out[std::size_t(t) * q_dim + std::size_t(h) * hd + d];
        const std::size_t column = std::size_t(kv_h) * hd + d;
        const bool hot = v_end <= t;  // else no hot run (and v_hot may have no row v_end)
        mpfr_srcptr v_hot = hot ? kv.v_hot[std::size_t(v_end) * kv_dim + column] : nullptr;
        arith.dot(o,
                  {{row, 1, kv.v_cold[column], kv_dim, v_end},
                   {row + v_end, 1, v_hot, kv_dim, hot ? t + 1 - v_end : 0}},
                  product);
      }
    }
  });
  if (!shards) return;
  auto block = [&](int rank) { return share_of(items, rank, shards->ranks()); };
  if (probs)
    shards->exchange(*probs, [&](int rank) {
      const ItemRange r = block(rank);  // item i owns probs row i: [tokens] values
      return std::vector<ElementRun>{{std::size_t(r.begin) * tokens, std::size_t(r.end - r.begin) * tokens}};
    });
  shards->exchange(out, [&](int rank) {
    const ItemRange r = block(rank);
    std::vector<ElementRun> runs;  // [items] item (h, t) owns out[t, h, :]
    for (std::int64_t item = r.begin; item < r.end; ++item)
      runs.push_back({std::size_t(item % tokens) * q_dim + std::size_t(item / tokens) * hd, std::size_t(hd)});
    return runs;
  });
}

}  // namespace kvfid::ref
