#include "reference/synth/synthetic_hf.h"

#include <stdexcept>

#include "reference/synth/synthetic_model.h"

namespace kvfid::ref {

namespace {

SynthPrecision precision_of(FloatFormat f) {
  switch (f) {
    case FloatFormat::f32: return SynthPrecision::f32;
    case FloatFormat::f16: return SynthPrecision::f16;
    case FloatFormat::bf16: return SynthPrecision::bf16;
  }
  throw std::logic_error("unknown storage format");
}

}  // namespace

void write_synthetic_hf(const std::string& dir, const ModelConfig& config, int layout_layers, std::uint64_t seed,
                        FloatFormat dtype, const HfStreamOptions& options) {
  SynthOptions synth;
  synth.precision = precision_of(dtype);
  synth.layout_layers = layout_layers;
  const SyntheticWeights weights(config, seed, synth);
  write_hf_streamed(
      dir, config, dtype,
      [&](const HfTensorSlot& slot, std::int64_t begin, std::int64_t end, double* values) {
        weights.rows(slot.role, slot.layer, begin, end, values);
      },
      options);
}

}  // namespace kvfid::ref
