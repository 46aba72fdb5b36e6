#include "reference/mp/evicting_attention.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>

#include "reference/formats/quant/kv_policy.h"
#include "reference/golden/taps.h"
#include "reference/mp/attention_bounds.h"
#include "reference/mp/attention_score.h"
#include "reference/mp/ball_arith.h"
#include "reference/mp/enclosure.h"
#include "reference/mp/mp_parallel.h"
#include "reference/mp/mp_weights.h"
#include "reference/mp/softmax.h"

namespace kvfid::ref {

RowAccount::RowAccount(int head_dim, mpfr_prec_t working) : hd_(head_dim), s_(6 + 3 * std::size_t(head_dim), working) {}

void RowAccount::account(EvictionStep& step, mpfr_srcptr p, int n, mpfr_srcptr v, std::ptrdiff_t v_stride,
                         const std::uint8_t* read, mpfr_prec_t input_bits, bool* certified, mpfr_srcptr o_actual,
                         double* deviation) {
  const int hd = hd_;
  // m, kept sum, V^2, a scratch term, the norm, the slack; dropped and kept sums per
  // dimension, o' per dimension.
  mpfr_ptr m = s_[0], kept = s_[1], v2 = s_[2], sq = s_[3], norm = s_[4], slack = s_[5];
  mpfr_ptr dropped_v = s_[6], kept_v = s_[6 + std::size_t(hd)], renorm = s_[6 + 2 * std::size_t(hd)];
  for (mpfr_ptr x : {m, kept, v2}) mpfr_set_zero(x, 1);
  for (int d = 0; d < hd; ++d) mpfr_set_zero(dropped_v + d, 1), mpfr_set_zero(kept_v + d, 1);
  for (int j = 0; j < n; ++j) {
    mpfr_srcptr pj = p + j;
    mpfr_srcptr vj = v + j * v_stride;
    const bool keep = read[j] != 0;
    mpfr_add(keep ? kept : m, keep ? kept : m, pj, MPFR_RNDN);
    mpfr_set_zero(norm, 1);
    for (int d = 0; d < hd; ++d) {
      mpfr_mul(sq, pj, vj + d, MPFR_RNDN);
      mpfr_add(keep ? kept_v + d : dropped_v + d, keep ? kept_v + d : dropped_v + d, sq, MPFR_RNDN);
      mpfr_sqr(sq, vj + d, MPFR_RNDN);
      mpfr_add(norm, norm, sq, MPFR_RNDN);
    }
    if (mpfr_greater_p(norm, v2)) mpfr_set(v2, norm, MPFR_RNDN);
  }
  step.mass = mpfr_get_d(m, MPFR_RNDN);
  step.observed = step.bound = 0;
  if (o_actual && deviation) {  // o' = kept_v / kept against the forward's output
    mpfr_set_zero(norm, 1);
    for (int d = 0; d < hd; ++d) {
      mpfr_div(renorm + d, kept_v + d, kept, MPFR_RNDN);
      mpfr_sub(sq, o_actual + d, renorm + d, MPFR_RNDN);
      mpfr_fma(norm, sq, sq, norm, MPFR_RNDN);
    }
    mpfr_sqrt(norm, norm, MPFR_RNDN);
    *deviation = std::max(*deviation, mpfr_get_d(norm, MPFR_RNDU));
  }
  if (mpfr_zero_p(m)) return;
  // o - o' = dropped - (1 - kept) / kept * kept_v, per dimension; then its norm.
  mpfr_ui_sub(sq, 1, kept, MPFR_RNDN);
  mpfr_div(sq, sq, kept, MPFR_RNDN);  // (1 - kept) / kept
  mpfr_set_zero(norm, 1);
  for (int d = 0; d < hd; ++d) {
    mpfr_fms(kept_v + d, sq, kept_v + d, dropped_v + d, MPFR_RNDN);  // (1-k)/k kept_v - dropped_v
    mpfr_fma(norm, kept_v + d, kept_v + d, norm, MPFR_RNDN);
  }
  mpfr_sqrt(norm, norm, MPFR_RNDN);
  mpfr_sqrt(v2, v2, MPFR_RNDN);  // V
  step.observed = mpfr_get_d(norm, MPFR_RNDN);
  mpfr_mul(sq, m, v2, MPFR_RNDN);
  mpfr_mul_2ui(sq, sq, 1, MPFR_RNDN);  // 2 m V
  step.bound = mpfr_get_d(sq, MPFR_RNDN);
  // The rounded probabilities' own bound: (m + |1 - kept|) V, relaxed by 2^-(2P).
  mpfr_ui_sub(sq, 1, kept, MPFR_RNDN);
  mpfr_abs(sq, sq, MPFR_RNDN);
  mpfr_add(sq, sq, m, MPFR_RNDN);
  mpfr_mul(sq, sq, v2, MPFR_RNDN);
  mpfr_mul_2si(slack, sq, -2 * long(input_bits), MPFR_RNDN);
  mpfr_add(sq, sq, slack, MPFR_RNDN);
  if (certified && mpfr_greater_p(norm, sq)) *certified = false;
}

void evicting_attention(MpArray* probs, MpArray& out, const MpArray& q, const AttentionKv& kv, int T,
                        const ModelConfig& c, const MpArith& arith, int threads, const EvictionPolicy& policy,
                        int layer, EvictionRecord* record, const AttentionRadii& radii) {
  const bool track = radii.out != nullptr;
  if (track && (kv.k_radii || kv.v_radii))
    throw std::logic_error("evicting_attention: enclosures need exact keys and values (a KV policy's stored forms)");
  if (track && probs && !radii.probs) throw std::logic_error("evicting_attention: kept probabilities need their radii");
  // Query t reads key j in cold form before cold_end, else hot (kv_policy.h); one store
  // (k_cold is k_hot) without a hot window.
  auto key = [&](int t, int j) -> const MpArray& {
    return j < quant::cold_end(t, kv.hot_window, kv.k_group) ? kv.k_cold : kv.k_hot;
  };
  auto value = [&](int t, int j) -> const MpArray& {
    return j < quant::cold_end(t, kv.hot_window, 0) ? kv.v_cold : kv.v_hot;
  };
  const int hd = c.head_dim, q_dim = c.q_dim(), kv_dim = c.kv_dim(), G = c.group(), n_kv = c.n_kv_heads;
  const mpfr_prec_t P = arith.precision();
  const ScoreFinish finish_score(c, arith, track);  // as attention.cpp's scores
  const std::optional<DotBounds> bounds = track ? std::optional<DotBounds>(std::in_place, q, kv, radii) : std::nullopt;
  const std::size_t TT = std::size_t(T) * std::size_t(T);
  std::vector<std::vector<std::uint8_t>> reads(record ? std::size_t(n_kv) : 0);  // [T, T] per KV head
  std::vector<std::vector<EvictionEvent>> events(static_cast<std::size_t>(n_kv));
  std::vector<std::vector<EvictionDecision>> decisions(static_cast<std::size_t>(n_kv));
  // Each KV head is its own cache: in parallel. Its steps are sequential; a step's query
  // heads take the threads the KV heads leave.
  const int inner = n_kv >= threads ? 1 : std::max(1, threads / n_kv);
  parallel_for(n_kv, std::min(threads, n_kv), [&](std::int64_t begin, std::int64_t end) {
    for (int kv_h = int(begin); kv_h < int(end); ++kv_h) {
      const std::unique_ptr<EvictionScorer> scorer =
          make_eviction_scorer(policy, T, layer, kv.k_cold.data(), kv_dim, kv_h, hd, P, track);
      std::uint8_t* read = nullptr;
      if (record) {
        reads[std::size_t(kv_h)].assign(TT, 0);
        read = reads[std::size_t(kv_h)].data();
      }
      std::vector<int> kept;  // past keys, ascending
      for (int t = 0; t < T; ++t) {
        std::vector<int> keys = kept;
        keys.push_back(t);
        const int n = int(keys.size());
        MpArray rows(std::size_t(G) * std::size_t(n), P);      // [G, n] scores, then probabilities
        MpArray rows_r = exact_radii(track ? rows.size() : 0);  // their radii under enclosures
        MpArray values(std::size_t(n) * std::size_t(hd), P);   // [n, head_dim] the values read
        for (int i = 0; i < n; ++i)
          for (int d = 0; d < hd; ++d)
            mpfr_set(values[std::size_t(i) * hd + d],
                     value(t, keys[i])[std::size_t(keys[i]) * kv_dim + std::size_t(kv_h) * hd + d],
                     MPFR_RNDN);  // exact: same precision
        const std::optional<ScaledBounds> values_mag =
            track ? std::optional<ScaledBounds>(scaled_magnitudes(values)) : std::nullopt;
        parallel_for(G, inner, [&](std::int64_t g_begin, std::int64_t g_end) {
          BallArith ball(arith);
          MpArray scratch(3, P);
          MpArray scratch_r = exact_radii(track ? 1 : 0);
          for (int g = int(g_begin); g < int(g_end); ++g) {
            const int h = kv_h * G + g;
            mpfr_ptr row = rows[std::size_t(g) * n];
            mpfr_ptr row_r = track ? rows_r[std::size_t(g) * n] : nullptr;
            const std::size_t q_at = std::size_t(t) * q_dim + std::size_t(h) * hd;
            for (int i = 0; i < n; ++i) {
              const std::size_t k_at = std::size_t(keys[i]) * kv_dim + std::size_t(kv_h) * hd;
              const MpArray& k = key(t, keys[i]);
              const int ternary = arith.dot(row + i, q[q_at], 1, k[k_at], 1, hd, scratch[0]);
              if (track) {  // the keys are exact: q's radii against |k|
                RadiusSum sum;
                add_product_rule(sum, bounds->q_mag, opt(bounds->q_rad), q_at, 1,
                                 &k == &kv.k_cold ? bounds->k_cold_mag : bounds->k_hot_mag, nullptr, k_at, 1, hd);
                set_dot_radius(row_r + i, sum, row + i, ternary, ball.enclosure(), scratch_r[0]);
              }
              finish_score(ball, {row + i, track ? row_r + i : nullptr});
            }
            softmax_in_place(row, n, ball, scratch[1], row_r);
            if (probs) {
              mpfr_ptr full = (*probs)[(std::size_t(h) * T + std::size_t(t)) * T];
              for (int i = 0; i < n; ++i) mpfr_set(full + keys[i], row + i, MPFR_RNDN);
              if (track) {
                mpfr_ptr full_r = (*radii.probs)[(std::size_t(h) * T + std::size_t(t)) * T];
                for (int i = 0; i < n; ++i) mpfr_set(full_r + keys[i], row_r + i, MPFR_RNDU);
              }
            }
            std::optional<ScaledBounds> p_mag, p_rad;  // the row's probabilities, for the value sums' radii
            if (track) {
              p_mag = scaled_magnitudes(row, std::size_t(n));
              p_rad = scaled_magnitudes(row_r, std::size_t(n));
            }
            for (int d = 0; d < hd; ++d) {
              mpfr_ptr o = out[q_at + std::size_t(d)];
              const int ternary = arith.dot(o, row, 1, values[std::size_t(d)], hd, n, scratch[0]);
              if (!track) continue;
              RadiusSum sum;  // the values are exact: the probabilities' radii against |v|
              add_product_rule(sum, *p_mag, &*p_rad, 0, 1, *values_mag, nullptr, std::size_t(d), hd, n);
              set_dot_radius((*radii.out)[q_at + std::size_t(d)], sum, o, ternary, ball.enclosure(), scratch_r[0]);
            }
          }
        });
        if (read)
          for (int j : keys) read[std::size_t(t) * T + std::size_t(j)] = 1;
        if (t + 1 == T) break;  // no query reads the cache after the last
        scorer->attended(t, keys, rows.data(), track ? rows_r.data() : nullptr, G);
        std::vector<int> gone = scorer->evict(t, keys);
        // A decision the balls leave open: the true scores may evict otherwise.
        if (!scorer->decided())
          throw UndecidedRounding(tap_layer_name(layer, "attn.probs"), (std::int64_t(kv_h) * G * T + t) * T);
        std::sort(gone.begin(), gone.end());
        if (std::isfinite(scorer->margin()))
          decisions[std::size_t(kv_h)].push_back({layer, kv_h, t, scorer->margin()});
        kept.clear();
        std::size_t at = 0;
        for (int j : keys) {
          if (at < gone.size() && gone[at] == j) {
            events[std::size_t(kv_h)].push_back({layer, kv_h, t, j});
            ++at;
          } else {
            kept.push_back(j);
          }
        }
        if (at != gone.size()) throw std::logic_error("evicting_attention: a policy evicted a key not in the cache");
      }
    }
  });
  if (!record) return;
  for (const auto& e : events) record->evicted.insert(record->evicted.end(), e.begin(), e.end());
  for (const auto& d : decisions) record->decisions.insert(record->decisions.end(), d.begin(), d.end());

  // The account, every (head, position) independent: in parallel.
  const mpfr_prec_t Q = 2 * P + 64;
  const MpArith exact_q = MpArith::exact(Q);
  const ScoreFinish finish_score_q(c, exact_q, false);
  const std::int64_t items = std::int64_t(c.n_heads) * T;
  std::vector<EvictionStep> steps(static_cast<std::size_t>(items));
  std::vector<std::uint8_t> certified(static_cast<std::size_t>(items), 1);
  std::vector<double> deviation(static_cast<std::size_t>(items), 0.0);
  parallel_for(items, threads, [&](std::int64_t begin, std::int64_t end) {
    MpArray row(std::size_t(T), Q), scratch(3, Q);
    BallArith ball_q(exact_q);
    // Under a hot window query t reads some values hot: [t + 1, head_dim] gathered per
    // query. Otherwise every query reads the cold plane, passed as it is.
    MpArray read_values(kv.hot_window > 0 ? std::size_t(T) * std::size_t(hd) : 0, P);
    RowAccount account(hd, Q);
    for (std::int64_t item = begin; item < end; ++item) {
      const int h = int(item / T), t = int(item % T), kv_h = c.kv_head_of(h);
      mpfr_srcptr query = q[std::size_t(t) * q_dim + std::size_t(h) * hd];
      // The full cache's attention is the model's own: keys first .. t, first past 0 on
      // a windowed layer (under the window policy, the only one such a model takes).
      const int first = c.first_key(layer, t), n = t - first + 1;
      for (int j = first; j <= t; ++j) {
        mpfr_ptr score = row[std::size_t(j - first)];
        exact_q.dot(score, query, 1, key(t, j)[std::size_t(j) * kv_dim + std::size_t(kv_h) * hd], 1, hd, scratch[0]);
        if (kv.hot_window > 0)
          for (int d = 0; d < hd; ++d)
            mpfr_set(read_values[std::size_t(j - first) * hd + d],
                     value(t, j)[std::size_t(j) * kv_dim + std::size_t(kv_h) * hd + d], MPFR_RNDN);  // exact: same precision
        finish_score_q(ball_q, {score, nullptr});
      }
      softmax_in_place(row.data(), n, exact_q, scratch[1]);
      const std::uint8_t* r = reads[std::size_t(kv_h)].data() + std::size_t(t) * T;
      EvictionStep& step = steps[std::size_t(item)];
      step.layer = layer, step.head = h, step.position = t;
      step.kept = int(std::count(r, r + t + 1, std::uint8_t(1)));
      bool ok = true;
      mpfr_srcptr v = kv.hot_window > 0 ? read_values.data()
                                        : kv.v_cold[std::size_t(first) * kv_dim + std::size_t(kv_h) * hd];
      account.account(step, row.data(), n, v, kv.hot_window > 0 ? hd : kv_dim, r + first, P, &ok,
                      out[std::size_t(t) * q_dim + std::size_t(h) * hd], &deviation[std::size_t(item)]);
      certified[std::size_t(item)] = ok;
    }
  });
  record->steps.insert(record->steps.end(), steps.begin(), steps.end());
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (!certified[i]) record->certified = false;
    record->output_deviation = std::max(record->output_deviation, deviation[i]);
  }
}

}  // namespace kvfid::ref
