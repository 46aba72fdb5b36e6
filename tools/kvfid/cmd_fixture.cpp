// kvfid fixture: writes a deterministic synthetic model as a Hugging Face folder.
#include <iostream>
#include <optional>
#include <sstream>

#include "reference/formats/float_format.h"
#include "reference/io/hf_stream.h"
#include "reference/util/input_error.h"
#include "reference/util/parallel_chunks.h"
#include "reference/synth/synthetic_hf.h"
#include "reference/synth/synthetic_shapes.h"
#include "reference/util/progress.h"
#include "tools/kvfid/command.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

namespace {

// Folders from this size on show a progress bar with an ETA; smaller ones take about a
// second (measured: the 0.3 MB tiny fixtures in milliseconds).
constexpr std::uint64_t kProgressBytes = std::uint64_t(64) << 20;

bool is_real_shape(const std::string& name) {
  for (const std::string& n : real_shape_names())
    if (n == name) return true;
  return false;
}

std::optional<long long> optional_integer(const ParsedArgs& args, const char* name) {
  if (!args.has(name)) return std::nullopt;
  return args.integer_or(name, 0);
}

std::string gigabytes(std::uint64_t bytes) {
  std::ostringstream o;
  o.precision(3);
  o << double(bytes) / 1e9 << " GB";
  return o.str();
}

int run_fixture(const ParsedArgs& args) {
  const std::string shape = args.str("shape");
  const ModelConfig full = synthetic_shape(shape, "--shape");
  const std::optional<long long> layers = optional_integer(args, "layers"), vocab = optional_integer(args, "vocab");
  if (layers && (*layers < 1 || *layers > full.n_layers))
    throw InputError("--layers", "must be in [1, " + std::to_string(full.n_layers) + "] for " + shape + ", got " +
                                     std::to_string(*layers));
  if (vocab && (*vocab < kMinReducedVocab || *vocab > full.vocab))
    throw InputError("--vocab", "must be in [" + std::to_string(kMinReducedVocab) + ", " + std::to_string(full.vocab) +
                                    "] for " + shape + ", got " + std::to_string(*vocab));
  const ModelConfig config = reduced_shape(full, layers, vocab, "--layers/--vocab");
  const long long seed = args.integer_or("seed", 0);
  if (seed < 0) throw InputError("--seed", "must be non-negative, got " + std::to_string(seed));
  // Real models ship in BF16; the tiny fixtures keep their historical F32 default.
  const FloatFormat dtype =
      float_format_from_string(args.str_or("dtype", is_real_shape(shape) ? "bf16" : "f32"), "--dtype");
  const long long threads = args.integer_or("threads", 0);
  if (threads < 0 || threads > 1024) throw InputError("--threads", "must be 0 (all cores) to 1024, got " + std::to_string(threads));
  const std::string out = args.str("out");

  // The weights are generated already rounded to the storage format, so the folder
  // holds exactly the model the reference computes with; they are streamed to the file
  // a chunk at a time, never held whole.
  const std::uint64_t bytes = hf_folder_bytes(config, dtype);
  std::cerr << "kvfid fixture: " << shape << (config.n_layers != full.n_layers || config.vocab != full.vocab
                                                   ? " reduced to " + std::to_string(config.n_layers) + " layers, vocab " +
                                                         std::to_string(config.vocab)
                                                   : "")
            << ", " << config.parameter_count() << " parameters, " << gigabytes(bytes) << " in " << to_string(dtype)
            << "\n";
  std::optional<Progress> progress;
  if (bytes >= kProgressBytes) progress.emplace(Progress::on_stderr("kvfid fixture: MiB written"));
  HfStreamOptions stream;
  stream.threads = threads == 0 ? hardware_threads() : int(threads);
  stream.progress = progress ? &*progress : nullptr;
  write_synthetic_hf(out, config, full.n_layers, std::uint64_t(seed), dtype, stream);
  std::cerr << "kvfid fixture: wrote " << out << " (" << shape << ", seed " << seed << ", " << to_string(dtype) << ")\n";
  return kExitPass;
}

}  // namespace

