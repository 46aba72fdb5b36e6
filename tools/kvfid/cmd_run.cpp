// kvfid run: the engine under test (CPU twin or CUDA) over a prompt, its taps dumped as
// F32 safetensors under the golden's names, so `kvfid check`-style comparisons read it
// like any other engine's dump; with --generate, also the tokens the engine samples
// after the prompt (cuda/engine/generate.h).
#include <iostream>
#include <map>

#include "cuda/engine/engine_forward.h"
#include "cuda/engine/generate.h"
#include "reference/util/input_error.h"
#include "reference/io/load_model.h"
#include "reference/io/prompt.h"
#include "reference/io/safetensors.h"
#include "reference/model/weight_storage.h"
#include "tools/kvfid/backend_unavailable.h"
#include "tools/kvfid/command.h"
#include "tools/kvfid/sampling_spec.h"
#include "tools/kvfid/threads_option.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the layers below: the specification,
using namespace kvfid::engine;  // and the engine
namespace {

constexpr const char* kGeneratedTensor = "generated";

// The sampled ids as an I32 tensor [n] (safetensors' little-endian bytes).
Tensor tokens_tensor(const std::vector<int>& ids) {
  Tensor t{DType::I32, {std::int64_t(ids.size())}, std::vector<std::uint8_t>(ids.size() * 4)};
  for (std::size_t i = 0; i < ids.size(); ++i)
    for (int b = 0; b < 4; ++b) t.bytes[i * 4 + b] = std::uint8_t(std::uint32_t(ids[i]) >> (8 * b));
  return t;
}

int run_engine(const ParsedArgs& args) {
  if (args.has("tokens") == args.has("prompt")) throw UsageError("give exactly one of --tokens and --prompt");
  EngineOptions options;
  options.backend = backend_from_string(args.str_or("engine", "twin"), "--engine");
  options.weights = weight_format_from_string(args.str_or("weights", "f32"), "--weights");
  options.kv = quant::parse_kv_policy_spec(args.str_or("kv", "f32"), "--kv");  // spread over the model's layers by the engine
  const long long chunk = args.integer_or("chunk", 0);
  if (chunk < 0) throw InputError("--chunk", "must be >= 0 (0 = the whole prompt at once)");
  options.chunk = int(std::min<long long>(chunk, 1 << 30));
  options.split = split_mode_from_string(args.str_or("split", "invariant"), "--split");
  options.latent = latent_path_from_string(args.str_or("mla", "reconstruct"), "--mla");
  options.taps = tap_selection_from_string(args.str_or("taps", "all"), "--taps");
  options.threads = threads_from_args(args);
  const std::string out = args.str("out");
  if (args.has("sample") && !args.has("generate")) throw UsageError("--sample needs --generate N");
  const long long generate = args.integer_or("generate", 0);
  if (generate < 0 || generate > (1 << 20)) throw InputError("--generate", "must be in [0, 2^20]");
  const SamplingParams sampling = args.has("sample") ? parse_sampling_spec(args.str("sample"), "--sample") : SamplingParams{};

  const Model model = load_model(args.str("model"));
  const std::vector<int> tokens =
      args.has("tokens") ? parse_token_list(args.str("tokens"), "--tokens") : read_prompt_file(args.str("prompt"));
  validate_tokens(tokens, model.config, args.has("tokens") ? "--tokens" : args.str("prompt"));
  check_tap_selection(options.taps, model.config, "--taps");

  std::cerr << "kvfid run: " << tokens.size() << " tokens on the " << args.str_or("engine", "twin") << " engine\n";
  TapSet taps;
  std::vector<int> generated;
  try {
    taps = engine_forward(model, tokens, options);
    if (generate > 0) generated = generate_tokens(model, {tokens}, options, sampling, int(generate)).front();
  } catch (const BackendUnavailable& e) {
    std::cerr << "kvfid run: " << unavailable_backend_message(e) << '\n';
    return kExitBadInput;
  }
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const TapTensor& t : taps) tensors.emplace_back(t.name, tensor_f32(t.shape, std::vector<float>(t.values.begin(), t.values.end())));
  std::map<std::string, std::string> metadata{{"engine", args.str_or("engine", "twin")},
                                              {"weights", options.weights.name},
                                              {"kv", options.kv.text},
                                              {"chunk", std::to_string(options.chunk)},
                                              {"split", to_string(options.split)},
                                              {"mla", to_string(options.latent)},
                                              {"model", model.source},
                                              {"model_sha256", model.sha256},
                                              {"tokens", std::to_string(tokens.size())}};
  if (options.taps.wants(tap_layer_name(0, "attn.probs")))  // engine_forward.cpp: who computes them
    metadata["attn_probs"] = options.kv.evict || model.config.mla.active()
                                 ? "computed by the engine at each step from its own scores and softmax statistics (m, l)"
                                 : "host-derived from the engine's q, cached keys and attention softmax statistics (m, l)";
  if (generate > 0) {
    tensors.emplace_back(kGeneratedTensor, tokens_tensor(generated));
    metadata["sample"] = to_string(sampling);
  }
  write_safetensors(out, tensors, metadata);
  std::cerr << "kvfid run: wrote " << taps.size() << " taps to " << out << '\n';
  return kExitPass;
}

}  // namespace

