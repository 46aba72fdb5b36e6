#pragma once
// Independent items split across threads for the MPFR forward (util/parallel_chunks.h:
// each item computed by exactly one thread, so results are bit-identical for 1 or N
// threads). Every chunk runs in an ExponentRangeScope and every worker frees MPFR's
// per-thread caches before it exits.
#include <cstdint>
#include <functional>

namespace kvfid::ref {

// Threads to use for a request: 0 means every hardware thread. A single thread when
// this MPFR keeps its state in globals instead of thread-local storage.
int resolve_thread_count(int requested);

// Calls body(begin, end) on contiguous chunks covering [0, n), one chunk per thread
// (the calling thread takes the first). `threads` as returned by resolve_thread_count.
void parallel_for(std::int64_t n, int threads, const std::function<void(std::int64_t, std::int64_t)>& body);

}  // namespace kvfid::ref
