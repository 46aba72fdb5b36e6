#include "tests/cuda/gpu/device_convert.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "reference/numeric/convert.h"
#include "cuda/kernels/cuda_engine.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types
using namespace kvfid::engine;  // the engine under test
namespace num = kvfid::engine::num;  // the engine's arithmetic (which sees the numeric core's too)

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(e));
}

struct F16ToF32 {
  __device__ float operator()(std::uint16_t h) const { return num::f16_to_f32(h); }
};
struct Bf16ToF32 {
  __device__ float operator()(std::uint16_t h) const { return num::bf16_to_f32(h); }
};
struct F32ToF16 {
  __device__ std::uint16_t operator()(float f) const { return num::f32_to_f16(f); }
};
struct F32ToBf16 {
  __device__ std::uint16_t operator()(float f) const { return num::f32_to_bf16(f); }
};

template <class In, class Out, class Op>
__global__ void convert_kernel(const In* in, Out* out, std::size_t n, Op op) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    out[i] = op(in[i]);
}

template <class Out, class In, class Op>
std::vector<Out> run(const std::vector<In>& in, Op op) {
  require_cuda_device();
  In* din = nullptr;
  Out* dout = nullptr;
  const std::size_t n = in.size();
  check(cudaMalloc(&din, std::max<std::size_t>(n, 1) * sizeof(In)), "cudaMalloc");
  check(cudaMalloc(&dout, std::max<std::size_t>(n, 1) * sizeof(Out)), "cudaMalloc");
  std::vector<Out> out(n);
  try {
    check(cudaMemcpy(din, in.data(), n * sizeof(In), cudaMemcpyHostToDevice), "cudaMemcpy");
    check(cudaMemset(dout, 0xFF, n * sizeof(Out)), "cudaMemset");  // poison: every element must be written
    convert_kernel<<<256, 256>>>(din, dout, n, op);
    check(cudaGetLastError(), "convert_kernel");
    check(cudaMemcpy(out.data(), dout, n * sizeof(Out), cudaMemcpyDeviceToHost), "cudaMemcpy");
  } catch (...) {
    cudaFree(din);
    cudaFree(dout);
    throw;
  }
  cudaFree(din);
  cudaFree(dout);
  return out;
}

}  // namespace

std::vector<float> device_f16_to_f32(const std::vector<std::uint16_t>& in) { return run<float>(in, F16ToF32{}); }
std::vector<float> device_bf16_to_f32(const std::vector<std::uint16_t>& in) { return run<float>(in, Bf16ToF32{}); }
std::vector<std::uint16_t> device_f32_to_f16(const std::vector<float>& in) { return run<std::uint16_t>(in, F32ToF16{}); }
std::vector<std::uint16_t> device_f32_to_bf16(const std::vector<float>& in) { return run<std::uint16_t>(in, F32ToBf16{}); }

}  // namespace kvfid::test
