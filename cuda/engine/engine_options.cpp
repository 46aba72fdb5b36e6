#include "cuda/engine/engine_options.h"

#include "reference/io/input_error.h"

namespace kvfid {

Backend backend_from_string(const std::string& name, const std::string& source) {
  if (name == "twin") return Backend::twin;
  if (name == "cuda") return Backend::cuda;
  throw InputError(source, "unknown engine '" + name + "' (expected twin or cuda)");
}

}  // namespace kvfid
