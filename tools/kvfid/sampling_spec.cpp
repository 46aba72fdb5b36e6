#include "tools/kvfid/sampling_spec.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <set>
#include <sstream>

#include "reference/util/input_error.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // InputError

namespace {

// A prefix of a user's value, so a pathological one does not flood the error line.
std::string brief(const std::string& s) { return s.size() <= 40 ? s : s.substr(0, 40) + "..."; }

double number(const std::string& key, const std::string& value, const std::string& flag) {
  double x = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), x);
  if (ec != std::errc() || end != value.data() + value.size() || !std::isfinite(x))
    throw InputError(flag, key + " needs a finite number, got '" + brief(value) + "'");
  return x;
}

std::uint64_t whole(const std::string& key, const std::string& value, const std::string& flag) {
  std::uint64_t x = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), x);
  if (ec != std::errc() || end != value.data() + value.size())
    throw InputError(flag, key + " needs a whole number >= 0 that fits 64 bits, got '" + brief(value) + "'");
  return x;
}

}  // namespace

SamplingParams parse_sampling_spec(const std::string& spec, const std::string& flag) {
  SamplingParams p;
  std::set<std::string> seen;
  std::size_t begin = 0;
  while (true) {
    const std::size_t comma = spec.find(',', begin);
    const std::string item = spec.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
    const std::size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw InputError(flag, "expected key=value items (temperature, top_k, top_p, seed), got '" + brief(item) + "'");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (!seen.insert(key).second) throw InputError(flag, "'" + brief(key) + "' is given twice");
    if (key == "temperature") {
      const double t = number(key, value, flag);
      if (t < 0 || t > 1e6) throw InputError(flag, "temperature must be in [0, 1e6] (0 = greedy), got " + brief(value));
      p.temperature = float(t);
    } else if (key == "top_k") {
      const std::uint64_t k = whole(key, value, flag);
      if (k > std::uint64_t(1) << 30) throw InputError(flag, "top_k must be at most 2^30 (0 = no limit)");
      p.top_k = int(k);
    } else if (key == "top_p") {
      const double q = number(key, value, flag);
      if (!(q > 0 && q <= 1)) throw InputError(flag, "top_p must be in (0, 1], got " + brief(value));
      p.top_p = float(q);
    } else if (key == "seed") {
      p.seed = whole(key, value, flag);
    } else {
      throw InputError(flag, "unknown key '" + brief(key) + "' (temperature, top_k, top_p, seed)");
    }
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return p;
}

std::string to_string(const SamplingParams& p) {
  std::ostringstream s;
  s.precision(9);  // float round-trips in 9 significant digits
  s << "temperature=" << p.temperature << ",top_k=" << p.top_k << ",top_p=" << p.top_p << ",seed=" << p.seed;
  return s.str();
}

}  // namespace kvfid::cli
