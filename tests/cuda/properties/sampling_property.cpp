// Property 8, sampling (cuda/engine/sampler.h):
//  - with a fixed seed, the tokens a request samples are the same whatever batch its
//    sequence runs in (engine logits + counter-based draws keyed by request and position);
//  - top-k = 1 is greedy, whatever the temperature and top-p;
//  - top-p 1, no top-k samples from softmax(logits / temperature) (temperatures 1, 0.5
//    and 2): a chi-square goodness-of-fit test on seeded draws.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "cuda/engine/engine.h"
#include "cuda/engine/sampler.h"
#include "tests/common/test_env.h"
#include "tests/cuda/properties/generators.h"
#include "tests/cuda/properties/property_check.h"

namespace kvfid::test {
using namespace kvfid::engine;  // the engine under test
namespace {

rc::Gen<SamplingParams> gen_sampling() {
  return rc::gen::build<SamplingParams>(
      rc::gen::set(&SamplingParams::temperature, rc::gen::element(0.0f, 0.5f, 1.0f, 1.5f)),
      rc::gen::set(&SamplingParams::top_k, rc::gen::element(0, 1, 3, 10)),
      rc::gen::set(&SamplingParams::top_p, rc::gen::element(1.0f, 0.9f, 0.5f)),
      rc::gen::set(&SamplingParams::seed, rc::gen::arbitrary<std::uint64_t>()));
}

int sample_last_row(const std::vector<float>& logits, int row, int vocab, const SamplingParams& p, int request, int pos,
                    SamplerScratch& scratch) {
  return sample_token(logits.data() + std::size_t(row) * vocab, vocab, p, std::uint64_t(request), std::uint64_t(pos), scratch);
}

TEST(PropertySampling, SeededTokensIndependentOfBatch) {
  KVFID_REQUIRE_BACKEND();
  check_property(60, [] {
    const ModelCase mc = *gen_model_case();
    const SamplingParams params = *gen_sampling();
    const int requests = *rc::gen::inRange(1, 5);
    const int generate = *rc::gen::inRange(1, 8);
    std::vector<std::vector<int>> prompts(requests);
    for (auto& p : prompts) p = *gen_tokens(*gen_length(40), mc.vocab);
    std::mt19937_64 order(*rc::gen::arbitrary<std::uint64_t>());
    const Model m = mc.model(kMaxSeq);
    const EngineOptions options = mc.options(backend_under_test());
    const int V = mc.vocab;

    // Alone: request r in its own engine; the draw is keyed by (seed, r, position).
    std::vector<std::vector<int>> alone(requests);
    for (int r = 0; r < requests; ++r) {
      Engine e(m, options);
      SamplerScratch scratch;
      const int seq = e.add_sequence(int(prompts[r].size()) + generate);
      int pos = int(prompts[r].size());
      int token = sample_last_row(e.step({{seq, prompts[r]}}).logits, pos - 1, V, params, r, pos, scratch);
      alone[r].push_back(token);
      while (int(alone[r].size()) < generate) {
        token = sample_last_row(e.step({{seq, {token}}}).logits, 0, V, params, r, ++pos, scratch);
        alone[r].push_back(token);
      }
    }
    // Together: sequences added in a shuffled order, every step listing them shuffled.
    std::vector<int> by_seq(requests);  // request of each sequence id
    for (int r = 0; r < requests; ++r) by_seq[r] = r;
    std::shuffle(by_seq.begin(), by_seq.end(), order);
    Engine e(m, options);
    SamplerScratch scratch;
    std::vector<int> seq_of(requests);
    for (int s = 0; s < requests; ++s) seq_of[by_seq[s]] = e.add_sequence(int(prompts[by_seq[s]].size()) + generate);
    std::vector<std::vector<int>> together(requests);
    std::vector<int> listed(requests);
    for (int r = 0; r < requests; ++r) listed[r] = r;
    for (int step = 0; step < generate; ++step) {
      std::shuffle(listed.begin(), listed.end(), order);
      std::vector<SequenceInput> in;
      for (int r : listed) in.push_back({seq_of[r], step == 0 ? prompts[r] : std::vector<int>{together[r].back()}});
      const StepOutput& out = e.step(in);
      int row = 0;
      for (std::size_t i = 0; i < listed.size(); ++i) {
        const int r = listed[i];
        row += int(in[i].tokens.size());
        const int pos = int(prompts[r].size()) + step;
        together[r].push_back(sample_last_row(out.logits, row - 1, V, params, r, pos, scratch));
      }
    }
    for (int r = 0; r < requests; ++r) RC_ASSERT(alone[r] == together[r]);
  });
}

// The sampler alone does not depend on the backend: the twin registration runs it.
TEST(PropertySampling, TopOneIsGreedy) {
  KVFID_BACKEND_INDEPENDENT();
  check_property(1000, [] {
    const int vocab = *rc::gen::inRange(1, 200);
    // Small integers (many ties), spread floats, or runs of adjacent floats.
    const int kind = *rc::gen::inRange(0, 3);
    std::vector<float> logits;
    if (kind == 0) {
      for (int k : *rc::gen::container<std::vector<int>>(std::size_t(vocab), rc::gen::inRange(-3, 4))) logits.push_back(float(k));
    } else if (kind == 1) {
      for (int k : *rc::gen::container<std::vector<int>>(std::size_t(vocab), rc::gen::inRange(-(30 << 16), 30 << 16)))
        logits.push_back(std::ldexp(float(k), -16));
    } else {
      const float base = std::ldexp(float(*rc::gen::inRange(-(30 << 10), 30 << 10)), -10);
      for (int k : *rc::gen::container<std::vector<int>>(std::size_t(vocab), rc::gen::inRange(0, 4))) {
        float x = base;
        for (int i = 0; i < k; ++i) x = std::nextafter(x, 100.0f);
        logits.push_back(x);
      }
    }
    SamplingParams top1;
    top1.temperature = *rc::gen::element(0.05f, 0.3f, 0.7f, 1.0f, 1.7f, 4.0f);
    top1.top_k = 1;
    top1.top_p = *rc::gen::element(1.0f, 0.95f, 0.5f, 1e-3f);
    top1.seed = *rc::gen::arbitrary<std::uint64_t>();
    const std::uint64_t sequence = *rc::gen::arbitrary<std::uint64_t>(), position = *rc::gen::arbitrary<std::uint64_t>();
    SamplerScratch scratch;
    RC_ASSERT(sample_token(logits.data(), vocab, top1, sequence, position, scratch) ==
              sample_token(logits.data(), vocab, SamplingParams{}, sequence, position, scratch));
  });
}

// Chi-square with 6 degrees of freedom (7 tokens): the survival function has the closed
// form Q(x) = exp(-x/2) (1 + x/2 + (x/2)^2 / 2), and Q(38.25834) = 1.0e-6 (bisection; 38.2584 rounds it up), so a correct
// sampler fails one run with probability below alpha = 1e-6 (per seed), and the six runs
// below (three temperatures, two top_k) together below 6e-6.
constexpr double kChiSquareDf6Alpha1e6 = 38.2584;
// At temperature 0.5 the smallest probability is exp(-2) / 16.70 = 0.0081, so the smallest
// expected count is 20000 * 0.0081 = 162 >> 5 (the chi-square approximation's rule).
constexpr int kDraws = 20000;

// Temperature T samples softmax(logits / T): 1 (the full distribution), and 0.5 and 2,
// which sharpen and flatten it.
TEST(PropertySampling, FullDistributionGoodnessOfFit) {
  KVFID_BACKEND_INDEPENDENT();
  SCOPED_TRACE(seed_trace());
  const double x = kChiSquareDf6Alpha1e6 / 2;
  ASSERT_LE(std::exp(-x) * (1 + x + x * x / 2), 1.0e-6);
  const std::vector<float> logits = {1.0f, 0.5f, 0.0f, -0.25f, -0.5f, -1.0f, 0.75f};
  const int V = int(logits.size());
  SamplerScratch scratch;
  for (const float temperature : {1.0f, 0.5f, 2.0f}) {
    std::vector<double> expected(V);
    double z = 0;
    for (int i = 0; i < V; ++i) z += std::exp(double(logits[i]) / temperature);
    for (int i = 0; i < V; ++i) expected[i] = kDraws * std::exp(double(logits[i]) / temperature) / z;
    for (const int top_k : {0, V}) {
      const SamplingParams full{temperature, top_k, 1.0f, test_seed()};
      std::vector<int> count(V, 0);
      for (int draw = 0; draw < kDraws; ++draw) ++count.at(sample_token(logits.data(), V, full, 7, std::uint64_t(draw), scratch));
      double chi2 = 0;
      for (int i = 0; i < V; ++i) chi2 += (count[i] - expected[i]) * (count[i] - expected[i]) / expected[i];
      std::printf("[property] sampling goodness of fit (temperature %.1f, top_k %d): chi-square %.2f over %d draws, "
                  "threshold %.4f (alpha 1e-6)\n", temperature, top_k, chi2, kDraws, kChiSquareDf6Alpha1e6);
      EXPECT_LT(chi2, kChiSquareDf6Alpha1e6) << "temperature " << temperature << ", top_k " << top_k;
    }
  }
}

}  // namespace
}  // namespace kvfid::test
