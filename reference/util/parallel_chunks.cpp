#include "reference/util/parallel_chunks.h"

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

namespace kvfid::ref {

void parallel_chunks(std::int64_t n, int threads, const ChunkBody& body, const std::function<void()>& worker_exit) {
  if (n <= 0) return;
  const std::int64_t chunks = std::clamp<std::int64_t>(threads, 1, n);
  const std::int64_t chunk = (n + chunks - 1) / chunks;
  std::vector<std::exception_ptr> errors(chunks);
  auto run_chunk = [&](std::int64_t c) {
    try {
      body(c * chunk, std::min(n, (c + 1) * chunk));
    } catch (...) {
      errors[c] = std::current_exception();
    }
  };
  std::vector<std::thread> workers;
  for (std::int64_t c = 1; c < chunks && c * chunk < n; ++c)
    workers.emplace_back([&, c] {
      run_chunk(c);
      if (worker_exit) worker_exit();
    });
  run_chunk(0);
  for (auto& w : workers) w.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

int hardware_threads() { return int(std::max(1u, std::thread::hardware_concurrency())); }

}  // namespace kvfid::ref
