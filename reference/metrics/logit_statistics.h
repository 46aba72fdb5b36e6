#pragma once
// How a test run (a quantized engine) predicts a prompt's next tokens compared with
// the base (the golden, the truth): every statistic llama.cpp's
// `perplexity --kl-divergence` prints, computed exactly from log-probabilities.
//
// Differences from llama.cpp, all on the side of exactness: the base log-probabilities
// are used as given (llama.cpp stores them in 16 bits and drops those below -16, which
// is why it can print a negative minimum KLD); every position t = 0..T-2 is scored
// (llama.cpp scores the second half of each context window); standard errors are
// given from 2 positions on (llama.cpp prints 0 below 11).
#include <array>
#include <span>
#include <vector>

#include "reference/metrics/sample_stats.h"

namespace kvfid::ref {

// The percentiles llama.cpp prints besides the maximum and the minimum, in percent and
// in its order (50 is the median).
inline constexpr std::array<double, 9> kKldPercentileLevels = {99.9, 99.0, 95.0, 90.0, 50.0, 10.0, 5.0, 1.0, 0.1};
inline constexpr std::array<double, 11> kDpPercentileLevels = {99.9, 99.0, 95.0, 90.0, 75.0, 50.0,
                                                               25.0, 10.0, 5.0,  1.0,  0.1};

struct Quantile {
  double level = 0;  // percent
  double value = 0;
};

// Standard errors: sample_stats.h's mean_with_standard_error over positions, carried
// through exp and sqrt by the delta method (se(f(m)) = |f'(m)| se(m)) where stated.
struct LogitStatistics {
  int positions = 0;  // scored positions, T - 1: position t predicts tokens[t + 1]

  // Perplexity, from nll_t = -ln p(tokens[t + 1]) at each scored position.
  Estimate ppl_test;               // exp(mean nll_test); se = PPL * se(mean nll_test)
  Estimate ppl_base;               // the same for the base
  double ln_ppl_correlation = 0;   // Pearson r of nll_test and nll_base over positions
  Estimate ln_ppl_ratio;           // ln(PPL(test)/PPL(base)) = mean(nll_test - nll_base); se of that paired mean
  Estimate ppl_ratio;              // exp(ln_ppl_ratio); se = ratio * se(ln ratio)
  Estimate ppl_difference;         // PPL(test) - PPL(base); se: the delta method on both exps with their
                                   // covariance, i.e. se of the mean of PPL_test nll_test - PPL_base nll_base

  // KL(p_base || p_test) per position over the whole vocabulary, nats.
  Estimate kld;                    // mean
  double kld_max = 0;
  double kld_min = 0;
  std::vector<Quantile> kld_percentiles;  // at kKldPercentileLevels

  // Δp = p_test(next) - p_base(next), the change in the probability of the actual next
  // token; a probability, not a percentage (the renderers show percent).
  Estimate dp;                     // mean
  double dp_max = 0;
  double dp_min = 0;
  std::vector<Quantile> dp_percentiles;   // at kDpPercentileLevels
  Estimate dp_rms;                 // sqrt(mean Δp^2); se = se(mean Δp^2) / (2 RMS), 0 when every Δp is 0
  Estimate same_top;               // fraction of positions whose most probable token agrees (the first on
                                   // ties, in both runs); se = sqrt(f (1 - f) / (n - 1)), the binomial one

  // Per scored position, each [T - 1].
  std::vector<double> kld_at;
  std::vector<double> dp_at;
  std::vector<double> nll_test_at;
  std::vector<double> nll_base_at;
  std::vector<bool> same_top_at;
};

// base_logprobs, test_logprobs: [T, vocab] row-major, row t the distribution after
// tokens[0..t]; tokens: [T]. Rows may be log-probabilities or any logits: each row is
// renormalised in long double first (the log-softmax of a log-softmax is itself), so a
// float log-softmax's last-digit normalisation error does not enter. Throws
// std::invalid_argument for T < 2, sizes other than T * vocab, a token outside
// [0, vocab) or a value that is not finite (the gross checks come first).
LogitStatistics logit_statistics(std::span<const double> base_logprobs, std::span<const double> test_logprobs,
                                 int vocab, std::span<const int> tokens);

}  // namespace kvfid::ref
