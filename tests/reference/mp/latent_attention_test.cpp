// Latent attention (reference/mp/latent_attention.h): the keys and values it
// reconstructs are the latent's, head by head, as the absorbed form engines decode with
// reads them: q.k = (W_UK^T q_nope).latent + q_pe.k_pe and sum_j p_j v_j =
// W_UV (sum_j p_j latent_j), checked at 512 bits on tiny-mla (a low-rank query) and its
// full-rank form (DeepSeek-V2-Lite's). A wrong head split, a RoPE on the wrong part or a
// key part not shared by the heads breaks one of the identities by far more than the
// roundings at 512 bits.
#include "reference/mp/latent_attention.h"

#include <gtest/gtest.h>

#include "reference/calibration/kv_policy_fit.h"
#include "reference/formats/minifloat.h"
#include "reference/mp/mp_forward.h"
#include "reference/util/input_error.h"
#include "reference/mp/rms_norm.h"
#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/common/test_env.h"
#include "tests/reference/mp/mp_test_util.h"

namespace kvfid::ref {
namespace {

constexpr mpfr_prec_t kBits = 512;
// Both sides of an identity agree to the roundings of a few hundred operations at
// kBits: far below 2^-400 of the values' scale (O(1) on tiny-mla).
constexpr long kAgreementExp = -400;

class LatentQkvAt512 {
 public:
  explicit LatentQkvAt512(const ModelConfig& config)
      : model_(make_synthetic_model(config, test::test_seed())), weights_(to_mp_weights(model_, kBits)),
        arith_(MpArith::exact(kBits)) {}

  // Layer 0 over `tokens`: its normed input is the embedding rows' RMSNorm.
  LatentQkv run(const std::vector<int>& tokens) const {
    const ModelConfig& c = model_.config;
    const int T = int(tokens.size());
    MpArray x(std::size_t(T) * c.dim, kBits), normed(x.size(), kBits);
    std::vector<double> row(std::size_t(c.dim));
    for (int t = 0; t < T; ++t) {
      model_.embedding.decode_row(tokens[std::size_t(t)], row.data());
      for (int i = 0; i < c.dim; ++i) mpfr_set_d(x[std::size_t(t) * c.dim + i], row[std::size_t(i)], MPFR_RNDN);
    }
    const MpArray eps = mp_constant(c.rms_norm_eps), theta = mp_constant(c.rope_theta);
    rms_norm(normed, x, weights_.layers[0].attn_norm, eps[0], T, arith_, 1);
    const RopeTable rope = make_rope_table(T, c.rope_head_dim(), theta[0], c.rope_scaling, arith_);
    return latent_qkv(normed, nullptr, weights_, weights_.layers[0], model_.layers[0], rope, eps[0], T, c, arith_, 1,
                      nullptr, false);
  }
  const Model& model() const { return model_; }

