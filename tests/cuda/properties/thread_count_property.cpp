// Property 10: the twin gives the same bits on any number of threads. Its thread pool
// (cuda/twin/thread_pool.h) hands out only what one GPU block owns, so no reduction
// crosses threads; here 1, 2 and 3 threads run the same schedule -- sequences of
// different lengths prefilled in chunks side by side, then decoded together -- and
// every step's logits, taps and log-probabilities must be byte-equal. Models are the
// small generated ones and real head sizes (gen_real_head_case: head_dim 64/128, GQA
// 7:1), under any KV policy and either split mode. Twin only: the CUDA engine has no
// host threads.
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "cuda/engine/engine.h"
#include "tests/cuda/properties/generators.h"
#include "tests/cuda/properties/property_check.h"

namespace kvfid::test {
namespace {
constexpr int kThreadCounts[] = {1, 2, 3};

// Everything an Engine returns over a schedule, in order.
struct Dump {
  std::vector<StepOutput> steps;
  std::vector<std::vector<float>> logprobs;  // [steps]
};

Dump run_schedule(const Model& m, EngineOptions options, int threads, const std::vector<int>& capacities,
                  const std::vector<std::vector<SequenceInput>>& schedule) {
  options.threads = threads;
  Engine engine(m, options);
  for (int capacity : capacities) engine.add_sequence(capacity);
  Dump d;
  for (const auto& step : schedule) {
    d.steps.push_back(engine.step(step, true));
    d.logprobs.push_back(engine.logprobs());
  }
  return d;
}

// Empty when a and b hold the same bytes; else where they first differ.
std::string byte_difference(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  if (a.size() != b.size()) return what + ": " + std::to_string(a.size()) + " vs " + std::to_string(b.size()) + " values";
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0)
      return what + "[" + std::to_string(i) + "]: " + std::to_string(a[i]) + " vs " + std::to_string(b[i]);
  return {};
}

std::string dump_difference(const Dump& a, const Dump& b) {
  for (std::size_t s = 0; s < a.steps.size(); ++s) {
    const std::string at = "step " + std::to_string(s) + " ";
    std::string d = byte_difference(a.steps[s].logits, b.steps[s].logits, at + "logits");
    if (d.empty()) d = byte_difference(a.logprobs[s], b.logprobs[s], at + "logprobs");
    for (std::size_t l = 0; d.empty() && l < a.steps[s].layers.size(); ++l) {
      const LayerTaps &x = a.steps[s].layers[l], &y = b.steps[s].layers[l];
      const std::string layer = at + "layer " + std::to_string(l) + " ";
      using Field = std::vector<float> LayerTaps::*;
      const std::pair<Field, const char*> fields[] = {{&LayerTaps::q, "q"},         {&LayerTaps::k, "k"},
                                                      {&LayerTaps::v, "v"},         {&LayerTaps::stats, "stats"},
                                                      {&LayerTaps::attn_out, "attn_out"}, {&LayerTaps::out, "out"}};
      for (const auto& [field, name] : fields)
        if (d.empty()) d = byte_difference(x.*field, y.*field, layer + name);
    }
    if (!d.empty()) return d;
  }
  return {};
}

TEST(PropertyThreadCount, SameBitsOnOneTwoAndThreeThreads) {
  KVFID_REQUIRE_BACKEND();
  if (backend_under_test() != Backend::twin) GTEST_SKIP() << "the CUDA engine has no host thread count";
  check_property(30, [] {
    ModelCase mc = draw_small_or_real_heads();
    mc.kv_policy = *gen_kv_policy(mc);
    EngineOptions options = mc.options(Backend::twin);
    options.split = *rc::gen::element(SplitMode::invariant, SplitMode::by_length);
    const Model m = mc.model(kMaxSeq);

    // 1..3 sequences, each a prompt in chunks then 0..4 decode tokens; step k holds
    // the k-th prefill chunk of every sequence that has one, then the decode steps
    // hold one token of every sequence with tokens left.
    const int n_seqs = *rc::gen::inRange(1, 4);
    std::vector<std::vector<std::vector<int>>> prefill(n_seqs), decode(n_seqs);
    std::vector<int> capacities;
    for (int s = 0; s < n_seqs; ++s) {
      const int length = *gen_length(280);
      const auto prompt = *gen_tokens(length, mc.vocab);
      std::size_t at = 0;
      for (int n : *gen_partition(length)) {
        prefill[s].emplace_back(prompt.begin() + at, prompt.begin() + at + n);
        at += n;
      }
      for (int t : *gen_tokens(*rc::gen::inRange(0, 5), mc.vocab)) decode[s].push_back({t});
      capacities.push_back(length + int(decode[s].size()));
    }
    std::vector<std::vector<SequenceInput>> schedule;
    for (auto* phase : {&prefill, &decode})
      for (std::size_t k = 0;; ++k) {
        std::vector<SequenceInput> step;
        for (int s = 0; s < n_seqs; ++s)
          if (k < (*phase)[s].size()) step.push_back({s, (*phase)[s][k]});
        if (step.empty()) break;
        schedule.push_back(std::move(step));
      }
    RC_CLASSIFY(n_seqs > 1, "batched");

    const Dump one = run_schedule(m, options, kThreadCounts[0], capacities, schedule);
    for (int threads : kThreadCounts) {
      if (threads == kThreadCounts[0]) continue;
      const std::string d = dump_difference(one, run_schedule(m, options, threads, capacities, schedule));
      if (!d.empty()) RC_FAIL(std::to_string(threads) + " threads against 1: " + d);
    }
  });
}

}  // namespace
}  // namespace kvfid::test
