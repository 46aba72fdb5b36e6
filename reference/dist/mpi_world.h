#pragma once
// The ranks of `mpirun -np N` (MPI_COMM_WORLD) as the forward's Shards. Built only when
// CMake finds MPI (KVFID_WITH_MPI); the rest of the reference never sees MPI.
//
// Faults: a rank that fails on its own (its shard unreadable, out of memory) cannot
// leave the others waiting in a collective: the caller reports it and calls abort(),
// which ends every rank (MPI_Abort). A failure every rank meets alike (a bad token
// list) is agreed on first (first_failure) and reported once, by rank 0.
#include <string>
#include <vector>

#include "reference/mp/shards.h"

namespace kvfid::ref {

class MpiWorld final : public Shards {
 public:
  MpiWorld();   // MPI_Init; only the calling thread ever calls MPI (MPI_THREAD_FUNNELED)
  ~MpiWorld();  // MPI_Finalize
  MpiWorld(const MpiWorld&) = delete;
  MpiWorld& operator=(const MpiWorld&) = delete;

  int rank() const override { return rank_; }
  int ranks() const override { return ranks_; }

  // Collective: the lowest rank that passed failed = true, or -1 when none did.
  int first_failure(bool failed);
  // Collective: `text` as rank `root` holds it.
  std::string broadcast(const std::string& text, int root);
  // Collective: every rank waits for all.
  void barrier();
  // Ends every rank of the job with exit status `code`; does not return.
  [[noreturn]] void abort(int code);

  // The most bytes one rank contributes to one MPI_Allgatherv round (MPI counts are int).
  static constexpr std::size_t kRoundBytes = std::size_t(64) << 20;

 protected:
  std::vector<std::vector<std::byte>> allgather(const std::vector<std::byte>& mine) override;

 private:
  int rank_ = 0;
  int ranks_ = 1;
};

}  // namespace kvfid::ref
