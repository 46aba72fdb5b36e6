#include "reference/mp/shards.h"

#include <cstring>
#include <stdexcept>
#include <string>

namespace kvfid::ref {

namespace {

// Record layout: int64 kind (mpfr_custom_get_kind: its sign is the number's sign, zeros
// and infinities included), int64 exponent (regular numbers only; 0 otherwise), then the
// significand's limbs exactly as MPFR holds them.
constexpr std::size_t kRecordHeaderBytes = 2 * sizeof(std::int64_t);

std::size_t limbs_of(mpfr_prec_t precision) {
  return (mpfr_custom_get_size(precision) + sizeof(mp_limb_t) - 1) / sizeof(mp_limb_t);
}

}  // namespace

ItemRange share_of(std::int64_t n, int rank, int ranks) {
  if (ranks < 1 || rank < 0 || rank >= ranks || n < 0) throw std::logic_error("share_of: bad rank or count");
  // n * rank fits: n is an element count of an allocated array (< 2^48), ranks < 2^15.
  return ItemRange{n * rank / ranks, n * (rank + 1) / ranks};
}

std::size_t record_bytes(mpfr_prec_t precision) { return kRecordHeaderBytes + limbs_of(precision) * sizeof(mp_limb_t); }

void pack_number(std::byte* out, mpfr_srcptr x) {
  const std::int64_t kind = mpfr_custom_get_kind(x);
  const std::int64_t exponent = mpfr_regular_p(x) ? std::int64_t(mpfr_custom_get_exp(x)) : 0;
  std::memcpy(out, &kind, sizeof kind);
  std::memcpy(out + sizeof kind, &exponent, sizeof exponent);
  std::memcpy(out + kRecordHeaderBytes, mpfr_custom_get_significand(x), limbs_of(mpfr_get_prec(x)) * sizeof(mp_limb_t));
}

void unpack_number(mpfr_ptr x, const std::byte* in) {
  std::int64_t kind = 0, exponent = 0;
  std::memcpy(&kind, in, sizeof kind);
  std::memcpy(&exponent, in + sizeof kind, sizeof exponent);
  const mpfr_prec_t precision = mpfr_get_prec(x);
  void* significand = mpfr_custom_get_significand(x);
  std::memcpy(significand, in + kRecordHeaderBytes, limbs_of(precision) * sizeof(mp_limb_t));
  mpfr_custom_init_set(x, int(kind), mpfr_exp_t(exponent), precision, significand);
}

void Shards::exchange(MpArray& a, const RunsOfRank& runs) {
  if (ranks() == 1) return;  // one rank computed every run: nothing to send (mpirun -np 1)
  const std::size_t record = record_bytes(a.precision());
  auto check = [&](const ElementRun& run) {
    if (run.begin > a.size() || run.count > a.size() - run.begin)
      throw std::logic_error("Shards::exchange: a run leaves the array");
  };
  std::vector<std::byte> mine;
  for (const ElementRun& run : runs(rank())) {
    check(run);
    const std::size_t at = mine.size();
    mine.resize(at + run.count * record);
    for (std::size_t i = 0; i < run.count; ++i) pack_number(mine.data() + at + i * record, a[run.begin + i]);
  }
  const std::vector<std::vector<std::byte>> all = allgather(mine);
  if (int(all.size()) != ranks()) throw std::logic_error("Shards::exchange: one block per rank expected");
  for (int r = 0; r < ranks(); ++r) {
    if (r == rank()) continue;
    std::size_t at = 0;
    for (const ElementRun& run : runs(r)) {
      check(run);
      if (all[std::size_t(r)].size() < at + run.count * record)
        throw std::runtime_error("rank " + std::to_string(r) + " sent fewer values than it owns");
      for (std::size_t i = 0; i < run.count; ++i) unpack_number(a[run.begin + i], all[std::size_t(r)].data() + at + i * record);
      at += run.count * record;
    }
    if (at != all[std::size_t(r)].size())
      throw std::runtime_error("rank " + std::to_string(r) + " sent more values than it owns");
  }
}

}  // namespace kvfid::ref
