// kvfid convert: any supported model -> a Hugging Face style folder.
#include <iostream>

#include "reference/formats/float_format.h"
#include "reference/io/hf.h"
#include "reference/io/atomic_file.h"
#include "reference/util/input_error.h"
#include "reference/io/load_model.h"
#include "reference/model/rope_permute.h"
#include "tools/kvfid/command.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

namespace {

int run_convert(const ParsedArgs& args) {
  const std::string out = args.str("out");
  const FloatFormat storage = float_format_from_string(args.str_or("dtype", "f32"), "--dtype");
  check_output_folder(out);
  std::cerr << "kvfid convert: loading " << args.str("model") << '\n';
  const Model model = permute_to_rotate_half(load_model(args.str("model")));
  std::cerr << "kvfid convert: writing " << out << '\n';
  try {
    write_hf_model(out, model, storage);
  } catch (const NotRepresentableError& e) {
    throw InputError(e.source(), e.problem() + "; choose a wider --dtype");
  }
  std::cout << "wrote " << out << " (" << to_string(model.config.arch) << ", " << model.config.parameter_count()
            << " parameters, " << to_string(storage) << ", rotate-half RoPE)\n";
  return kExitPass;
}

}  // namespace

extern const CommandSpec kConvertCommand = {
    "convert",
    "write any supported model as a Hugging Face style folder",
    "Loads a llama2.c checkpoint or a model folder and writes config.json + model.safetensors into\n"
    "--out (both or neither). Interleaved RoPE is turned into rotate-half by permuting the q and k rows\n"
    "of each head, which leaves the logits unchanged. Refuses a --dtype that cannot hold every weight\n"
    "exactly, so the folder is always exactly the loaded model.",
    {{"model", "PATH", "llama2.c checkpoint or Hugging Face style model folder", true},
     {"out", "DIR", "folder to write (its parent must exist)", true},
     {"dtype", "f32|f16|bf16", "storage format of the weights (default f32)", false}},
    run_convert,
};

}  // namespace kvfid::cli
