#include "reference/mp/golden_forward.h"

#include <climits>
#include <cmath>

#include <gtest/gtest.h>

#include "reference/formats/quant/kv_policy.h"
#include "reference/mp/certify.h"
#include "reference/mp/memory_estimate.h"
#include "reference/mp/mp_forward.h"
#include "reference/mp/mp_weights.h"
#include "reference/synth/synthetic_model.h"
#include "tests/common/test_env.h"
#include "tests/reference/mp/mp_test_util.h"

namespace kvfid::ref {
namespace {

const std::vector<int> kTokens = {3, 17, 0, 31, 17, 9};

GoldenOptions fast_options() {
  GoldenOptions o;
  o.threads = 2;
  return o;
}

// fast_options() certified by enclosures (the default) from `precision_bits` (the CLI's 128 by default).
GoldenOptions enclosure_options(int precision_bits = 128) {
  GoldenOptions o = fast_options();
  EXPECT_EQ(o.method, CertificationMethod::enclosure);
  o.precision_bits = precision_bits;
  return o;
}

// What compute_golden refuses with (CertificationError's message); a test failure, and
// "", when it certifies.
std::string refusal(const Model& model, const std::vector<int>& tokens, const GoldenOptions& o) {
  try {
    compute_golden(model, tokens, o);
  } catch (const CertificationError& e) {
    return e.what();
  }
  ADD_FAILURE() << o.max_precision_bits << " bits certified float64 values";
  return "";
}

// fast_options() certified by two runs' agreement (the cross-check).
GoldenOptions agreement_options() {
  GoldenOptions o = fast_options();
  o.method = CertificationMethod::agreement;
  return o;
}

TEST(GoldenForward, OneLayerSyntheticModelIsCertified) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(test::tiny_config(), test::test_seed());
  const GoldenResult g = compute_golden(model, kTokens, fast_options());  // the default: a proof

  const std::vector<TapSpec> specs = tap_specs(model.config, int(kTokens.size()), TapSelection::all);
  ASSERT_EQ(g.taps.size(), specs.size());
  std::int64_t total = 0;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ(g.taps[i].name, specs[i].name);
    EXPECT_EQ(g.taps[i].shape, specs[i].shape);
    ASSERT_EQ(std::int64_t(g.taps[i].values.size()), g.taps[i].numel());
    total += g.taps[i].numel();
    bool any_nonzero = false;
    for (double v : g.taps[i].values) {
      ASSERT_TRUE(std::isfinite(v)) << g.taps[i].name;
      any_nonzero |= v != 0;
    }
    EXPECT_TRUE(any_nonzero) << g.taps[i].name << " is all zero";
  }
  EXPECT_EQ(g.certification.at("method_name"), "enclosure");
  EXPECT_FALSE(g.certification.contains("guard_bits"));
  EXPECT_LT(g.certification.at("max_radius_half_ulps").get<double>(), 1.0);
  EXPECT_EQ(g.certification.at("precision_bits"), 128);
  EXPECT_EQ(g.certification.at("attempts"), 1);
  EXPECT_EQ(g.certification.at("values_certified"), total);
  EXPECT_GE(g.certification.at("min_margin_bits").get<long>(), 0);

  // Causal probabilities: zeros above the diagonal, rows summing to 1 within float64 rounding.
  const TapTensor* probs = find_tap(g.taps, "layers.0.attn.probs");
  ASSERT_NE(probs, nullptr);
  const int T = int(kTokens.size());
  for (int h = 0; h < model.config.n_heads; ++h)
    for (int t = 0; t < T; ++t) {
      double sum = 0;
      for (int j = 0; j < T; ++j) {
        const double p = probs->values[(std::size_t(h) * T + t) * T + j];
        if (j > t) {
          EXPECT_EQ(p, 0.0);
        }
        sum += p;
      }
      constexpr double kRowSumTolerance = 1e-15;  // T correctly rounded terms summed in float64: ~T ulps
      EXPECT_NEAR(sum, 1.0, kRowSumTolerance);
    }
}

