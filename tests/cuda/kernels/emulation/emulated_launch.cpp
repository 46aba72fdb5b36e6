#include "tests/cuda/kernels/emulation/emulated_launch.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace kvfid::engine::kernels {
float smem[kEmulatedSharedFloats];
}  // namespace kvfid::engine::kernels

#if !defined(__x86_64__)
#error "the kernel emulation switches stacks with x86-64 code (kvfid_emulated_switch)"
#endif

namespace kvfid::test {
namespace {

constexpr std::size_t kStackBytes = 128 * 1024;  // a fiber's stack: the kernels keep small arrays there
constexpr int kWarp = 32;

// A stack switch without the signal mask swapcontext saves (a system call each time: a
// block's barriers take hundreds of switches): the callee-saved registers, MXCSR and the
// x87 control word pushed on the old stack, its pointer stored in *from, then the same
// popped from `to`'s.
extern "C" void kvfid_emulated_switch(void** from, void* to);
asm(R"(
  .text
  .globl kvfid_emulated_switch
  .type kvfid_emulated_switch, @function
kvfid_emulated_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size kvfid_emulated_switch, .-kvfid_emulated_switch
)");

enum class State { ready, at_block_barrier, at_warp_barrier, done };

struct Fiber {
  void* sp = nullptr;  // its saved stack pointer while it does not run
  std::unique_ptr<char[]> stack;
  State state = State::ready;
  uint3 index;
};

// The block being run: its fibers, the scheduler's saved stack pointer and the warps'
// exchange slots. Fibers and stacks are kept from launch to launch.
struct Block {
  std::vector<Fiber> fibers;
  void* scheduler_sp = nullptr;
  int current = -1;
  const std::function<void()>* kernel = nullptr;
  std::vector<float> exchange;  // [threads] a warp's values in a shuffle
};
Block block_state;
Block* running = nullptr;

// Where a fresh fiber starts (the first switch into it returns here): the kernel, then
// back to the scheduler for good.
[[noreturn]] void fiber_entry() {
  running->kernel->operator()();
  Fiber& f = running->fibers[std::size_t(running->current)];
  f.state = State::done;
  kvfid_emulated_switch(&f.sp, running->scheduler_sp);
  __builtin_unreachable();
}

// f's stack laid out as kvfid_emulated_switch leaves a suspended one, returning into
// fiber_entry: from the 16-byte aligned top, a pad (so fiber_entry starts as after a
// call), the return address, six zero registers, MXCSR and the control word.
void prepare(Fiber& f) {
  auto top = reinterpret_cast<std::uintptr_t>(f.stack.get() + kStackBytes) & ~std::uintptr_t(15);
  auto* slot = reinterpret_cast<std::uint64_t*>(top);
  *--slot = 0;
  *--slot = reinterpret_cast<std::uint64_t>(&fiber_entry);
  for (int r = 0; r < 6; ++r) *--slot = 0;
  --slot;
  const std::uint32_t mxcsr = 0x1F80;  // the defaults: every exception masked, round to nearest
  const std::uint16_t fpu_cw = 0x037F;
  std::memcpy(slot, &mxcsr, 4);
  std::memcpy(reinterpret_cast<char*>(slot) + 4, &fpu_cw, 2);
  f.sp = slot;
}

// Suspends the running fiber at a barrier until the scheduler releases it.
void wait(State at) {
  Fiber& f = running->fibers[std::size_t(running->current)];
  f.state = at;
  kvfid_emulated_switch(&f.sp, running->scheduler_sp);
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

void run_block(Block& b, int n) {
  for (;;) {
    bool ran = false;
    for (int i = 0; i < n; ++i) {
      if (b.fibers[std::size_t(i)].state != State::ready) continue;
      b.current = i;
      threadIdx = b.fibers[std::size_t(i)].index;
      kvfid_emulated_switch(&b.scheduler_sp, b.fibers[std::size_t(i)].sp);
      ran = true;
    }
    if (ran) continue;
    bool released = false;
    for (int w = 0; w * kWarp < n; ++w)
      released = release(w * kWarp, std::min(n, (w + 1) * kWarp), State::at_warp_barrier) || released;
    released = release(0, n, State::at_block_barrier) || released;
    if (released) continue;
    for (int i = 0; i < n; ++i)
      if (b.fibers[std::size_t(i)].state != State::done)
        throw std::logic_error("emulated kernel: threads wait at barriers that cannot release");
    return;
  }
}

}  // namespace

void emulated_launch(dim3 grid, dim3 block, std::size_t shared_bytes, const std::function<void()>& kernel) {
  if (shared_bytes > engine::kernels::kEmulatedSharedFloats * sizeof(float))
    throw std::logic_error("emulated kernel: more dynamic shared memory than the emulation holds");
  if (running) throw std::logic_error("emulated kernel: a launch inside a launch");
  const int threads = int(block.x * block.y * block.z);
  Block& b = block_state;
  while (int(b.fibers.size()) < threads) {
    b.fibers.emplace_back();
    b.fibers.back().stack = std::make_unique_for_overwrite<char[]>(kStackBytes);
  }
  b.kernel = &kernel;
  b.exchange.assign(std::size_t(threads), 0.0f);
  running = &b;
  struct Done {  // no launch left running, even when a barrier throws
    ~Done() { running = nullptr; }
  } done;
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
        run_block(b, threads);
      }
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
