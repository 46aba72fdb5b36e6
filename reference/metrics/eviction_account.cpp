#include "reference/metrics/eviction_account.h"

#include <algorithm>
#include <regex>
#include <stdexcept>

#include "reference/mp/mp_array.h"
#include "reference/util/input_error.h"

namespace kvfid::ref {

StreamingEviction parse_streaming_eviction(const std::string& spec, const std::string& source) {
  static const std::regex streaming(R"(streaming:(\d{1,9}),(\d{1,9}))");
  std::smatch m;
  if (std::regex_match(spec, m, streaming)) {
    const StreamingEviction e{std::stoi(m[1]), std::stoi(m[2])};
    if (e.window < 1) throw InputError(source, "a streaming window keeps at least 1 key (the query's own)");
    return e;
  }
  for (const char* other : {"h2o", "snapkv", "tova", "knorm"})
    if (spec.rfind(std::string(other) + ":", 0) == 0 || spec == other)
      throw InputError(source, std::string("eviction policy '") + other + "' is not implemented (streaming:SINKS,WINDOW is)");
  throw InputError(source, "'" + spec.substr(0, 40) + "' is not an eviction policy (expected streaming:SINKS,WINDOW)");
}

std::vector<EvictionStep> eviction_account(const std::vector<MpTap>& taps, const ModelConfig& c, int T,
                                           const StreamingEviction& policy, bool* certified) {
  if (certified) *certified = true;
  const int hd = c.head_dim;
  std::vector<EvictionStep> steps;
  for (int l = 0; l < c.n_layers; ++l) {
    const MpTap& probs = mp_tap(taps, tap_layer_name(l, "attn.probs"));  // [n_heads, T, T]
    const MpTap& v = mp_tap(taps, tap_layer_name(l, "v"));               // [T, n_kv_heads, head_dim]
    const mpfr_prec_t q = 2 * probs.values.precision() + 64;
    // [6 + 2 head_dim]: m, kept sum, V^2, a scratch term, the norm, the slack; dropped and
    // kept sums per dimension.
    MpArray s(6 + 2 * std::size_t(hd), q);
    mpfr_ptr m = s[0], kept = s[1], v2 = s[2], sq = s[3], norm = s[4], slack = s[5];
    mpfr_ptr dropped_v = s[6], kept_v = s[6 + hd];
    for (int h = 0; h < c.n_heads; ++h)
      for (int t = 0; t < T; ++t) {
        const std::size_t row = (std::size_t(h) * T + t) * T;
        for (mpfr_ptr x : {m, kept, v2}) mpfr_set_zero(x, 1);
        for (int d = 0; d < hd; ++d) mpfr_set_zero(dropped_v + d, 1), mpfr_set_zero(kept_v + d, 1);
        for (int j = 0; j <= t; ++j) {
          mpfr_srcptr p = probs.values[row + j];
          const std::size_t at = (std::size_t(j) * c.n_kv_heads + c.kv_head_of(h)) * hd;
          const bool keep = policy.keeps(j, t);
          mpfr_add(keep ? kept : m, keep ? kept : m, p, MPFR_RNDN);
          mpfr_set_zero(norm, 1);
          for (int d = 0; d < hd; ++d) {
            mpfr_mul(sq, p, v.values[at + d], MPFR_RNDN);
            mpfr_add(keep ? kept_v + d : dropped_v + d, keep ? kept_v + d : dropped_v + d, sq, MPFR_RNDN);
            mpfr_sqr(sq, v.values[at + d], MPFR_RNDN);
            mpfr_add(norm, norm, sq, MPFR_RNDN);
          }
          if (mpfr_greater_p(norm, v2)) mpfr_set(v2, norm, MPFR_RNDN);
        }
        // o - o' = dropped - (1 - kept) / kept * kept_v, per dimension; then its norm.
        EvictionStep step{l, h, t, mpfr_get_d(m, MPFR_RNDN), 0, 0};
        if (!mpfr_zero_p(m)) {
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
          // The rounded taps' own bound: (m + |1 - kept|) V, relaxed by 2^-(2P).
          mpfr_ui_sub(sq, 1, kept, MPFR_RNDN);
          mpfr_abs(sq, sq, MPFR_RNDN);
          mpfr_add(sq, sq, m, MPFR_RNDN);
          mpfr_mul(sq, sq, v2, MPFR_RNDN);
          mpfr_mul_2si(slack, sq, -2 * long(probs.values.precision()), MPFR_RNDN);
          mpfr_add(sq, sq, slack, MPFR_RNDN);
          if (certified && mpfr_greater_p(norm, sq)) *certified = false;
        }
        steps.push_back(step);
      }
  }
  return steps;
}

}  // namespace kvfid::ref