// A vocabulary large enough that the logits are certified in several blocks (7 tokens a
// block at 151,936 ids and 192 bits, golden_logits_block): the golden's logits are the
// 192-bit forward's values rounded to float64, every one counted as certified -- by
// agreement (its high run at 128 + 64 bits) and by an enclosure started at 192 bits.
TEST(GoldenForward, LogitsCertifiedBlockByBlockAreTheWholeForwardsValues) {
  SCOPED_TRACE(test::seed_trace());
  ModelConfig c = test::tiny_config(1);
  c.vocab = 151936, c.dim = 8, c.n_heads = 2, c.n_kv_heads = 1, c.head_dim = 4, c.hidden = 8;
  const Model model = make_synthetic_model(c, test::test_seed());
  const std::vector<int> tokens = {3, 151935, 0, 31, 17, 9, 100000, 5, 2};  // 9 tokens: blocks of 7 and 2
  ASSERT_EQ(golden_logits_block(c, int(tokens.size()), 192), 7);
  MpForwardOptions f;
  f.arith = MpArith::exact(192);
  f.threads = 2;
  f.taps = TapSelection::logits;
  const std::vector<double> want = to_doubles(mp_forward(model, to_mp_weights(model, weight_precision_for(192)), tokens, f)[0].values);
  for (GoldenOptions o : {agreement_options(), enclosure_options(192)}) {
    SCOPED_TRACE(certification_method_name(o.method));
    o.taps = TapSelection::logits;
    const GoldenResult g = compute_golden(model, tokens, o);
    EXPECT_EQ(g.certification.at("precision_bits"), o.precision_bits);
    ASSERT_EQ(g.taps.size(), 1u);
    EXPECT_EQ(g.taps[0].values, want);
    EXPECT_EQ(g.certification.at("values_certified"), std::int64_t(tokens.size()) * c.vocab);
  }
}

TEST(GoldenForward, RefusesWhenThePrecisionCannotCertify) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(test::tiny_config(), test::test_seed());
  GoldenOptions o = fast_options();
  o.precision_bits = 20;
  o.guard_bits = 4;
  o.max_precision_bits = 20;
  const std::string why = refusal(model, kTokens, o);
  EXPECT_NE(why.find("tap '"), std::string::npos) << why;
  EXPECT_NE(why.find("index"), std::string::npos) << why;
}

// An enclosure whose extrapolated precision lies past max_precision_bits tries the cap
// itself before refusing: the refusal names the cap as the last precision tried.
TEST(GoldenForward, EnclosureTriesItsPrecisionCapBeforeRefusing) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(test::tiny_config(2), test::test_seed());
  GoldenOptions o = enclosure_options(24);
  o.max_precision_bits = 60;  // past 24, short of what float64 values need
  const std::string why = refusal(model, kTokens, o);
  EXPECT_NE(why.find("at 60 bits (enclosure)"), std::string::npos) << why;
}

TEST(GoldenForward, EscalatesAndAgreesAcrossPrecisions) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(test::tiny_config(), test::test_seed());
  GoldenOptions low = agreement_options();
  low.precision_bits = 20;
  low.guard_bits = 4;
  const GoldenResult escalated = compute_golden(model, kTokens, low);
  EXPECT_GT(escalated.certification.at("attempts").get<int>(), 1);
  EXPECT_GT(escalated.certification.at("precision_bits").get<int>(), 20);

  GoldenOptions at_256 = agreement_options();
  at_256.precision_bits = 256;
  const GoldenResult g128 = compute_golden(model, kTokens, agreement_options());
  const GoldenResult g256 = compute_golden(model, kTokens, at_256);
  ASSERT_EQ(g128.taps.size(), g256.taps.size());
  for (std::size_t i = 0; i < g128.taps.size(); ++i) {
    EXPECT_EQ(g128.taps[i].values, g256.taps[i].values) << g128.taps[i].name;
    EXPECT_EQ(g128.taps[i].values, escalated.taps[i].values) << g128.taps[i].name;
  }
}