extern const CommandSpec kFixtureCommand{
    "fixture",
    "write a synthetic test model (HF config.json + model.safetensors)",
    "Generates a deterministic synthetic model of a named shape, with K outlier channels and "
    "massive residual dimensions like trained models, and writes it as a Hugging Face folder "
    "(config.json + model.safetensors). The same shape, seed, dtype, --layers and --vocab always "
    "give the same bytes, whatever the thread count. "
    "Tiny shapes: tiny-llama (MHA), tiny-qwen2 (7:1 GQA, q/k/v bias), tiny-mqa (one KV head, tied "
    "classifier), tiny-llama3 (2:1 GQA, theta 500000, Llama 3 RoPE scaling with an original context of 64 "
    "so that all three frequency bands occur), tiny-qwen3 (Qwen3's q/k norms, 2:1 GQA, heads of 32 "
    "wider than the model: q_dim 128 > dim 64, tied), tiny-mistral (every layer's attention windowed to 6 "
    "positions), tiny-gemma2 (Gemma 2's block: embedding times bf16(sqrt 72) = 8.5, gains 1 + w, four norms, "
    "GeGLU, scores over sqrt(24) soft-capped at 4, logits soft-capped at 3, layer 0 windowed to 5 positions, "
    "2:1 GQA, q_dim 64 < dim 72, tied), tiny-mla (DeepSeek-V2's latent attention: a low-rank query of 24, a "
    "latent of 32 and a shared RoPE key of 8 cached instead of K and V, keys of 16 + 8 and values of 16, "
    "4 heads, untied). Real shapes, with the public models' configurations (BF16 by default): "
    "qwen2.5-0.5b (896 wide, 24 layers, 14/2 heads of 64, vocab 151936, tied, q/k/v bias; 0.99 GB), "
    "qwen2.5-7b (3584 wide, 28 layers, 28/4 heads of 128, vocab 152064; 15.2 GB), "
    "llama-3.2-1b (2048 wide, 16 layers, 32/8 heads of 64, vocab 128256, tied, llama3 RoPE scaling "
    "factor 32; 2.5 GB), "
    "llama-3.1-8b (4096 wide, 32 layers, 32/8 heads of 128, vocab 128256, llama3 RoPE scaling factor 8; "
    "16.1 GB), "
    "qwen3-0.6b (1024 wide, 28 layers, 16/8 heads of 128, vocab 151936, tied, q/k norms; 1.2 GB), "
    "qwen3-8b (4096 wide, 36 layers, 32/8 heads of 128, vocab 151936, q/k norms; 16.4 GB), "
    "mistral-7b (4096 wide, 32 layers, 32/8 heads of 128, vocab 32000, sliding window 4096; 14.5 GB), "
    "gemma-2-2b (2304 wide, 26 layers, 8/4 heads of 256, vocab 256000, tied, soft-caps 50 and 30, window 4096 "
    "on even layers; 5.2 GB), "
    "gemma-2-9b (3584 wide, 42 layers, 16/8 heads of 256, vocab 256000, tied, as gemma-2-2b; 18.5 GB). "
    "--layers and --vocab cut a shape to its first layers and token ids; the result is exactly the "
    "corresponding part of the full model of the same seed. Big models are streamed to disk a chunk "
    "at a time (bounded memory), refused up front if the disk lacks the room, and "
    "written atomically with a progress bar.",
    {
        {"shape", "NAME",
         "tiny-llama, tiny-qwen2, tiny-mqa, tiny-llama3, tiny-qwen3, tiny-mistral, tiny-gemma2, tiny-mla, qwen2.5-0.5b, "
         "qwen2.5-7b, llama-3.2-1b, llama-3.1-8b, qwen3-0.6b, qwen3-8b, mistral-7b, gemma-2-2b or gemma-2-9b",
         true},
        {"seed", "S", "non-negative integer seeding every weight", true},
        {"out", "DIR", "folder to write (created if missing); written atomically", true},
        {"dtype", "f32|f16|bf16",
         "storage format of the weights (default bf16 for the real shapes, f32 for the tiny ones); values are "
         "generated in it",
         false},
        {"layers", "N", "keep the first N layers (1 to the shape's depth)", false},
        {"vocab", "V", "keep the first V token ids (128 to the shape's vocabulary; 128 keeps every committed prompt valid)",
         false},
        {"threads", "N", "threads generating the weights, 0 = all cores (default 0); the bytes do not depend on it",
         false},
    },
    run_fixture,
};

}  // namespace kvfid::cli
