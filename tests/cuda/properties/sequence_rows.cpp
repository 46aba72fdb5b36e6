#include "tests/cuda/properties/sequence_rows.h"

#include <cmath>
#include <sstream>

#include "reference/numeric/ieee.h"

namespace kvfid::test {
namespace num = kvfid::engine::num;  // the engine's arithmetic (which sees the numeric core's too: bits_of)
using namespace kvfid::ref;  // the specification's types

namespace {

struct Field {
  const char* name;
  std::vector<float> LayerTaps::*values;
  int width;
};

std::vector<Field> fields(const ModelConfig& c) {
  return {{"q", &LayerTaps::q, c.q_dim()},
          {"k", &LayerTaps::k, c.kv_dim()},
          {"v", &LayerTaps::v, c.v_dim()},
          {"stats", &LayerTaps::stats, c.n_heads * 2},
          {"attn_out", &LayerTaps::attn_out, c.attn_out_dim()},
          {"out", &LayerTaps::out, c.dim}};
}

void append(std::vector<float>& dst, const std::vector<float>& src, int first, int count, int width) {
  dst.insert(dst.end(), src.begin() + std::size_t(first) * width, src.begin() + std::size_t(first + count) * width);
}

std::string compare(const char* what, int layer, const std::vector<float>& a, int a_first, const std::vector<float>& b,
                    int b_first, int count, int width) {
  for (int r = 0; r < count; ++r)
    for (int i = 0; i < width; ++i) {
      const float x = a[std::size_t(a_first + r) * width + i], y = b[std::size_t(b_first + r) * width + i];
      if (std::isfinite(x) && num::bits_of(x) == num::bits_of(y)) continue;
      std::ostringstream o;
      o.precision(9);
      o << what;
      if (layer >= 0) o << " (layer " << layer << ")";
      o << " row " << a_first + r << " vs " << b_first + r << " [" << i << "]: " << x << " vs " << y;
      return o.str();
    }
  return "";
}

}  // namespace

void append_rows(SequenceRows& dst, const StepOutput& out, int first, int count, const ModelConfig& c) {
  append(dst.logits, out.logits, first, count, c.vocab);
  dst.layers.resize(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l)
    for (const Field& f : fields(c)) append(dst.layers[l].*f.values, out.layers.at(l).*f.values, first, count, f.width);
  dst.rows += count;
}

SequenceRows run_chunks(Engine& engine, int seq, const std::vector<int>& tokens, const std::vector<int>& chunks) {
  SequenceRows rows;
  std::size_t next = 0;
  for (int n : chunks) {
    const StepOutput& out = engine.step({{seq, std::vector<int>(tokens.begin() + next, tokens.begin() + next + n)}}, true);
    append_rows(rows, out, 0, n, engine.config());
    next += n;
  }
  return rows;
}

SequenceRows run_one_shot(const Model& model, const EngineOptions& options, const std::vector<int>& tokens) {
  Engine engine(model, options);
  const int seq = engine.add_sequence(int(tokens.size()));
  return run_chunks(engine, seq, tokens, {int(tokens.size())});
}

std::string rows_difference(const SequenceRows& a, int a_first, const SequenceRows& b, int b_first, int count,
                            const ModelConfig& c) {
  if (a_first + count > a.rows || b_first + count > b.rows) return "row range outside the outputs";
  if (count == 0) return "";
  std::string d = compare("logits", -1, a.logits, a_first, b.logits, b_first, count, c.vocab);
  for (int l = 0; d.empty() && l < c.n_layers; ++l)
    for (const Field& f : fields(c)) {
      d = compare(f.name, l, a.layers[l].*f.values, a_first, b.layers[l].*f.values, b_first, count, f.width);
      if (!d.empty()) break;
    }
  return d;
}

std::string rows_gross_failure(const SequenceRows& r) {
  bool nonzero = false;
  for (float x : r.logits) {
    if (!std::isfinite(x)) return "a logit is not finite";
    nonzero |= x != 0.0f;
  }
  if (!nonzero) return "the logits are all zero";
  for (std::size_t l = 0; l < r.layers.size(); ++l)
    for (const std::vector<float>* v : {&r.layers[l].q, &r.layers[l].k, &r.layers[l].v, &r.layers[l].stats,
                                        &r.layers[l].attn_out, &r.layers[l].out})
      for (float x : *v)
        if (!std::isfinite(x)) return "a layer " + std::to_string(l) + " tap is not finite";
  return "";
}

}  // namespace kvfid::test
