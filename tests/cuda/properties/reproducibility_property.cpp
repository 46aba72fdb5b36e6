// Property 6: the engine gives the same bits run after run, in a fresh engine or in
// one whose step buffers already served other (larger) steps (the thread count is
// varied by property 10, thread_count_property.cpp). In the CUDA binary,
// CUDA equals the twin bit for bit on every generated case.
#include "tests/cuda/properties/generators.h"
#include "tests/cuda/properties/property_check.h"
#include "tests/cuda/properties/sequence_rows.h"

namespace kvfid::test {
namespace {

TEST(PropertyReproducible, RunToRunAndBufferReuse) {
  KVFID_REQUIRE_BACKEND();
  check_property(60, [] {
    const ModelCase mc = *gen_model_case();
    const int length = *gen_length();
    const auto tokens = *gen_tokens(length, mc.vocab);
    const auto chunks = *gen_partition(length);
    const auto warmup = *gen_tokens(*gen_length(), mc.vocab);
    const Model m = mc.model(kMaxSeq);
    const EngineOptions options = mc.options(backend_under_test());

    Engine first(m, options);
    const SequenceRows a = run_chunks(first, first.add_sequence(length), tokens, chunks);
    const std::string gross = rows_gross_failure(a);
    if (!gross.empty()) RC_FAIL(gross);
    // A second engine, warmed up by another sequence first.
    Engine second(m, options);
    second.step({{second.add_sequence(int(warmup.size())), warmup}});
    const SequenceRows b = run_chunks(second, second.add_sequence(length), tokens, chunks);
    std::string d = rows_difference(a, 0, b, 0, length, m.config);
    if (!d.empty()) RC_FAIL("second engine: " + d);
    // The first engine again, on a new sequence.
    const SequenceRows c = run_chunks(first, first.add_sequence(length), tokens, chunks);
    d = rows_difference(a, 0, c, 0, length, m.config);
    if (!d.empty()) RC_FAIL("same engine, second sequence: " + d);
  });
}

TEST(PropertyReproducible, CudaEqualsTwin) {
  if (backend_under_test() != Backend::cuda) GTEST_SKIP() << "CUDA against the twin: the Gpu. registration runs it";
  KVFID_REQUIRE_BACKEND();
  check_property(40, [] {
    const ModelCase mc = *gen_model_case();
    const int length = *gen_length();
    const auto tokens = *gen_tokens(length, mc.vocab);
    const auto chunks = *gen_partition(length);
    const Model m = mc.model(kMaxSeq);
    Engine twin(m, mc.options(Backend::twin)), cuda(m, mc.options(Backend::cuda));
    const SequenceRows t = run_chunks(twin, twin.add_sequence(length), tokens, chunks);
    const std::string gross = rows_gross_failure(t);
    if (!gross.empty()) RC_FAIL(gross);
    const SequenceRows g = run_chunks(cuda, cuda.add_sequence(length), tokens, chunks);
    const std::string d = rows_difference(t, 0, g, 0, length, m.config);
    if (!d.empty()) RC_FAIL(d);
  });
}

}  // namespace
}  // namespace kvfid::test
