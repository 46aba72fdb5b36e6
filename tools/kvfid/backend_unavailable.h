#pragma once
// What the CLI says when the CUDA engine cannot run: the engine's reason (which names
// no flag) and the flag that picks the engine that can.
#include <string>

#include "cuda/engine/engine_options.h"

namespace kvfid::cli {

inline std::string unavailable_backend_message(const engine::BackendUnavailable& e) {
  return std::string(e.what()) + "; use --engine twin";
}

}  // namespace kvfid::cli
