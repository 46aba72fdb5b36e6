#include "reference/dist/mpi_world.h"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstdint>
#include <stdexcept>

namespace kvfid::ref {

namespace {

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) throw std::runtime_error(std::string("MPI: ") + what + " failed");
}

}  // namespace

MpiWorld::MpiWorld() {
  int provided = 0;
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &ranks_), "MPI_Comm_size");
}

MpiWorld::~MpiWorld() { MPI_Finalize(); }

int MpiWorld::first_failure(bool failed) {
  int mine = failed ? rank_ : INT_MAX, lowest = INT_MAX;
  check(MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce");
  return lowest == INT_MAX ? -1 : lowest;
}

std::string MpiWorld::broadcast(const std::string& text, int root) {
  std::uint64_t size = text.size();
  check(MPI_Bcast(&size, 1, MPI_UINT64_T, root, MPI_COMM_WORLD), "MPI_Bcast");
  std::string out = rank_ == root ? text : std::string(std::size_t(std::min<std::uint64_t>(size, INT_MAX)), '\0');
  check(MPI_Bcast(out.data(), int(out.size()), MPI_CHAR, root, MPI_COMM_WORLD), "MPI_Bcast");
  return out;
}

void MpiWorld::barrier() { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

void MpiWorld::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; this only states it to the compiler
}

// Sizes first, then rounds: in round k rank r sends bytes [k*B, (k+1)*B) of its block
// (B = per-rank round size), so every count and displacement of one MPI_Allgatherv
// stays below INT_MAX however large the blocks are.
std::vector<std::vector<std::byte>> MpiWorld::allgather(const std::vector<std::byte>& mine) {
  const std::uint64_t my_size = mine.size();
  std::vector<std::uint64_t> sizes(static_cast<std::size_t>(ranks_), 0);
  check(MPI_Allgather(&my_size, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD), "MPI_Allgather");
  const std::size_t round = std::min(kRoundBytes, std::size_t(INT_MAX) / std::size_t(ranks_));
  std::vector<std::vector<std::byte>> all(static_cast<std::size_t>(ranks_));
  std::uint64_t largest = 0;
  for (int r = 0; r < ranks_; ++r) {
    all[std::size_t(r)].resize(std::size_t(sizes[std::size_t(r)]));
    largest = std::max(largest, sizes[std::size_t(r)]);
  }
  std::vector<int> counts(static_cast<std::size_t>(ranks_)), displacements(static_cast<std::size_t>(ranks_));
  std::vector<std::byte> received;
  for (std::uint64_t offset = 0; offset < largest; offset += round) {
    int total = 0;
    for (int r = 0; r < ranks_; ++r) {
      const std::uint64_t size = sizes[std::size_t(r)];
      counts[std::size_t(r)] = int(offset < size ? std::min<std::uint64_t>(size - offset, round) : 0);
      displacements[std::size_t(r)] = total;
      total += counts[std::size_t(r)];
    }
    received.resize(std::size_t(total));
    check(MPI_Allgatherv(mine.data() + std::min<std::uint64_t>(offset, my_size), counts[std::size_t(rank_)], MPI_BYTE,
                         received.data(), counts.data(), displacements.data(), MPI_BYTE, MPI_COMM_WORLD),
          "MPI_Allgatherv");
    for (int r = 0; r < ranks_; ++r)
      std::copy_n(received.data() + displacements[std::size_t(r)], counts[std::size_t(r)],
                  all[std::size_t(r)].data() + offset);
  }
  return all;
}

}  // namespace kvfid::ref
