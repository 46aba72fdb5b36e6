// Built instead of device_quant.cu when CMake found no CUDA compiler: gpu_quant_test
// then skips with this reason, as the engine's GPU tests do.
#include "cuda/engine/engine_options.h"
#include "tests/cuda/gpu/device_quant.h"

namespace kvfid::test {
using namespace kvfid::engine;  // the engine under test

namespace {
constexpr const char* kNoCuda = "this build has no CUDA kernels (KVFID_CUDA=OFF or no nvcc)";
}

std::vector<std::uint8_t> device_encode(int, const std::vector<float>&, const quant::CodecParams&) {
  throw BackendUnavailable(kNoCuda);
}

std::vector<float> device_decode(int, const std::vector<std::uint8_t>&, const quant::CodecParams&) {
  throw BackendUnavailable(kNoCuda);
}

}  // namespace kvfid::test
