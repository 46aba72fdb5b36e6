#include "reference/mp/mp_parallel.h"

#include <mpfr.h>

#include "reference/mp/mp_arith.h"
#include "reference/util/parallel_chunks.h"

namespace kvfid::ref {

int resolve_thread_count(int requested) {
  if (!mpfr_buildopt_tls_p()) return 1;
  if (requested > 0) return requested;
  return hardware_threads();
}

void parallel_for(std::int64_t n, int threads, const std::function<void(std::int64_t, std::int64_t)>& body) {
  parallel_chunks(
      n, threads,
      [&](std::int64_t begin, std::int64_t end) {
        ExponentRangeScope range;
        body(begin, end);
      },
      [] { mpfr_free_cache2(MPFR_FREE_LOCAL_CACHE); });
}

}  // namespace kvfid::ref
