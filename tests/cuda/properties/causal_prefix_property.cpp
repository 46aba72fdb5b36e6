// Property 4: appending tokens never changes the outputs at earlier positions: the
// prefill of a prompt and of the prompt extended (in any chunks) agree, bit for bit,
// on the prompt's rows.
#include "cuda/common/attention_math.h"
#include "tests/cuda/properties/generators.h"
#include "tests/cuda/properties/property_check.h"
#include "tests/cuda/properties/sequence_rows.h"

namespace kvfid::test {
namespace num = kvfid::engine::num;  // the engine's arithmetic (which sees the numeric core's too)
using namespace kvfid::engine;  // the engine under test
namespace {

TEST(PropertyCausalPrefix, AppendingKeepsEarlierOutputs) {
  KVFID_REQUIRE_BACKEND();
  check_property(100, [] {
    const ModelCase mc = *gen_model_case();
    const int length = *gen_length(260);
    const int extra = *gen_length(60);
    const auto tokens = *gen_tokens(length + extra, mc.vocab);
    const auto chunks = *gen_partition(length + extra);
    const Model m = mc.model(kMaxSeq);
    const EngineOptions options = mc.options(backend_under_test());
    RC_CLASSIFY(length + extra > num::kSplit, "extension crosses the 256-key split");

    const SequenceRows prefix = run_one_shot(m, options, std::vector<int>(tokens.begin(), tokens.begin() + length));
    const std::string gross = rows_gross_failure(prefix);
    if (!gross.empty()) RC_FAIL(gross);
    Engine engine(m, options);
    const SequenceRows extended = run_chunks(engine, engine.add_sequence(length + extra), tokens, chunks);
    const std::string d = rows_difference(prefix, 0, extended, 0, length, m.config);
    if (!d.empty()) RC_FAIL(d);
  });
}

}  // namespace
}  // namespace kvfid::test
