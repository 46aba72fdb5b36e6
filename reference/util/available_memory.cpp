#include "reference/util/available_memory.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include <sys/resource.h>

namespace kvfid::ref {

namespace {

// "Key:   123 kB" lines of /proc/meminfo and /proc/self/status.
std::optional<std::uint64_t> kib_field(const char* file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) {
      std::istringstream fields(line.substr(key.size() + 1));
      std::uint64_t kib = 0;
      if (fields >> kib) return kib * 1024;
    }
  return std::nullopt;
}

std::optional<std::uint64_t> number_in(const char* file) {
  std::ifstream in(file);
  std::uint64_t n = 0;
  if (in >> n) return n;  // "max" (no limit) fails to parse
  return std::nullopt;
}

void keep_tighter(std::optional<MemoryLimit>& best, std::uint64_t bytes, const char* source) {
  if (!best || bytes < best->bytes) best = MemoryLimit{bytes, source};
}

}  // namespace

std::optional<MemoryLimit> available_memory() {
  std::optional<MemoryLimit> best;
  if (const auto avail = kib_field("/proc/meminfo", "MemAvailable")) keep_tighter(best, *avail, "MemAvailable");
  rlimit as{};
  if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) {
    const std::uint64_t used = kib_field("/proc/self/status", "VmSize").value_or(0);
    keep_tighter(best, as.rlim_cur > used ? as.rlim_cur - used : 0, "RLIMIT_AS");
  }
  const auto max = number_in("/sys/fs/cgroup/memory.max");
  const auto current = number_in("/sys/fs/cgroup/memory.current");
  if (max && current) keep_tighter(best, *max > *current ? *max - *current : 0, "cgroup memory.max");
  return best;
}

std::string format_bytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char text[32];
  std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.3g %s", v, units[u]);
  return text;
}

void require_memory(const std::string& what, std::uint64_t mapped, std::uint64_t working,
                    const std::optional<MemoryLimit>& limit) {
  if (!limit || mapped + working <= limit->bytes) return;
  throw MemoryError(what + " needs about " + format_bytes(mapped + working) + " (mapped weights " +
                    format_bytes(mapped) + " + working memory " + format_bytes(working) + "), but only " +
                    format_bytes(limit->bytes) + " is available (" + limit->source + ")");
}

}  // namespace kvfid::ref
