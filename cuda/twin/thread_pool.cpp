#include "cuda/twin/thread_pool.h"

#include <stdexcept>
#include <string>

namespace kvfid::engine {

ThreadPool::ThreadPool(int threads) {
  if (threads < 1) throw std::invalid_argument("thread count " + std::to_string(threads) + " is not positive");
  workers_.reserve(threads - 1);
  for (int w = 1; w < threads; ++w) workers_.emplace_back([this, w] { worker_loop(w); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::work(int worker) {
  for (;;) {
    const std::int64_t begin = next_.fetch_add(grain_);
    if (begin >= items_) return;
    const std::int64_t end = begin + grain_ < items_ ? begin + grain_ : items_;
    try {
      fn_(body_, begin, end, worker);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }
}

void ThreadPool::run(std::int64_t items, std::int64_t grain, Trampoline fn, void* body) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = fn;
    body_ = body;
    items_ = items;
    grain_ = grain;
    next_.store(0);
    error_ = nullptr;
    busy_ = int(workers_.size());
    ++generation_;
  }
  wake_.notify_all();
  work(0);
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [this] { return busy_ == 0; });
  if (error_) std::rethrow_exception(error_);
}

void ThreadPool::worker_loop(int worker) {
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    work(worker);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --busy_;
    }
    done_.notify_one();
  }
}

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : int(n);
}

}  // namespace kvfid::engine
