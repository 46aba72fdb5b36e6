#include "cuda/engine/engine_options.h"

#include "reference/util/input_error.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below

Backend backend_from_string(const std::string& name, const std::string& source) {
  if (name == "twin") return Backend::twin;
  if (name == "cuda") return Backend::cuda;
  throw InputError(source, "unknown engine '" + name + "' (expected twin or cuda)");
}

SplitMode split_mode_from_string(const std::string& name, const std::string& source) {
  for (SplitMode m : {SplitMode::invariant, SplitMode::by_length})
    if (name == to_string(m)) return m;
  throw InputError(source, "unknown split mode '" + name + "' (expected invariant or by-length)");
}

std::string to_string(SplitMode mode) { return mode == SplitMode::invariant ? "invariant" : "by-length"; }

LatentPath latent_path_from_string(const std::string& name, const std::string& source) {
  for (LatentPath p : {LatentPath::reconstruct, LatentPath::absorb})
    if (name == to_string(p)) return p;
  throw InputError(source, "unknown latent-attention path '" + name + "' (expected reconstruct or absorb)");
}

std::string to_string(LatentPath path) { return path == LatentPath::reconstruct ? "reconstruct" : "absorb"; }

}  // namespace kvfid::engine
