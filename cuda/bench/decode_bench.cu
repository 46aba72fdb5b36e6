// Decode benchmark on a real-shaped FP16 model (a shape of reference/synth/synthetic_shapes.h:
// qwen2.5-7b by default -- 28 layers, 28 query / 4 KV heads, head_dim 128, dim 3584,
// hidden 18944, vocab 152064 -- or qwen2.5-0.5b, ...) with random weights generated on
// the device; a tied classifier is the embedding, read once. Reports, with CUDA events,
// the median over repeats after warm-ups:
//   - device-to-device cudaMemcpy bandwidth (the attainable figure on this device),
//   - one decode step at several context lengths: latency and bytes/latency as a
//     fraction of that bandwidth (bytes = every weight once + the KV cache read),
//   - the decode attention kernels alone (one layer) at 4K and 32K context.
// Not a test: it prints numbers. usage: kvfid_decode_bench [repeats] [shape]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "reference/numeric/convert.h"
#include "reference/synth/synthetic_shapes.h"
#include "cuda/kernels/cuda_engine.h"

namespace {

using kvfid::ref::FloatFormat;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

// Uniform in [-scale, scale) from a hash of the index, written as FP16.
__global__ void fill_random_f16(std::uint16_t* p, std::size_t n, std::uint64_t seed, float scale) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x) {
    std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (i + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float u = float(z >> 40) * 5.9604644775390625e-8f;  // [0, 1)
    p[i] = kvfid::engine::num::f32_to_f16((2.0f * u - 1.0f) * scale);
  }
}

__global__ void fill_value(float* p, std::size_t n, float v) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x) p[i] = v;
}

struct DeviceArena {
  std::vector<void*> buffers;
  std::size_t matrix_bytes = 0;
  std::uint64_t seed = 1;
  const void* matrix(std::size_t rows, std::size_t cols) {
    void* p = nullptr;
    check(cudaMalloc(&p, rows * cols * 2), "cudaMalloc weights");
    buffers.push_back(p);
    fill_random_f16<<<4096, 256>>>(static_cast<std::uint16_t*>(p), rows * cols, seed++, 1.7f / float(std::sqrt(double(cols))));
    check(cudaGetLastError(), "fill_random_f16");
    matrix_bytes += rows * cols * 2;
    return p;
  }
  const float* ones(std::size_t n) {
    void* p = nullptr;
    check(cudaMalloc(&p, n * 4), "cudaMalloc norm");
    buffers.push_back(p);
    fill_value<<<64, 256>>>(static_cast<float*>(p), n, 1.0f);
    check(cudaGetLastError(), "fill_value");
    return static_cast<const float*>(p);
  }
  ~DeviceArena() {
    for (void* p : buffers) cudaFree(p);
  }
};

