// The twin's thread pool: every item exactly once whatever the item count, grain and
// thread count; worker ids in range; a body's exception reaches the caller and the
// pool keeps working; a pool outlives many jobs.
#include <atomic>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "cuda/twin/thread_pool.h"

namespace kvfid::engine {
namespace {

TEST(ThreadPool, EveryItemExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (std::int64_t items : {0, 1, 2, 7, 64, 1000})
      for (std::int64_t grain : {0, 1, 3, 64, 5000}) {
        std::vector<std::atomic<int>> seen(items);
        std::atomic<bool> bad_worker{false};
        pool.parallel_for(items, grain, [&](std::int64_t begin, std::int64_t end, int worker) {
          if (worker < 0 || worker >= threads) bad_worker = true;
          for (std::int64_t i = begin; i < end; ++i) seen[i]++;
        });
        for (std::int64_t i = 0; i < items; ++i)
          ASSERT_EQ(seen[i].load(), 1) << "item " << i << " of " << items << ", grain " << grain << ", threads " << threads;
        EXPECT_FALSE(bad_worker);
      }
  }
}

TEST(ThreadPool, ExceptionReachesCallerAndPoolGoesOn) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.parallel_for(100, 1,
                                 [](std::int64_t begin, std::int64_t, int) {
                                   if (begin == 57) throw std::runtime_error("item 57");
                                 }),
               std::runtime_error);
  std::atomic<int> count{0};
  pool.parallel_for(100, 1, [&](std::int64_t begin, std::int64_t end, int) { count += int(end - begin); });
  EXPECT_EQ(count.load(), 100);
}

TEST(ThreadPool, RefusesNoThreads) {
  EXPECT_THROW(ThreadPool(0), std::invalid_argument);
  EXPECT_THROW(ThreadPool(-2), std::invalid_argument);
  EXPECT_GE(hardware_threads(), 1);
}

}  // namespace
}  // namespace kvfid::engine
