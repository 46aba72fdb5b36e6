#include "tests/cuda/gpu/device_quant.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "cuda/kernels/cuda_engine.h"
#include "reference/formats/quant/registry.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types
using namespace kvfid::engine;  // the engine under test

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(e));
}

// A device array freed on every path out.
template <class T>
struct DeviceArray {
  T* p = nullptr;
  explicit DeviceArray(std::size_t n) { check(cudaMalloc(&p, std::max<std::size_t>(n, 1) * sizeof(T)), "cudaMalloc"); }
  ~DeviceArray() { cudaFree(p); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
};

constexpr int kThreads = 256;
constexpr int kGrid = 256;

template <class C>
__global__ void encode_kernel(const float* x, std::uint8_t* out, std::size_t n_blocks, quant::CodecParams p) {
  for (std::size_t b = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; b < n_blocks; b += std::size_t(gridDim.x) * blockDim.x)
    C::encode(x + b * C::kBlock, out + b * C::kBytes, p);
}

template <class C>
__global__ void decode_kernel(const std::uint8_t* blocks, float* out, std::size_t n, quant::CodecParams p) {
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < n; e += std::size_t(gridDim.x) * blockDim.x)
    out[e] = C::decode(blocks + e / C::kBlock * C::kBytes, int(e % C::kBlock), p);
}

}  // namespace

std::vector<std::uint8_t> device_encode(int format, const std::vector<float>& x, const quant::CodecParams& p) {
  require_cuda_device();
  const quant::FormatInfo& f = quant::all_formats().at(format);
  if (x.size() % f.block != 0) throw std::invalid_argument("device_encode: not a whole number of blocks");
  const std::size_t n_blocks = x.size() / f.block;
  std::vector<std::uint8_t> out(n_blocks * f.bytes);
  quant::with_codec(format, [&]<class C>() {
    DeviceArray<float> dx(x.size());
    DeviceArray<std::uint8_t> dout(out.size());
    check(cudaMemcpy(dx.p, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
    check(cudaMemset(dout.p, 0xA5, out.size()), "cudaMemset");  // poison: every byte must be written
    encode_kernel<C><<<kGrid, kThreads>>>(dx.p, dout.p, n_blocks, p);
    check(cudaGetLastError(), "encode_kernel");
    check(cudaMemcpy(out.data(), dout.p, out.size(), cudaMemcpyDeviceToHost), "cudaMemcpy");
  });
  return out;
}

std::vector<float> device_decode(int format, const std::vector<std::uint8_t>& blocks, const quant::CodecParams& p) {
  require_cuda_device();
  const quant::FormatInfo& f = quant::all_formats().at(format);
  if (blocks.size() % f.bytes != 0) throw std::invalid_argument("device_decode: not a whole number of blocks");
  std::vector<float> out(blocks.size() / f.bytes * f.block);
  quant::with_codec(format, [&]<class C>() {
    DeviceArray<std::uint8_t> din(blocks.size());
    DeviceArray<float> dout(out.size());
    check(cudaMemcpy(din.p, blocks.data(), blocks.size(), cudaMemcpyHostToDevice), "cudaMemcpy");
    check(cudaMemset(dout.p, 0xFF, out.size() * sizeof(float)), "cudaMemset");  // poison: NaN
    decode_kernel<C><<<kGrid, kThreads>>>(din.p, dout.p, out.size(), p);
    check(cudaGetLastError(), "decode_kernel");
    check(cudaMemcpy(out.data(), dout.p, out.size() * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
  });
  return out;
}

}  // namespace kvfid::test