template <class F>
double median_ms(int warmups, int repeats, F&& body) {
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "event");
  check(cudaEventCreate(&b), "event");
  for (int i = 0; i < warmups; ++i) body();
  std::vector<float> times;
  for (int i = 0; i < repeats; ++i) {
    check(cudaEventRecord(a), "record");
    body();
    check(cudaEventRecord(b), "record");
    check(cudaEventSynchronize(b), "sync");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, a, b), "elapsed");
    times.push_back(ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 20;
  const std::string shape = argc > 2 ? argv[2] : "qwen2.5-7b";
  const int warmups = 3;
  try {
    kvfid::engine::require_cuda_device();
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, 0), "properties");
    std::printf("device: %s (sm_%d%d, %.1f GiB)\n", prop.name, prop.major, prop.minor, prop.totalGlobalMem / 1073741824.0);

    // Attainable bandwidth: a 2 GiB device-to-device copy reads and writes every byte.
    const std::size_t copy_bytes = std::size_t(2) << 30;
    void *src = nullptr, *dst = nullptr;
    check(cudaMalloc(&src, copy_bytes), "cudaMalloc copy");
    check(cudaMalloc(&dst, copy_bytes), "cudaMalloc copy");
    check(cudaMemset(src, 1, copy_bytes), "memset");
    const double copy_ms = median_ms(warmups, repeats, [&] { cudaMemcpy(dst, src, copy_bytes, cudaMemcpyDeviceToDevice); });
    const double copy_gbs = 2.0 * copy_bytes / (copy_ms * 1e6);
    std::printf("memcpy_d2d: %.1f GB/s (median of %d, %.3f ms for 2 GiB)\n", copy_gbs, repeats, copy_ms);
    cudaFree(src);
    cudaFree(dst);

    kvfid::ref::ModelConfig c = kvfid::ref::synthetic_shape(shape);
    c.qkv_bias = false;  // the benchmark's weights have no biases (a few KB a layer: no effect on timing)
    std::printf("shape: %s (%d layers, %d/%d heads, head_dim %d, dim %d, hidden %d, vocab %d%s)\n", shape.c_str(),
                c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.dim, c.hidden, c.vocab,
                c.tied_classifier ? ", tied" : "");

    DeviceArena arena;
    kvfid::engine::DeviceWeights w;
    w.embedding = arena.matrix(c.vocab, c.dim);
    const std::size_t embedding_bytes = arena.matrix_bytes;  // only one row is read per token
    for (int l = 0; l < c.n_layers; ++l) {
      kvfid::engine::DeviceLayerWeights d;
      d.attn_norm = arena.ones(c.dim);
      d.wq = arena.matrix(c.q_dim(), c.dim);
      d.wk = arena.matrix(c.kv_dim(), c.dim);
      d.wv = arena.matrix(c.kv_dim(), c.dim);
      d.wo = arena.matrix(c.dim, c.q_dim());
      d.ffn_norm = arena.ones(c.dim);
      d.w1 = arena.matrix(c.hidden, c.dim);
      d.w3 = arena.matrix(c.hidden, c.dim);
      d.w2 = arena.matrix(c.dim, c.hidden);
      w.layers.push_back(d);
    }
    w.final_norm = arena.ones(c.dim);
    w.classifier = c.tied_classifier ? w.embedding : arena.matrix(c.vocab, c.dim);
    check(cudaDeviceSynchronize(), "weights");
    // Read per decode step: every matrix once, the embedding only as the classifier.
    const double weight_bytes = double(arena.matrix_bytes - (c.tied_classifier ? 0 : embedding_bytes));
    std::printf("model: %.2f GB of FP16 matrices read per decode step\n", weight_bytes / 1e9);

    kvfid::engine::CudaEngine engine(c, FloatFormat::f16, FloatFormat::f16, w);
    const int seq = engine.add_sequence(c.max_seq);  // zero-filled cache: timing does not depend on values
    std::vector<float> logits;
    for (int ctx : {1, 1024, 4096}) {
      const std::vector<kvfid::engine::StepRow> rows = {{seq, 42, ctx - 1}};
      const double ms = median_ms(warmups, repeats, [&] { engine.forward(rows, false, nullptr); });
      const double kv_bytes = 2.0 * c.n_layers * c.n_kv_heads * double(ctx) * c.head_dim * 2;
      const double gbs = (weight_bytes + kv_bytes) / (ms * 1e6);
      std::printf("decode batch=1 context=%d: %.3f ms/token, %.1f GB/s = %.1f%% of memcpy\n", ctx, ms, gbs,
                  100.0 * gbs / copy_gbs);
    }
    engine.copy_logits(1, logits);
    for (int ctx : {4096, std::min(32768, c.max_seq)}) {
      const std::vector<kvfid::engine::StepRow> rows = {{seq, 42, ctx - 1}};
      const double ms = median_ms(warmups, repeats, [&] { engine.attention_only(rows); });
      const double bytes = 2.0 * c.n_kv_heads * double(ctx) * c.head_dim * 2;  // one layer's K and V
      const double gbs = bytes / (ms * 1e6);
      std::printf("decode attention (one layer) context=%d: %.1f us, %.1f GB/s = %.1f%% of memcpy\n", ctx, ms * 1e3,
                  gbs, 100.0 * gbs / copy_gbs);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kvfid_decode_bench: %s\n", e.what());
    return 1;
  }
}