 private:
  Model model_;
  MpWeights weights_;
  MpArith arith_;
};

// |a - b| <= 2^kAgreementExp.
void expect_agree(mpfr_srcptr a, mpfr_srcptr b, const std::string& what) {
  MpArray d(1, kBits);
  mpfr_sub(d[0], a, b, MPFR_RNDN);
  EXPECT_TRUE(mpfr_zero_p(d[0]) || mpfr_get_exp(d[0]) <= kAgreementExp)
      << what << ": differ by 2^" << mpfr_get_exp(d[0]) << " (" << mpfr_get_d(a, MPFR_RNDN) << " vs "
      << mpfr_get_d(b, MPFR_RNDN) << ")";
}

void check_absorbed_form(const ModelConfig& config) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  const LatentQkvAt512 f(config);
  const std::vector<int> tokens = {3, 17, 0, 31, 17, 9};
  const LatentQkv l = f.run(tokens);
  const ModelConfig& c = config;
  const int T = int(tokens.size()), H = c.n_heads, hd = c.head_dim, nope = c.nope_dim(), vd = c.v_head_dim();
  const int kvl = c.mla.kv_lora_rank, rd = c.mla.rope_dim, lw = kvl + rd, kv_b = nope + vd;
  const Matrix& wkv_b = f.model().layers[0].wkv_b;  // [H (nope + vd), kvl]
  std::vector<double> w(static_cast<std::size_t>(kvl));  // one row of wkv_b
  MpArray acc(2, kBits), absorbed(std::size_t(kvl), kBits), p = test::random_mp_array(std::size_t(T), kBits, 7),
                         mix(std::size_t(kvl), kBits);
  for (int h = 0; h < H; ++h) {
    // The absorbed query W_UK^T q_nope of every token, then its scores against every key.
    for (int t = 0; t < T; ++t) {
      for (int cc = 0; cc < kvl; ++cc) mpfr_set_zero(absorbed[cc], 1);
      for (int i = 0; i < nope; ++i) {
        wkv_b.decode_row(h * kv_b + i, w.data());
        for (int cc = 0; cc < kvl; ++cc) {
          mpfr_set_d(acc[1], w[std::size_t(cc)], MPFR_RNDN);
          mpfr_fma(absorbed[cc], acc[1], l.q[(std::size_t(t) * H + h) * hd + i], absorbed[cc], MPFR_RNDN);
        }
      }
      for (int j = 0; j < T; ++j) {
        mpfr_set_zero(acc[0], 1);
        for (int d = 0; d < hd; ++d)
          mpfr_fma(acc[0], l.q[(std::size_t(t) * H + h) * hd + d], l.k[(std::size_t(j) * H + h) * hd + d], acc[0], MPFR_RNDN);
        mpfr_set_zero(acc[1], 1);
        for (int cc = 0; cc < kvl; ++cc) mpfr_fma(acc[1], absorbed[cc], l.latent[std::size_t(j) * lw + cc], acc[1], MPFR_RNDN);
        for (int r = 0; r < rd; ++r)
          mpfr_fma(acc[1], l.q[(std::size_t(t) * H + h) * hd + nope + r], l.latent[std::size_t(j) * lw + kvl + r], acc[1],
                   MPFR_RNDN);
        expect_agree(acc[0], acc[1], "score head " + std::to_string(h) + " (" + std::to_string(t) + ", " + std::to_string(j) + ")");
      }
    }
    // Values: sum_j p_j v_j against W_UV (sum_j p_j latent_j), for weights p of any sign.
    for (int cc = 0; cc < kvl; ++cc) {
      mpfr_set_zero(mix[cc], 1);
      for (int j = 0; j < T; ++j) mpfr_fma(mix[cc], p[j], l.latent[std::size_t(j) * lw + cc], mix[cc], MPFR_RNDN);
    }
    for (int d = 0; d < vd; ++d) {
      mpfr_set_zero(acc[0], 1);
      for (int j = 0; j < T; ++j) mpfr_fma(acc[0], p[j], l.v[(std::size_t(j) * H + h) * vd + d], acc[0], MPFR_RNDN);
      wkv_b.decode_row(h * kv_b + nope + d, w.data());
      mpfr_set_zero(acc[1], 1);
      for (int cc = 0; cc < kvl; ++cc) {
        MpArray wc(1, kBits);
        mpfr_set_d(wc[0], w[std::size_t(cc)], MPFR_RNDN);
        mpfr_fma(acc[1], wc[0], mix[cc], acc[1], MPFR_RNDN);
      }
      expect_agree(acc[0], acc[1], "value head " + std::to_string(h) + " dim " + std::to_string(d));
    }
  }
  // Every head's key ends with the one k_pe the cache holds.
  for (int j = 0; j < T; ++j)
    for (int h = 0; h < H; ++h)
      for (int r = 0; r < rd; ++r)
        ASSERT_TRUE(mpfr_equal_p(l.k[(std::size_t(j) * H + h) * hd + nope + r], l.latent[std::size_t(j) * lw + kvl + r]));
}

TEST(MpLatentAttention, ReconstructedKeysAndValuesAreTheAbsorbedForms) {
  check_absorbed_form(synthetic_shape("tiny-mla"));
  ModelConfig full_rank = synthetic_shape("tiny-mla");
  full_rank.mla.q_lora_rank = 0;
  check_absorbed_form(full_rank);
}

// RoPE turns the rope parts only: a key's nope part and the latent do not depend on its
// position, so the same token at two positions has the same nope keys and values and a
// k_pe of the same norm (a rotation), different unless the angle is zero.
TEST(MpLatentAttention, RopeTurnsOnlyTheDecoupledPart) {
  ExponentRangeScope range;
  const ModelConfig c = synthetic_shape("tiny-mla");
  const LatentQkvAt512 f(c);
  const LatentQkv l = f.run({5, 9, 5});  // token 5 at positions 0 and 2
  const int H = c.n_heads, hd = c.head_dim, nope = c.nope_dim(), lw = c.mla.kv_lora_rank + c.mla.rope_dim;
  auto at = [&](int t, int h, int d) { return (std::size_t(t) * H + h) * hd + d; };
  for (int h = 0; h < H; ++h)
    for (int d = 0; d < nope; ++d) ASSERT_TRUE(mpfr_equal_p(l.k[at(0, h, d)], l.k[at(2, h, d)]));
  for (std::size_t i = 0; i < l.v.size() / 3; ++i) ASSERT_TRUE(mpfr_equal_p(l.v[i], l.v[2 * l.v.size() / 3 + i]));
  for (int cc = 0; cc < c.mla.kv_lora_rank; ++cc)
    ASSERT_TRUE(mpfr_equal_p(l.latent[std::size_t(cc)], l.latent[std::size_t(2 * lw + cc)]));
  MpArray n0(1, kBits), n2(1, kBits);
  bool moved = false;
  for (int r = 0; r < c.mla.rope_dim; ++r) {
    mpfr_fma(n0[0], l.k[at(0, 0, nope + r)], l.k[at(0, 0, nope + r)], n0[0], MPFR_RNDN);
    mpfr_fma(n2[0], l.k[at(2, 0, nope + r)], l.k[at(2, 0, nope + r)], n2[0], MPFR_RNDN);
    moved = moved || !mpfr_equal_p(l.k[at(0, 0, nope + r)], l.k[at(2, 0, nope + r)]);
  }
  expect_agree(n0[0], n2[0], "|k_pe| at positions 0 and 2");
  EXPECT_TRUE(moved) << "k_pe did not turn between positions 0 and 2";
}

// The whole forward of a latent model, as the golden runs it: the same bits on one
// thread and on three, and with the taps' shapes of its widths (values of 16 under keys
// of 24).
TEST(MpLatentAttention, ForwardIsThreadCountInvariantWithLatentShapes) {
  const Model m = make_synthetic_model(synthetic_shape("tiny-mla"), test::test_seed());
  const std::vector<int> tokens = {1, 4, 9, 16, 25, 36, 49};
  MpForwardOptions o;
  o.arith = MpArith::exact(128);
  const MpWeights w = to_mp_weights(m, 128);
  const std::vector<MpTap> one = mp_forward(m, w, tokens, o);
  o.threads = 3;
  const std::vector<MpTap> three = mp_forward(m, w, tokens, o);
  ASSERT_EQ(one.size(), three.size());
  for (std::size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(test::mp_identical(one[i].values, three[i].values)) << one[i].name;
  EXPECT_EQ(mp_tap(one, "layers.1.v").shape, (std::vector<std::int64_t>{7, 4, 16}));
  EXPECT_EQ(mp_tap(one, "layers.1.k").shape, (std::vector<std::int64_t>{7, 4, 24}));
  EXPECT_EQ(mp_tap(one, "layers.1.attn.out").shape, (std::vector<std::int64_t>{7, 64}));
}

// Under a KV policy the cache rows are stored in its format and the keys and values
// reconstructed from them: every key's k_pe is an FP16 value under f16 (and the keys'
// nope parts, wkv_b of stored rows, are not). What a latent row cannot hold is refused.
TEST(MpLatentAttention, AKvPolicyStoresTheLatentRows) {
  const Model m = make_synthetic_model(synthetic_shape("tiny-mla"), test::test_seed());
  const ModelConfig& c = m.config;
  const std::vector<int> tokens = {1, 4, 9, 16};
  MpForwardOptions o;
  o.arith = MpArith::exact(128);
  o.taps = TapSelection::all;
  const MpWeights w = to_mp_weights(m, 128);
  o.kv = quant::resolve_kv_policy(quant::parse_kv_policy_spec("f16", "test"), {}, c);
  const std::vector<MpTap> taps = mp_forward(m, w, tokens, o);
  const MpTap& k = mp_tap(taps, "layers.0.k");
  int rope_fp16 = 0, nope_fp16 = 0;
  for (std::size_t i = 0; i < k.values.size(); ++i) {
    const double x = mpfr_get_d(k.values[i], MPFR_RNDN);
    const bool fp16 = mpfr_cmp_d(k.values[i], x) == 0 && minifloat_round(x, kFp16) == x;
    (int(i) % c.head_dim >= c.nope_dim() ? rope_fp16 : nope_fp16) += fp16;
  }
  EXPECT_EQ(rope_fp16, int(tokens.size()) * c.n_heads * c.mla.rope_dim);
  EXPECT_LT(nope_fp16, int(tokens.size()) * c.n_heads * c.nope_dim() / 4);
  for (const char* bad : {"f16+hot=2", "k=f16+v=bf16", "f16+rot=orthogonal:3", "f16+evict=h2o:2"}) {
    try {  // the eviction is refused as the policy meets the model, the rest as the rows are stored
      o.kv = quant::resolve_kv_policy(quant::parse_kv_policy_spec(bad, "test"), {}, c);
      mp_forward(m, w, tokens, o);
      ADD_FAILURE() << bad << " accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("latent (MLA) cache"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace kvfid::ref
