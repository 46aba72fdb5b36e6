// kvfid fixture: writes a deterministic synthetic model as a Hugging Face folder.
#include <iostream>

#include "reference/formats/float_format.h"
#include "reference/io/hf.h"
#include "reference/util/input_error.h"
#include "reference/synth/synthetic_model.h"
#include "tools/kvfid/command.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

namespace {

SynthPrecision precision_of(FloatFormat f) {
  switch (f) {
    case FloatFormat::f32: return SynthPrecision::f32;
    case FloatFormat::f16: return SynthPrecision::f16;
    case FloatFormat::bf16: return SynthPrecision::bf16;
  }
  throw InputError("--dtype", "unsupported format");
}

int run_fixture(const ParsedArgs& args) {
  const ModelConfig config = synthetic_shape(args.str("shape"));
  const long long seed = args.integer_or("seed", 0);
  if (seed < 0) throw InputError("--seed", "must be non-negative, got " + std::to_string(seed));
  const FloatFormat dtype = float_format_from_string(args.str_or("dtype", "f32"), "--dtype");
  const std::string out = args.str("out");

  // The weights are generated already rounded to the storage format, so the folder
  // holds exactly the model the reference computes with.
  SynthOptions options;
  options.precision = precision_of(dtype);
  const Model model = make_synthetic_model(config, std::uint64_t(seed), options);
  write_hf_model(out, model, dtype);
  std::cerr << "kvfid fixture: wrote " << out << " (" << args.str("shape") << ", seed " << seed << ", "
            << to_string(dtype) << ", " << config.parameter_count() << " parameters)\n";
  return kExitPass;
}

}  // namespace

extern const CommandSpec kFixtureCommand{
    "fixture",
    "write a synthetic test model (HF config.json + model.safetensors)",
    "Generates a deterministic synthetic model of a named shape, with K outlier channels and "
    "massive residual dimensions like trained models, and writes it as a Hugging Face folder "
    "(config.json + model.safetensors). The same shape, seed and dtype always give the same bytes. "
    "Shapes: tiny-llama (MHA), tiny-qwen2 (7:1 GQA, q/k/v bias), tiny-mqa (one KV head, tied classifier).",
    {
        {"shape", "NAME", "tiny-llama, tiny-qwen2 or tiny-mqa", true},
        {"seed", "S", "non-negative integer seeding every weight", true},
        {"out", "DIR", "folder to write (created if missing); written atomically", true},
        {"dtype", "f32|f16|bf16", "storage format of the weights (default f32); values are generated in it", false},
    },
    run_fixture,
};

}  // namespace kvfid::cli
