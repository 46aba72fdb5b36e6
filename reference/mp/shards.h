#pragma once
// The forward's work shared among cooperating processes (MPI ranks: reference/dist/;
// in-process ranks in the tests). Tensor parallelism: every projection's output rows and
// every attention (head, position) item are cut into one contiguous block per rank; each
// rank computes its block and the blocks are exchanged, so every rank holds every
// activation and the next operation starts from identical inputs everywhere.
//
// Why the result cannot depend on the number of ranks: each element is computed by
// exactly one rank with the same code and the same inputs as a single process (an exact
// dot product rounded once, or the emulation's fixed-order dot), and the exchange copies
// MPFR numbers bit for bit (sign, exponent, every significand limb). No value is ever
// combined across ranks. Why tensor parallelism and not pipelining: docs/distributed.md.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "reference/mp/mp_array.h"

namespace kvfid::ref {

struct ItemRange {
  std::int64_t begin = 0, end = 0;
};

// Rank `rank` of `ranks` owns items [n*rank/ranks, n*(rank+1)/ranks): contiguous, sizes
// differing by at most one, covering [0, n) exactly once.
ItemRange share_of(std::int64_t n, int rank, int ranks);

// A run of consecutive elements of an MpArray: [begin, begin + count).
struct ElementRun {
  std::size_t begin = 0, count = 0;
};
// The runs of elements a rank computed, in a fixed order every rank can recompute.
using RunsOfRank = std::function<std::vector<ElementRun>(int rank)>;

class Shards {
 public:
  virtual ~Shards() = default;
  virtual int rank() const = 0;
  virtual int ranks() const = 0;

  // Every rank calls this with the elements runs(rank()) of `a` computed; on return
  // every element of every rank's runs holds the bits its owner computed. Collective:
  // every rank calls it in the same order.
  void exchange(MpArray& a, const RunsOfRank& runs);

 protected:
  // Collective: returns every rank's `mine`, indexed by rank (its own included).
  virtual std::vector<std::vector<std::byte>> allgather(const std::vector<std::byte>& mine) = 0;
};

// One MPFR number as bytes and back, bit for bit: kind (with the sign), exponent and the
// significand limbs, `record_bytes(precision)` bytes. Exposed for the tests.
std::size_t record_bytes(mpfr_prec_t precision);
void pack_number(std::byte* out, mpfr_srcptr x);
// `x` must have `precision` (an MpArray element: its significand is overwritten).
void unpack_number(mpfr_ptr x, const std::byte* in);

}  // namespace kvfid::ref
