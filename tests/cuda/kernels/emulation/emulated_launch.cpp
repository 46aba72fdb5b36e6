#include "tests/cuda/kernels/emulation/emulated_launch.h"

#include <ucontext.h>

#include <memory>
#include <stdexcept>
#include <vector>

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace kvfid::engine::kernels {
float smem[kEmulatedSharedFloats];
}  // namespace kvfid::engine::kernels

namespace kvfid::test {
namespace {

constexpr std::size_t kStackBytes = 128 * 1024;  // a fiber's stack: the kernels keep small arrays there
constexpr int kWarp = 32;

enum class State { ready, at_block_barrier, at_warp_barrier, done };

struct Fiber {
  ucontext_t context;
  std::unique_ptr<char[]> stack;
  State state = State::ready;
  uint3 index;
};

// The block being run: its fibers, the scheduler's context and the warps' exchange slots.
struct Block {
  std::vector<Fiber> fibers;
  ucontext_t scheduler;
  int current = -1;
  const std::function<void()>* kernel = nullptr;
  std::vector<float> exchange;  // [threads] a warp's values in a shuffle
};
Block* running = nullptr;

void fiber_main() {
  running->kernel->operator()();
  running->fibers[std::size_t(running->current)].state = State::done;
  swapcontext(&running->fibers[std::size_t(running->current)].context, &running->scheduler);
}

// Suspends the running fiber at a barrier until the scheduler releases it.
void wait(State at) {
  Fiber& f = running->fibers[std::size_t(running->current)];
  f.state = at;
  swapcontext(&f.context, &running->scheduler);
}

// Releases the fibers of [first, end) waiting at `at` when every one of them that has
// not ended waits there (a shuffle needs its whole warp, __syncthreads the whole block);
// true if some were released.
bool release(int first, int end, State at) {
  bool waiting = false;
  for (int i = first; i < end; ++i) {
    const State s = running->fibers[std::size_t(i)].state;
    if (s != State::done && s != at) return false;
    waiting = waiting || s == at;
  }
  if (!waiting) return false;
  for (int i = first; i < end; ++i)
    if (running->fibers[std::size_t(i)].state == at) running->fibers[std::size_t(i)].state = State::ready;
  return true;
}

// A fresh context for f that starts at fiber_main on its own stack. (getcontext returns
// once here: the context it fills is only ever entered through makecontext's entry.)
[[gnu::noinline]] void prepare(Fiber& f) {
  getcontext(&f.context);
  f.context.uc_stack.ss_sp = f.stack.get();
  f.context.uc_stack.ss_size = kStackBytes;
  f.context.uc_link = nullptr;
  makecontext(&f.context, fiber_main, 0);
}

void run_block(Block& b) {
  const int n = int(b.fibers.size());
  for (;;) {
    bool ran = false;
    for (int i = 0; i < n; ++i) {
      if (b.fibers[std::size_t(i)].state != State::ready) continue;
      b.current = i;
      threadIdx = b.fibers[std::size_t(i)].index;
      swapcontext(&b.scheduler, &b.fibers[std::size_t(i)].context);
      ran = true;
    }
    if (ran) continue;
    bool released = false;
    for (int w = 0; w * kWarp < n; ++w) released = release(w * kWarp, std::min(n, (w + 1) * kWarp), State::at_warp_barrier) || released;
    released = release(0, n, State::at_block_barrier) || released;
    if (released) continue;
    for (const Fiber& f : b.fibers)
      if (f.state != State::done) throw std::logic_error("emulated kernel: threads wait at barriers that cannot release");
    return;
  }
}

}  // namespace

void emulated_launch(dim3 grid, dim3 block, std::size_t shared_bytes, const std::function<void()>& kernel) {
  if (shared_bytes > engine::kernels::kEmulatedSharedFloats * sizeof(float))
    throw std::logic_error("emulated kernel: more dynamic shared memory than the emulation holds");
  const int threads = int(block.x * block.y * block.z);
  Block b;
  b.kernel = &kernel;
  b.fibers.resize(std::size_t(threads));
  b.exchange.assign(std::size_t(threads), 0.0f);
  for (Fiber& f : b.fibers) f.stack = std::make_unique_for_overwrite<char[]>(kStackBytes);
  running = &b;
  blockDim = block;
  gridDim = grid;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        blockIdx = {x, y, z};
        for (int t = 0; t < threads; ++t) {
          Fiber& f = b.fibers[std::size_t(t)];
          f.state = State::ready;
          f.index = {unsigned(t) % block.x, unsigned(t) / block.x % block.y, unsigned(t) / (block.x * block.y)};
          prepare(f);
        }
        run_block(b);
      }
  running = nullptr;
}

}  // namespace kvfid::test

void __syncthreads() { kvfid::test::wait(kvfid::test::State::at_block_barrier); }

float __shfl_xor_sync(unsigned, float v, int lane_mask) {
  using namespace kvfid::test;
  const int t = running->current, lane = t % kWarp, base = t - lane;
  running->exchange[std::size_t(t)] = v;
  wait(State::at_warp_barrier);  // every lane of the warp has written its value
  const float other = running->exchange[std::size_t(base + (lane ^ lane_mask))];
  wait(State::at_warp_barrier);  // every lane has read before any writes the next
  return other;
}