// The enclosure method, started too low on a two-layer model, raises P to whole limbs in
// one step (the bits lost where 40 failed, extrapolated to the depth) and ends at the
// agreement method's bytes; its recorded tally is that of its last attempt:
// every value counted, every radius inside the float64 rounding interval.
TEST(GoldenForward, EnclosureEscalatesInLimbsAndAgreesWithAgreement) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(test::tiny_config(2), test::test_seed());
  const GoldenResult proven = compute_golden(model, kTokens, enclosure_options(40));
  const GoldenResult agreed = compute_golden(model, kTokens, agreement_options());
  const int precision = proven.certification.at("precision_bits").get<int>();
  const int attempts = proven.certification.at("attempts").get<int>();
  EXPECT_EQ(attempts, 2) << "40 bits cannot certify float64 values, and the extrapolation takes one step";
  EXPECT_EQ(precision % 64, 0);
  EXPECT_GT(precision, kCertifiedBits);
  EXPECT_EQ(proven.certification.at("method_name"), "enclosure");
  const double radius = proven.certification.at("max_radius_half_ulps").get<double>();
  EXPECT_GT(radius, 0.0);
  EXPECT_LT(radius, 1.0);
  std::int64_t total = 0;
  ASSERT_EQ(proven.taps.size(), agreed.taps.size());
  for (std::size_t i = 0; i < agreed.taps.size(); ++i) {
    EXPECT_EQ(proven.taps[i].values, agreed.taps[i].values) << agreed.taps[i].name;
    total += proven.taps[i].numel();
  }
  EXPECT_EQ(proven.certification.at("values_certified").get<std::int64_t>(), total);
}

// With the precision schedule lowering the later layers of a deep model, the enclosure
// still certifies the agreement method's bytes, and the manifest records each stage's
// precision.
TEST(GoldenForward, ScheduledEnclosureCertifiesTheSameBytes) {
  SCOPED_TRACE(test::seed_trace());
  constexpr int kLayers = 10;
  const Model model = make_synthetic_model(test::tiny_config(kLayers), test::test_seed());
  const GoldenResult proven = compute_golden(model, kTokens, enclosure_options());
  const GoldenResult agreed = compute_golden(model, kTokens, agreement_options());
  const std::vector<int> stages = proven.certification.at("stage_precision_bits").get<std::vector<int>>();
  ASSERT_EQ(stages.size(), std::size_t(kLayers + 1));
  EXPECT_EQ(stages.front(), proven.certification.at("precision_bits").get<int>());
  EXPECT_LT(stages.back(), stages.front()) << "the schedule lowered no stage";
  EXPECT_FALSE(agreed.certification.contains("stage_precision_bits"));
  EXPECT_TRUE(test::same_tap_bits(proven.taps, agreed.taps)) << "the proof and the cross-check differ";
}

// The enclosure's next precision extrapolates the bits a run had lost where it stopped to
// the whole depth: a failure at layers.3.q of 15 layers (4 of 16 stages) with 50 of the
// 128 bits left lost 78 bits there, so 54 + 1 + 78 * 16 / 4 + 16 = 383 bits, 384; a
// logit whose radius passed its value by 40 bits lost 168; an unbounded one doubles;
// and a failure that lost almost nothing still grows to the next whole limb.
TEST(GoldenForward, EnclosureExtrapolatesTheLossToTheWholeDepth) {
  ModelConfig c = test::tiny_config(15);
  EXPECT_EQ(next_enclosure_precision(UncertifiedValue{"layers.3.q", 0, 50}, c, 128), 384);
  EXPECT_EQ(next_enclosure_precision(UncertifiedValue{"logits", 0, -40}, c, 128), 256);  // 54 + 1 + 168 + 16 = 239
  EXPECT_EQ(next_enclosure_precision(UncertifiedValue{"logits", 0, std::nullopt}, c, 128), 256);
  EXPECT_EQ(next_enclosure_precision(UncertifiedValue{"layers.0.q", 0, 126}, c, 128), 192);
  EXPECT_EQ(next_enclosure_precision(UncertifiedValue{"layers.0.q", 0, 98}, c, 100), 128);  // the next whole limb
  EXPECT_EQ(next_enclosure_precision(UncertifiedValue{"layers.14.out", 0, 60}, c, 192), 256);  // 54 + 1 + 132 * 16 / 15 + 16 = 211.8
}

