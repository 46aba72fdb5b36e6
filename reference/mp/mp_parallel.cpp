#include "reference/mp/mp_parallel.h"

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

#include <mpfr.h>

#include "reference/mp/mp_arith.h"

namespace kvfid::ref {

int resolve_thread_count(int requested) {
  if (!mpfr_buildopt_tls_p()) return 1;
  if (requested > 0) return requested;
  return std::max(1u, std::thread::hardware_concurrency());
}

void parallel_for(std::int64_t n, int threads, const std::function<void(std::int64_t, std::int64_t)>& body) {
  if (n <= 0) return;
  const std::int64_t chunks = std::clamp<std::int64_t>(threads, 1, n);
  const std::int64_t chunk = (n + chunks - 1) / chunks;
  std::vector<std::exception_ptr> errors(chunks);
  auto run_chunk = [&](std::int64_t c) {
    try {
      ExponentRangeScope range;
      body(c * chunk, std::min(n, (c + 1) * chunk));
    } catch (...) {
      errors[c] = std::current_exception();
    }
  };
  std::vector<std::thread> workers;
  for (std::int64_t c = 1; c < chunks && c * chunk < n; ++c)
    workers.emplace_back([&, c] {
      run_chunk(c);
      mpfr_free_cache2(MPFR_FREE_LOCAL_CACHE);
    });
  run_chunk(0);
  for (auto& w : workers) w.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace kvfid::ref
