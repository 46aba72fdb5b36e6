#include "cuda/engine/sampler.h"

#include <algorithm>

#include "cuda/common/philox.h"
#include "cuda/common/portable_math.h"

namespace kvfid::engine {

int sample_token(const float* logits, int vocab, const SamplingParams& p, std::uint64_t sequence,
                 std::uint64_t position, SamplerScratch& scratch) {
  if (p.temperature <= 0.0f) {
    int best = 0;
    for (int i = 1; i < vocab; ++i)
      if (logits[i] > logits[best]) best = i;
    return best;
  }
  auto& c = scratch.candidates;
  c.resize(vocab);
  // Candidates are ranked by the raw logit, not by logit / temperature: dividing can
  // round two adjacent logits to one value and hand the tie to the lower id, so top-k
  // would cut a different set than greedy picks. Division by T > 0 is monotone, so the
  // scaled values below stay in this order.
  for (int i = 0; i < vocab; ++i) c[i] = {logits[i], i};
  // A strict total order (value descending, id ascending): the sorted sequence, and so
  // every sum below, does not depend on the sorting algorithm.
  const auto before = [](const std::pair<float, int>& a, const std::pair<float, int>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  const int k = p.top_k > 0 && p.top_k < vocab ? p.top_k : vocab;
  std::partial_sort(c.begin(), c.begin() + k, c.end(), before);
  // Unnormalized probabilities exp(x/T - max/T), summed in sorted order.
  const float m = num::div(c[0].first, p.temperature);
  float total = 0.0f;
  for (int i = 0; i < k; ++i) {
    c[i].first = num::exp_portable(num::div(c[i].first, p.temperature) - m);
    total = total + c[i].first;
  }
  int kept = k;
  if (p.top_p < 1.0f) {
    const float cut = p.top_p * total;
    float cum = 0.0f;
    for (int i = 0; i < k; ++i) {
      cum = cum + c[i].first;
      if (cum >= cut) {
        kept = i + 1;
        break;
      }
    }
  }
  float mass = 0.0f;
  for (int i = 0; i < kept; ++i) mass = mass + c[i].first;
  const float target = num::philox_uniform(p.seed, sequence, position) * mass;
  float cum = 0.0f;
  for (int i = 0; i < kept; ++i) {
    cum = cum + c[i].first;
    if (target < cum) return c[i].second;
  }
  return c[kept - 1].second;
}

}  // namespace kvfid::engine
