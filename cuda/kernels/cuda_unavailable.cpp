// Built instead of the kernels when CMake found no CUDA compiler.
#include "cuda/engine/backend.h"

namespace kvfid::engine {

std::unique_ptr<EngineBackend> make_cuda_backend(const Model&, const EngineOptions&) {
  throw BackendUnavailable("the CUDA engine is not built: this kvfid was configured without a CUDA compiler "
                           "(KVFID_CUDA=OFF or no nvcc)");
}

}  // namespace kvfid::engine
