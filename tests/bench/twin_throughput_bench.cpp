// Twin throughput (not a test; run by hand on a real-shaped model):
// model load and engine construction time, prefill tokens/s of a `context`-token
// prompt in one step, then decode tokens/s one token per step on top of it, for each
// thread count; and a STREAM-style copy on the same thread counts, against which
// decode is reported as a fraction of its bandwidth-bound limit (the matrices' bytes
// a decode step reads once, plus the KV cache it reads, over the copy bandwidth).
//   twin_throughput_bench MODEL [threads=1,2] [context=512] [decode=8] [weights=bf16] [kv=f16]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cuda/engine/engine.h"
#include "reference/io/load_model.h"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
// CPU seconds of every thread of the process so far: on a shared machine, wall time
// measures the other tenants too; tokens per CPU-second does not.
double cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}
double peak_rss_gib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / (1024.0 * 1024.0);
}

// STREAM Copy (b = a) over `threads` threads, each its own contiguous part; the best of
// kTrials, counting bytes read plus bytes written as STREAM does. 2 x 256 MiB: far
// beyond any cache.
constexpr std::size_t kCopyFloats = std::size_t(64) << 20;
constexpr int kTrials = 5;
double copy_gbs(int threads) {
  std::vector<float> a(kCopyFloats, 1.0f), b(kCopyFloats, 0.0f);
  double best = 1e30;
  for (int trial = 0; trial < kTrials; ++trial) {
    const auto t0 = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const std::size_t lo = kCopyFloats * t / threads, hi = kCopyFloats * (t + 1) / threads;
        for (std::size_t i = lo; i < hi; ++i) b[i] = a[i];
      });
    for (std::thread& th : pool) th.join();
    best = std::min(best, since(t0));
  }
  if (b[kCopyFloats / 2] != 1.0f) std::fprintf(stderr, "copy check failed\n");
  return 2.0 * kCopyFloats * sizeof(float) / best / 1e9;
}

std::vector<int> parse_list(const std::string& text) {
  std::vector<int> v;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) v.push_back(std::stoi(item));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kvfid::ref;
  using namespace kvfid::engine;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL [threads=1,2] [context=512] [decode=8] [weights=bf16] [kv=f16]\n", argv[0]);
    return 2;
  }
  const std::vector<int> thread_counts = parse_list(argc > 2 ? argv[2] : "1,2");
  const int context = argc > 3 ? std::stoi(argv[3]) : 512;
  const int decode = argc > 4 ? std::stoi(argv[4]) : 8;
  const std::string weights = argc > 5 ? argv[5] : "bf16", kv = argc > 6 ? argv[6] : "f16";

  auto t0 = Clock::now();
  const Model model = load_model(argv[1]);
  const double load_s = since(t0);
  const ModelConfig& c = model.config;
  std::printf("model %s: dim %d, hidden %d, layers %d, heads %d/%d, head_dim %d, vocab %d; weights %s, kv %s\n",
              argv[1], c.dim, c.hidden, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.vocab, weights.c_str(),
              kv.c_str());
  std::printf("load_model: %.1f s, peak RSS %.2f GiB\n", load_s, peak_rss_gib());

  // Bytes a decode step must read: every matrix once in its storage format (the tied
  // classifier is the embedding; the embedding itself is one row), and the K and V of
  // the context in the KV format.
  const double w_bytes = weights == "f16" || weights == "bf16" ? 2 : 4;  // block formats are packed as FP32
  const double per_layer = double(c.q_dim()) * c.dim * 2 + 2.0 * c.kv_dim() * c.dim + 3.0 * c.hidden * c.dim;
  const double matrix_bytes = (per_layer * c.n_layers + double(c.vocab) * c.dim) * w_bytes;
  const double kv_bytes = 2.0 * c.n_layers * c.kv_dim() * context * (kv == "f32" ? 4 : 2);

  std::vector<int> tokens(context + decode);
  for (int i = 0; i < int(tokens.size()); ++i) tokens[i] = int((std::uint64_t(i) * 7919 + 13) % std::uint64_t(c.vocab));
  std::vector<float> first_logits;
  std::printf("%-7s %7s %9s %9s %13s %11s %12s %11s %12s %8s\n", "threads", "pack_s", "copy_GB/s", "prefill_s",
              "prefill_tok/s", "tok/cpu_s", "decode_tok/s", "tok/cpu_s", "decode_limit", "fraction");
  for (int threads : thread_counts) {
    EngineOptions o;
    o.weights = weight_format_from_string(weights, "weights");
    o.kv = quant::parse_kv_policy_spec(kv, "kv");
    o.threads = threads;
    o.taps = TapSelection::logits;
    t0 = Clock::now();
    Engine engine(model, o);
    const double pack_s = since(t0);
    const int seq = engine.add_sequence(context + decode);
    t0 = Clock::now();
    double c0 = cpu_s();
    engine.step({{seq, std::vector<int>(tokens.begin(), tokens.begin() + context)}});
    const double prefill_s = since(t0), prefill_cpu = cpu_s() - c0;
    t0 = Clock::now();
    c0 = cpu_s();
    const StepOutput* last = nullptr;
    for (int i = 0; i < decode; ++i) last = &engine.step({{seq, {tokens[context + i]}}});
    const double decode_s = since(t0), decode_cpu = cpu_s() - c0;
    // The thread count must not change a bit (the property suite proves it on small
    // models; here a cheap look at the real shape).
    if (first_logits.empty()) first_logits = last->logits;
    const bool same = first_logits.size() == last->logits.size() &&
                      std::memcmp(first_logits.data(), last->logits.data(), first_logits.size() * sizeof(float)) == 0;
    const double bandwidth = copy_gbs(threads);
    const double limit = bandwidth * 1e9 / (matrix_bytes + kv_bytes);
    const double decode_tps = decode / decode_s;
    std::printf("%-7d %7.1f %9.1f %9.1f %13.2f %11.2f %12.2f %11.2f %12.2f %8.3f%s\n", threads, pack_s, bandwidth,
                prefill_s, context / prefill_s, context / prefill_cpu, decode_tps, decode / decode_cpu, limit,
                decode_tps / limit,
                same ? "" : "  LOGITS DIFFER FROM THE FIRST THREAD COUNT");
    std::fflush(stdout);
  }
  std::printf("bytes read per decode token: %.1f MB of matrices + %.1f MB of KV at context %d\n", matrix_bytes / 1e6,
              kv_bytes / 1e6, context);
  std::printf("peak RSS %.2f GiB\n", peak_rss_gib());
  return 0;
}
