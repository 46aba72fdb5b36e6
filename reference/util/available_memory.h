#pragma once
// How much memory this process may still use, and the refusal of a run that would not
// fit: one line saying what it needs and what there is, before any work starts.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace kvfid::ref {

struct MemoryLimit {
  std::uint64_t bytes = 0;
  std::string source;  // "MemAvailable", "RLIMIT_AS", "cgroup memory.max"
};

// The tightest of: MemAvailable (/proc/meminfo); the address space left under
// RLIMIT_AS (its soft limit less this process's VmSize); the room left under a cgroup
// v2 memory.max. Empty when none can be read.
std::optional<MemoryLimit> available_memory();

// A run that does not fit in memory.
class MemoryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "1.53 GiB" (binary units, three significant digits).
std::string format_bytes(std::uint64_t bytes);

// Throws MemoryError("WHAT needs about X (mapped weights M + working memory W), but
// only Y is available (SOURCE)") when mapped + working exceeds `limit`.
void require_memory(const std::string& what, std::uint64_t mapped, std::uint64_t working,
                    const std::optional<MemoryLimit>& limit);

}  // namespace kvfid::ref