// The early stop, on hand-set residual streams of a 15-layer model (16 stages): it stops
// on a clear miss only -- the bits the logits would keep, extrapolating the loss so far
// over the stages, under kCertifiedBits + 1 by more than a quarter limb (16 bits) -- and
// its failure extrapolates to what the estimate said.
TEST(GoldenForward, EnclosureStopsEarlyOnAClearMissOnly) {
  const ModelConfig c = test::tiny_config(15);
  EXPECT_FALSE(enclosure_early_stop(LONG_MAX, c, 128, 0));  // every value exact so far
  EXPECT_FALSE(enclosure_early_stop(128, c, 128, 3));        // nothing lost
  const std::optional<UncertifiedValue> unbounded = enclosure_early_stop(std::nullopt, c, 128, 3);
  ASSERT_TRUE(unbounded);
  EXPECT_EQ(unbounded->tap, "layers.3.out");
  EXPECT_FALSE(unbounded->error_bits);
  // 20 bits lost in the first stage: 320 over 16, far past 128 - 55.
  const std::optional<UncertifiedValue> early = enclosure_early_stop(108, c, 128, 0);
  ASSERT_TRUE(early);
  EXPECT_EQ(early->tap, "layers.0.out");
  EXPECT_EQ(early->error_bits, 108);
  EXPECT_EQ(next_enclosure_precision(*early, c, 128), 448);  // 54 + 1 + 20 * 16 + 16 = 391
  EXPECT_FALSE(enclosure_early_stop(600, c, 640, 1));          // 20 a stage: 320 kept
  // After every layer (16 of 16 stages with the logits to go, the loss taken as it is):
  // 39 bits kept is a near miss (54 + 1 - 16), 38 a clear one.
  EXPECT_FALSE(enclosure_early_stop(39, test::tiny_config(15), 128, 15));
  EXPECT_TRUE(enclosure_early_stop(38, test::tiny_config(15), 128, 15));
}

// An attempt that cannot end certified stops at the layer where that shows, whatever the
// taps kept: with logits only on a 12-layer model capped at 128 bits, the refusal names a
// layer's output, not the logits.
TEST(GoldenForward, EnclosureAttemptStopsAtTheLayerItsLossShows) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(test::tiny_config(12), test::test_seed());
  GoldenOptions o = enclosure_options(128);
  o.max_precision_bits = 128;
  o.taps = TapSelection::logits;
  const std::string why = refusal(model, kTokens, o);
  EXPECT_NE(why.find("tap 'layers."), std::string::npos) << why;
  EXPECT_NE(why.find(".out'"), std::string::npos) << why;
}

// A prompt longer than the probe (8 tokens): the probe over its first tokens finds the
// precision, and the whole prompt certifies there in one attempt; the bytes are the
// agreement method's.
TEST(GoldenForward, EnclosureProbeStartsWhereTheWholePromptCertifies) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(test::tiny_config(2), test::test_seed());
  std::vector<int> tokens;
  for (int i = 0; i < 24; ++i) tokens.push_back((i * 7 + 3) % model.config.vocab);
  const GoldenResult proven = compute_golden(model, tokens, enclosure_options(40));
  EXPECT_EQ(proven.certification.at("attempts").get<int>(), 1);
  EXPECT_GT(proven.certification.at("precision_bits").get<int>(), kCertifiedBits);
  const GoldenResult agreed = compute_golden(model, tokens, agreement_options());
  EXPECT_TRUE(test::same_tap_bits(proven.taps, agreed.taps)) << "the proof and the cross-check differ";
}

