#pragma once
// The twin's worker threads: one pool per engine, created with it. parallel_for hands
// out whole work items -- each what one GPU block owns (output rows of a matvec, a
// row's attention head, a logits row) -- so every value is computed by one thread in
// the kernel's own order and no reduction ever crosses threads: the results are the
// same bits for any thread count. Which thread runs an item is not fixed (items are
// claimed from a shared counter), which is fine for that same reason.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace kvfid::engine {

class ThreadPool {
 public:
  // threads >= 1 (the caller's thread counts as one); throws std::invalid_argument
  // otherwise.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }

  // Calls body(begin, end, worker) over [0, items) cut into ranges of at most `grain`
  // items, each range exactly once; worker in [0, size()) names the calling thread,
  // so the body may use per-worker scratch. Returns when every range is done; rethrows
  // the first exception a body threw. Not reentrant.
  template <class Body>
  void parallel_for(std::int64_t items, std::int64_t grain, Body&& body) {
    if (items <= 0) return;
    if (grain < 1) grain = 1;
    if (workers_.empty() || items <= grain) {
      body(std::int64_t(0), items, 0);
      return;
    }
    run(items, grain, [](void* b, std::int64_t begin, std::int64_t end, int worker) {
      (*static_cast<Body*>(b))(begin, end, worker);
    }, &body);
  }

 private:
  using Trampoline = void (*)(void*, std::int64_t, std::int64_t, int);
  void run(std::int64_t items, std::int64_t grain, Trampoline fn, void* body);
  void work(int worker);  // claims ranges of the current job until none is left
  void worker_loop(int worker);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::uint64_t generation_ = 0;  // bumped per job; workers wait for a new one
  bool stopping_ = false;
  int busy_ = 0;                  // workers still inside the current job
  // The current job (written under mutex_ before generation_ is bumped).
  Trampoline fn_ = nullptr;
  void* body_ = nullptr;
  std::int64_t items_ = 0, grain_ = 1;
  std::atomic<std::int64_t> next_{0};
  std::exception_ptr error_;
};

// The default thread count: the hardware's, at least 1.
int hardware_threads();

}  // namespace kvfid::engine
