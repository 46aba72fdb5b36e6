#include "reference/mp/op_forward.h"

#include <algorithm>

#include "reference/calibration/kv_policy_fit.h"
#include "reference/mp/attention.h"
#include "reference/mp/certify.h"
#include "reference/mp/enclosure.h"
#include "reference/mp/golden_forward.h"
#include "reference/mp/kv_store.h"
#include "reference/mp/mp_weights.h"
#include "reference/mp/projection.h"
#include "reference/mp/rms_norm.h"
#include "reference/mp/rope.h"
#include "reference/mp/softmax.h"
#include "reference/mp/swiglu.h"

namespace kvfid::ref {

namespace {

// An op's precision floor: inputs are float64 values, held exactly from 53 bits on.
constexpr int kMinOpPrecisionBits = 64;

// `t`'s values as MPFR numbers: exact at max(53, p) bits, or each rounded into the
// arithmetic's format (the baseline's inputs).
MpArray load(const OpTensor& t, const MpArith& arith, bool round_into_format) {
  MpArray a(t.values.size(), round_into_format ? arith.precision() : weight_precision_for(arith.precision()));
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (round_into_format)
      arith.set_d(a[i], t.values[i]);
    else
      mpfr_set_d(a[i], t.values[i], MPFR_RNDN);  // exact
  }
  return a;
}

struct Evaluated {
  MpArray values, radii;  // radii empty unless enclosed
};

// The op under `arith`; with `enclose` (exact arithmetic) every value's radius too.
Evaluated evaluate(const OpCase& op, const MpArith& arith, bool enclose, int threads) {
  ExponentRangeScope range;
  const bool baseline = arith.format().has_value();
  const mpfr_prec_t p = arith.precision();
  std::size_t n_out = 1;  // validated: the product fits
  for (std::int64_t d : op_output_shape(op)) n_out *= std::size_t(d);
  Evaluated e{MpArray(n_out, p), exact_radii(enclose ? n_out : 0)};
  MpArray* const out_r = enclose ? &e.radii : nullptr;
  const OpParams& params = op.params;
  switch (op.kind) {
    case OpKind::rmsnorm: {
      const OpTensor& x = op.inputs.at("x");
      const int dim = int(x.shape.back());
      const MpArray xs = load(x, arith, baseline), weight = load(op.inputs.at("weight"), arith, false);
      const MpArray eps = mp_constant(params.eps);
      rms_norm(e.values, xs, weight, eps[0], int(x.values.size() / std::size_t(dim)), arith, threads, nullptr, out_r);
      break;
    }
    case OpKind::rope: {
      const OpTensor& x = op.inputs.at("x");
      const int tokens = int(x.shape[0]), heads = int(x.shape[1]), head_dim = int(x.shape[2]);
      e.values = load(x, arith, true);  // rotated in place, so at the arithmetic's precision (exact from 53 bits)
      const MpArray theta = mp_constant(params.theta);
      const RopeTable table = make_rope_table(tokens, head_dim, theta[0], RopeScaling{}, arith, enclose, params.offset);
      apply_rope(e.values, table, tokens, heads, params.pairing, arith, threads, out_r);
      break;
    }
    case OpKind::softmax: {
      const OpTensor& x = op.inputs.at("x");
      const int n = int(x.shape.back());
      e.values = load(x, arith, true);
      BallArith ball(arith);
      MpArray scratch(2, p);
      for (std::size_t row = 0; row < e.values.size(); row += std::size_t(n))
        softmax_in_place(e.values[row], n, ball, scratch[0], enclose ? e.radii[row] : nullptr);
      break;
    }
    case OpKind::swiglu: {
      e.values = load(op.inputs.at("gate"), arith, true);
      const MpArray up = load(op.inputs.at("up"), arith, true);
      swiglu_in_place(e.values, up, arith, threads, out_r);
      break;
    }
    case OpKind::matmul: {
      const OpTensor& x = op.inputs.at("x");
      const OpTensor& w = op.inputs.at("w");
      Matrix m(int(w.shape[0]), int(w.shape[1]));
      for (int r = 0; r < m.rows; ++r)
        for (int c = 0; c < m.cols; ++c) m.element(r, c) = w.values[std::size_t(r) * std::size_t(m.cols) + std::size_t(c)];
      const Matrix stored = params.weights ? stored_matrix(m, *params.weights) : m;
      const MpArray xs = load(x, arith, baseline);
      const auto bias_it = op.inputs.find("bias");
      const MpArray bias = bias_it == op.inputs.end() ? MpArray() : load(bias_it->second, arith, false);
      project(e.values, MpMatrixRef{stored, weight_precision_for(p)}, xs, bias, int(x.shape[0]), arith, threads, nullptr,
              nullptr, out_r);
      break;
    }
    case OpKind::attention: {
      const ModelConfig c = attention_config(op);
      const int tokens = int(op.inputs.at("q").shape[0]);
      const MpArray q = load(op.inputs.at("q"), arith, true), k = load(op.inputs.at("k"), arith, true),
                    v = load(op.inputs.at("v"), arith, true);
      const AttentionRadii radii{nullptr, nullptr, out_r};
      const AttentionMask mask{params.causal, params.window};
      if (params.kv) {
        const quant::KvPolicy policy = quant::resolve_kv_policy(*params.kv, {}, c);
        const MpKvStore store = store_kv(k, v, policy, 0, tokens, c);
        causal_attention(nullptr, e.values, q, store.view(), tokens, c, arith, threads, nullptr, radii, mask);
      } else {
        causal_attention(nullptr, e.values, q, AttentionKv{k, k, v, v}, tokens, c, arith, threads, nullptr, radii, mask);
      }
      break;
    }
  }
  return e;
}

}  // namespace

OpGolden certify_op(const OpCase& op, int precision_bits, int max_precision_bits, int threads) {
  validate_op_case(op);
  const std::string name = to_string(op.kind);
  for (int precision = std::max(precision_bits, kMinOpPrecisionBits), attempt = 1;; precision *= 2, ++attempt) {
    std::optional<UncertifiedValue> failure;
    CertificationTally tally;
    Evaluated e;
    try {
      e = evaluate(op, MpArith::exact(precision), true, threads);
      failure = certify_balls(name, e.values, e.radii, 0, tally);
    } catch (const UndecidedRounding& u) {
      failure = UncertifiedValue{u.tap(), u.index(), std::nullopt};
    }
    if (!failure) {
      OpGolden g{TapTensor{name, op_output_shape(op), to_doubles(e.values)}, {}};
      g.certification = certification_record(CertificationMethod::enclosure, precision, attempt, tally, 0);
      return g;
    }
    if (2 * precision > max_precision_bits)
      throw CertificationError(name + " not certified: value " + std::to_string(failure->index) + " has " +
                               describe_error_bits(failure->error_bits) + " (proven) at " + std::to_string(precision) +
                               " bits, and doubling the precision would exceed " + std::to_string(max_precision_bits));
  }
}

TapTensor emulate_op(const OpCase& op, FloatFormat arithmetic, int threads) {
  validate_op_case(op);
  const Evaluated e = evaluate(op, MpArith::ieee(arithmetic), false, threads);
  return TapTensor{to_string(op.kind), op_output_shape(op), to_doubles(e.values)};
}

}  // namespace kvfid::ref