// The recorded certification is that of the precision actually used: recomputing the two
// runs at the recorded precision and precision + guard bits, independently of
// compute_golden, gives the recorded tally, and the attempt before it (half the
// precision) failed. A golden that checked a run against itself, or recorded another
// attempt's figures, disagrees here.
std::vector<MpTap> forward_at(const Model& model, int bits) {
  MpForwardOptions forward;
  forward.arith = MpArith::exact(bits);
  forward.threads = 2;
  return mp_forward(model, to_mp_weights(model, weight_precision_for(bits)), kTokens, forward);
}

TEST(GoldenForward, RecordedCertificationIsThatOfThePrecisionUsed) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(test::tiny_config(), test::test_seed());
  GoldenOptions o = agreement_options();
  o.precision_bits = 20;
  o.guard_bits = 8;
  const GoldenResult g = compute_golden(model, kTokens, o);
  const int precision = g.certification.at("precision_bits").get<int>();
  const int attempts = g.certification.at("attempts").get<int>();
  ASSERT_GT(attempts, 1) << "20 bits cannot certify float64 values";
  EXPECT_EQ(precision, o.precision_bits << (attempts - 1)) << "the precision doubles per attempt";
  EXPECT_EQ(g.certification.at("guard_bits"), o.guard_bits);

  CertificationTally tally;
  EXPECT_FALSE(certify_taps(forward_at(model, precision), forward_at(model, precision + o.guard_bits), precision, tally));
  EXPECT_EQ(g.certification.at("values_certified").get<std::int64_t>(), tally.values_certified);
  ASSERT_TRUE(tally.min_margin_bits);
  EXPECT_EQ(g.certification.at("min_margin_bits").get<long>(), *tally.min_margin_bits);
  // Agreeing runs bound a value by P - 2 bits, differing ones by fewer.
  EXPECT_LE(*tally.min_margin_bits, precision - 2 - kCertifiedBits);
  EXPECT_GE(*tally.min_margin_bits, 0);

  CertificationTally before;
  EXPECT_TRUE(certify_taps(forward_at(model, precision / 2), forward_at(model, precision / 2 + o.guard_bits),
                           precision / 2, before))
      << "the attempt at " << precision / 2 << " bits passes too: compute_golden should have stopped there";
}

// The golden of an evicting KV policy is proven too (every eviction decision on the
// scores' balls, evicting_attention.h) and is the agreement method's bytes, for each
// score-based policy and with a hot window.
TEST(GoldenForward, EvictingCachesAreProvenToTheSameBytes) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(test::tiny_config(2), test::test_seed());
  for (const char* spec : {"q8_0+evict=h2o:3", "f16+evict=tova:4+hot=2", "f32+evict=snapkv:3,2,3", "q4_0+evict=knorm:4"}) {
    SCOPED_TRACE(spec);
    GoldenOptions proof = fast_options(), agreement = agreement_options();
    proof.kv = agreement.kv = quant::parse_kv_policy_spec(spec, "test");
    const GoldenResult proven = compute_golden(model, kTokens, proof);
    EXPECT_EQ(proven.certification.at("method_name"), "enclosure");
    const GoldenResult agreed = compute_golden(model, kTokens, agreement);
    EXPECT_TRUE(test::same_tap_bits(proven.taps, agreed.taps)) << "the proof and the cross-check differ";
  }
}

TEST(GoldenForward, LogitsSelectionMatchesAll) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(test::tiny_config(), test::test_seed());
  GoldenOptions o = fast_options();
  o.taps = TapSelection::logits;
  const GoldenResult logits_only = compute_golden(model, kTokens, o);
  const GoldenResult all = compute_golden(model, kTokens, fast_options());
  ASSERT_EQ(logits_only.taps.size(), 1u);
  EXPECT_EQ(logits_only.taps[0].values, find_tap(all.taps, "logits")->values);
}

}  // namespace
}  // namespace kvfid::ref
