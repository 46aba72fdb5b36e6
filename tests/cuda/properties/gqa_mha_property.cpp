// Property 5: grouped-query attention equals multi-head attention with each KV head
// repeated for its query group (wk, wv rows and bk, bv copied per query head), bit for
// bit. Expected exact: every value is computed the same way in both models -- each
// k/v row by the same row dot product of the same weights and input, each query head's
// scores, softmax and weighted sum over the same cached K/V values in the same order;
// only which buffer holds the K/V rows differs.
#include "tests/cuda/properties/generators.h"
#include "tests/cuda/properties/property_check.h"
#include "tests/cuda/properties/sequence_rows.h"

namespace kvfid::test {
namespace {

// The MHA model: KV head of query head h is the GQA model's KV head h / group.
Model repeat_kv_heads(const Model& gqa) {
  const ModelConfig& c = gqa.config;
  Model mha = gqa;
  mha.config.n_kv_heads = c.n_heads;
  auto repeat_rows = [&](const Matrix& w) {
    Matrix r(c.q_dim(), w.cols);  // [n_heads * head_dim, dim]
    for (int h = 0; h < c.n_heads; ++h)
      for (int d = 0; d < c.head_dim; ++d)
        w.decode_row(c.kv_head_of(h) * c.head_dim + d, &r.element(h * c.head_dim + d, 0));
    return r;
  };
  auto repeat = [&](const std::vector<double>& b) {
    std::vector<double> r;  // [n_heads * head_dim]
    for (int h = 0; b.size() && h < c.n_heads; ++h)
      r.insert(r.end(), b.begin() + c.kv_head_of(h) * c.head_dim, b.begin() + (c.kv_head_of(h) + 1) * c.head_dim);
    return r;
  };
  for (LayerWeights& w : mha.layers) {
    w.wk = repeat_rows(w.wk), w.wv = repeat_rows(w.wv);
    w.bk = repeat(w.bk), w.bv = repeat(w.bv);
  }
  return mha;
}

// GQA rows with the k and v taps widened to MHA's [rows, n_heads * head_dim].
SequenceRows widen_kv(const SequenceRows& gqa, const ModelConfig& c) {
  SequenceRows r = gqa;
  for (std::size_t l = 0; l < r.layers.size(); ++l)
    for (auto field : {&LayerTaps::k, &LayerTaps::v}) {
      std::vector<float> wide;
      const std::vector<float>& narrow = gqa.layers[l].*field;  // [rows, kv_dim]
      for (int row = 0; row < gqa.rows; ++row)
        for (int h = 0; h < c.n_heads; ++h) {
          const auto from = narrow.begin() + std::size_t(row) * c.kv_dim() + c.kv_head_of(h) * c.head_dim;
          wide.insert(wide.end(), from, from + c.head_dim);
        }
      r.layers[l].*field = std::move(wide);
    }
  return r;
}

TEST(PropertyGqaEqualsMha, RepeatedKvHeadsGiveSameBits) {
  KVFID_REQUIRE_BACKEND();
  check_property(60, [] {
    ModelCase mc = *gen_model_case();
    mc.group = *rc::gen::element(2, 4, 7);
    mc.latent = {};  // latent attention has one key head per query head: nothing to group
    const int length = *gen_length();
    const auto tokens = *gen_tokens(length, mc.vocab);
    const auto chunks = *gen_partition(length);
    const Model gqa = mc.model(kMaxSeq);
    const Model mha = repeat_kv_heads(gqa);
    const EngineOptions options = mc.options(backend_under_test());

    Engine gqa_engine(gqa, options), mha_engine(mha, options);
    const SequenceRows g = run_chunks(gqa_engine, gqa_engine.add_sequence(length), tokens, chunks);
    const std::string gross = rows_gross_failure(g);
    if (!gross.empty()) RC_FAIL(gross);
    const SequenceRows h = run_chunks(mha_engine, mha_engine.add_sequence(length), tokens, chunks);
    const std::string d = rows_difference(widen_kv(g, gqa.config), 0, h, 0, length, mha.config);
    if (!d.empty()) RC_FAIL(d);
  });
}

}  // namespace
}  // namespace kvfid::test