extern const CommandSpec kRunCommand;  // listed in commands.cpp
const CommandSpec kRunCommand{
    "run",
    "run the engine (CPU twin or CUDA) and dump its taps",
    "Runs the optimized engine over the prompt -- its bit-exact CPU twin or the CUDA kernels -- "
    "prefilling in chunks of --chunk tokens (0: all at once; 1: token-by-token decoding), and writes "
    "the taps as F32 safetensors under the golden's names (logits; per layer q, k, v as the KV cache "
    "holds them, attn.probs, attn.out, out), plus the engine's log-softmax of the logits as "
    "logprobs [T, vocab] (no golden has it: checks ignore it, kvfid bitwise compares it).",
    {
        {"model", "PATH", kModelPathHelp, true},
        {"tokens", "IDS", "comma-separated token ids (or use --prompt)"},
        {"prompt", "FILE", "file of token ids (or use --tokens)"},
        {"engine", "twin|cuda", "which engine runs (default twin)"},
        {"weights", "FORMAT", "weight storage: f32, f16, bf16 or a block format such as q8_0 (default f32)"},
        {"kv", "POLICY", "KV-cache policy: a format (f32, f16, bf16, q8_0, ...) or e.g. k=q8_0+v=f16+hot=64 (default f32)"},
        {"chunk", "N", "prefill chunk size; 0 = whole prompt (default 0)"},
        {"mla", "reconstruct|absorb",
         "latent attention's decode path (DeepSeek MLA models only): keys and values rebuilt from each cached row "
         "(default), or the up-projections absorbed into the query and output"},
        {"split", "invariant|by-length",
         "attention split size: fixed 256 keys (bits independent of chunking and batching) or chosen per step "
         "from its rows and longest context, as flash-decoding engines do (default invariant)"},
        threads_option(),
        {"taps", "all|logits|LIST",
         "which golden taps to write besides logprobs (default all); LIST: comma-separated tap names or globs, "
         "e.g. logits,layers.0.* (logits always)"},
        {"generate", "N", "after the prompt, draw N tokens one decode step at a time and write them as the I32 tensor "
                          "'generated' [N] (default 0)"},
        {"sample", "temperature=T,top_k=K,top_p=P,seed=S",
         "how --generate draws (default greedy): Philox-keyed by seed, sequence and position, so the tokens are the "
         "same on the twin and CUDA and whatever else is batched"},
        {"out", "FILE.safetensors", "where to write the taps", true},
    },
    run_engine,
};

}  // namespace kvfid::cli
