#pragma once
// Independent items split across threads: [0, n) cut into one contiguous chunk per
// thread, the calling thread taking the first. Each item is computed by exactly one
// thread, so a body whose items do not depend on each other gives the same result for
// any thread count. The first exception of any chunk is rethrown after all have joined.
#include <cstdint>
#include <functional>

namespace kvfid::ref {

using ChunkBody = std::function<void(std::int64_t begin, std::int64_t end)>;

// `worker_exit` (may be empty) runs on each worker thread after its chunk, before the
// thread ends: where a library keeps per-thread caches to free (MPFR's, mp_parallel.h).
void parallel_chunks(std::int64_t n, int threads, const ChunkBody& body, const std::function<void()>& worker_exit = {});

// Every hardware thread (at least 1), for requests of 0.
int hardware_threads();

}  // namespace kvfid::ref
