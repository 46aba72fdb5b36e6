#include "cuda/engine/generate.h"

#include <algorithm>

#include "cuda/engine/engine.h"
#include "reference/io/prompt.h"
#include "reference/util/input_error.h"

namespace kvfid::engine {

std::vector<std::vector<int>> generate_tokens(const Model& model, const std::vector<std::vector<int>>& prompts,
                                              const EngineOptions& options, const SamplingParams& params, int n) {
  const ModelConfig& c = model.config;
  if (n < 0) throw InputError("generation", "token count must be >= 0");
  for (const std::vector<int>& p : prompts) {
    if (p.empty()) throw InputError("generation", "a prompt needs at least one token");
    validate_tokens(p, c, "prompt");
  }
  Engine engine(model, options);
  const int count = int(prompts.size());
  std::vector<int> seqs(count);
  for (int i = 0; i < count; ++i) seqs[i] = engine.add_sequence(int(prompts[i].size()) + n);

  // Prefill every prompt, chunk by chunk, batched; `last` keeps each sequence's latest
  // logits row (the one its first draw reads).
  std::vector<std::vector<float>> last(count, std::vector<float>(c.vocab));
  const int longest = int(std::max_element(prompts.begin(), prompts.end(),
                                           [](const auto& a, const auto& b) { return a.size() < b.size(); })->size());
  const int chunk = options.chunk > 0 ? options.chunk : longest;
  for (int first = 0; first < longest; first += chunk) {
    std::vector<SequenceInput> inputs;
    std::vector<int> owner;  // inputs[k] belongs to sequence owner[k]
    for (int i = 0; i < count; ++i) {
      const int size = int(prompts[i].size());
      if (first >= size) continue;
      const int end = std::min(size, first + chunk);
      inputs.push_back({seqs[i], std::vector<int>(prompts[i].begin() + first, prompts[i].begin() + end)});
      owner.push_back(i);
    }
    const StepOutput& out = engine.step(inputs);
    std::size_t row = 0;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
      row += inputs[k].tokens.size();
      std::copy_n(out.logits.begin() + std::ptrdiff_t(row - 1) * c.vocab, c.vocab, last[owner[k]].begin());
    }
  }

  std::vector<std::vector<int>> generated(count);
  SamplerScratch scratch;
  for (int step = 0; step < n; ++step) {
    std::vector<SequenceInput> inputs;
    for (int i = 0; i < count; ++i) {
      const std::uint64_t position = prompts[i].size() + std::size_t(step);
      const int token = sample_token(last[i].data(), c.vocab, params, std::uint64_t(i), position, scratch);
      generated[i].push_back(token);
      inputs.push_back({seqs[i], {token}});
    }
    if (step + 1 == n) break;  // the last draw needs no further logits
    const StepOutput& out = engine.step(inputs);
    for (int i = 0; i < count; ++i)
      std::copy_n(out.logits.begin() + std::ptrdiff_t(i) * c.vocab, c.vocab, last[i].begin());
  }
  return generated;
}

}  // namespace kvfid::engine
