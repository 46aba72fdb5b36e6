// Property 3: a sequence's outputs do not depend on which other sequences share its
// steps, their lengths, how many there are, their ids or the order the step lists
// them: the subject's rows, fed in the same chunks, are the bits it gets alone; under
// any KV policy (gen_kv_policy).
// Half the cases run at real head sizes (head_dim 64/128, GQA 7:1: draw_small_or_real_heads).
#include <algorithm>
#include <random>

#include "tests/cuda/properties/generators.h"
#include "tests/cuda/properties/property_check.h"
#include "tests/cuda/properties/sequence_rows.h"

namespace kvfid::test {
namespace {

// One sequence's work: its tokens in chunks (prefill chunks, then decode tokens).
struct Work {
  int seq = -1;
  std::vector<std::vector<int>> chunks;
  std::size_t next = 0;
  bool done() const { return next == chunks.size(); }
};

Work make_work(int vocab, int max_prompt) {
  const int length = *gen_length(max_prompt);
  const auto prompt = *gen_tokens(length, vocab);
  Work w;
  std::size_t at = 0;
  for (int n : *gen_partition(length)) {
    w.chunks.emplace_back(prompt.begin() + at, prompt.begin() + at + n);
    at += n;
  }
  for (int t : *gen_tokens(*rc::gen::inRange(0, 6), vocab)) w.chunks.push_back({t});
  return w;
}

int total_tokens(const Work& w) {
  int n = 0;
  for (const auto& c : w.chunks) n += int(c.size());
  return n;
}

TEST(PropertyBatchInvariance, SequenceOutputsIndependentOfBatch) {
  KVFID_REQUIRE_BACKEND();
  check_property(60, [] {
    ModelCase mc = draw_small_or_real_heads();
    mc.kv_policy = *gen_kv_policy(mc);  // holds under every policy: cold_end depends on positions only
    RC_CLASSIFY(mc.kv_policy.find("kivi") != std::string::npos, "KIVI");
    RC_CLASSIFY(mc.kv_policy.find("hot=") != std::string::npos, "hot window");
    RC_CLASSIFY(mc.kv_policy.find("rot=") != std::string::npos, "rotated");
    RC_CLASSIFY(mc.kv_policy.find("evict=") != std::string::npos, "evicting");
    const Model m = mc.model(kMaxSeq);
    const EngineOptions options = mc.options(backend_under_test());
    Work subject = make_work(mc.vocab, 280);
    std::vector<Work> others(*rc::gen::inRange(0, 5));
    for (Work& w : others) w = make_work(mc.vocab, 120);
    // The schedule (ids, which sequences join each step, their order) from one drawn
    // seed: a counterexample shrinks toward fewer and shorter sequences.
    std::mt19937_64 schedule(*rc::gen::arbitrary<std::uint64_t>());
    RC_CLASSIFY(others.empty(), "alone in every step");

    // Alone.
    Engine alone_engine(m, options);
    const int alone_seq = alone_engine.add_sequence(total_tokens(subject));
    SequenceRows alone;
    for (const auto& c : subject.chunks) append_rows(alone, alone_engine.step({{alone_seq, c}}, true), 0, int(c.size()), m.config);
    const std::string gross = rows_gross_failure(alone);
    if (!gross.empty()) RC_FAIL(gross);

    // Together: the subject added at a random place among the others, each with spare
    // capacity of its own.
    Engine engine(m, options);
    std::vector<Work*> all;
    for (Work& w : others) all.push_back(&w);
    all.insert(all.begin() + std::uniform_int_distribution<std::size_t>(0, others.size())(schedule), &subject);
    for (Work* w : all) w->seq = engine.add_sequence(std::min(kMaxSeq, total_tokens(*w) + int(schedule() % 40)));
    SequenceRows together;
    while (!subject.done()) {
      std::vector<Work*> step;
      for (Work* w : all)
        if (!w->done() && schedule() % 2 == 0) step.push_back(w);
      if (step.empty()) step.push_back(&subject);
      std::shuffle(step.begin(), step.end(), schedule);
      std::vector<SequenceInput> inputs;
      for (Work* w : step) inputs.push_back({w->seq, w->chunks[w->next++]});
      const StepOutput& out = engine.step(inputs, true);
      int row = 0;
      for (const SequenceInput& in : inputs) {
        if (in.seq == subject.seq) append_rows(together, out, row, int(in.tokens.size()), m.config);
        row += int(in.tokens.size());
      }
    }
    const std::string d = rows_difference(alone, 0, together, 0, alone.rows, m.config);
    if (!d.empty()) RC_FAIL(d);
  });
}

}  // namespace
}  // namespace kvfid::test
