#include "reference/formats/quant/kv_policy.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>

#include "reference/formats/quant/registry.h"
#include "reference/util/input_error.h"

namespace kvfid::ref::quant {

namespace {

constexpr const char* kKiviNeedsBlocks =
    "KIVI groups keys by their format's block, but no layer's K format has blocks of more than one element";

[[noreturn]] void fail_part(const std::string& source, const std::string& spec, const std::string& part,
                            const std::string& problem) {
  throw InputError(source, "KV policy '" + spec + "', part '" + part + "': " + problem);
}

// Why KIVI and eviction do not compose (kv_policy.h).
constexpr const char* kKiviNoEviction =
    "KIVI quantizes each key channel over a group of consecutive tokens, which an eviction would break up; "
    "it does not combine with evict=";

bool blocked(int format) { return all_formats()[format].block > 1; }

int f32_index() { return plain_format(FloatFormat::f32).index; }

class SpecParser {
 public:
  SpecParser(const std::string& spec, const std::string& source) : spec_(spec), source_(source) {}

  [[noreturn]] void fail(const std::string& part, const std::string& problem) const {
    fail_part(source_, spec_, part, problem);
  }

  int format(const std::string& part, const std::string& name) const {
    std::string known;
    for (const FormatInfo& f : all_formats()) {
      if (name == f.name) return f.index;
      known += (known.empty() ? "" : ", ") + std::string(f.name);
    }
    fail(part, "unknown format '" + name + "'; known: " + known);
  }

  // A decimal integer >= 1 that fits an int: digits only, no sign, no spaces.
  int positive(const std::string& part, const std::string& text) const {
    if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos)
      fail(part, "'" + text + "' is not a positive integer");
    const int n = std::stoi(text);
    if (n < 1) fail(part, "'" + text + "' is not a positive integer");
    return n;
  }

  float scale(const std::string& part, const std::string& text) const {
    float s = 0;
    std::size_t used = 0;
    try {
      s = std::stof(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != text.size() || !std::isfinite(s) || !(s > 0))
      fail(part, "'" + text + "' is not a finite positive number");
    return s;
  }

  // hadamard, hadamard:SEED or orthogonal:SEED; SEED a decimal integer below 2^63.
  RotationSpec rotation(const std::string& part, const std::string& text) const {
    const std::size_t colon = text.find(':');
    const std::string kind = text.substr(0, colon);
    RotationSpec r;
    if (kind == "hadamard") r.kind = RotationKind::hadamard;
    else if (kind == "orthogonal") r.kind = RotationKind::orthogonal;
    else fail(part, "unknown rotation '" + kind + "' (expected hadamard, hadamard:SEED or orthogonal:SEED)");
    if (colon != std::string::npos) {
      const std::string seed = text.substr(colon + 1);
      if (seed.empty() || seed.size() > 18 || seed.find_first_not_of("0123456789") != std::string::npos)
        fail(part, "seed '" + seed + "' is not a decimal integer of at most 18 digits");
      r.seed = std::stoull(seed);
    } else if (r.kind == RotationKind::orthogonal) {
      fail(part, "an orthogonal rotation needs its seed: orthogonal:SEED");
    }
    return r;
  }

  template <class T>
  void set_once(std::optional<T>& slot, T value, const std::string& part, const char* what) const {
    if (slot) fail(part, std::string("a second ") + what);
    slot = value;
  }

  KvPolicySpec parse() const {
    if (spec_.empty()) throw InputError(source_, "empty KV policy (expected e.g. f16, q8_0 or k=q8_0+v=f16)");
    KvPolicySpec p;
    p.text = spec_;
    p.source = source_;
    std::size_t begin = 0;
    while (true) {
      const std::size_t end = spec_.find('+', begin);
      const std::string part = spec_.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
      if (part.empty()) throw InputError(source_, "KV policy '" + spec_ + "' has an empty part (two '+' in a row, or one at an end)");
      apply(p, part);
      if (end == std::string::npos) break;
      begin = end + 1;
    }
    // KIVI needs some layer whose K format has blocks; refused now where no model's
    // shape could provide one.
    const int k_format = p.k.value_or(p.both.value_or(f32_index()));
    if (p.kivi && !blocked(k_format) && !(p.edges && blocked(p.edges->second))) fail("kivi", kKiviNeedsBlocks);
    if (p.kivi && p.evict) fail("kivi", kKiviNoEviction);
    return p;
  }

 private:
  void apply(KvPolicySpec& p, const std::string& part) const {
    if (part == "kivi") {
      if (p.kivi) fail(part, "kivi given twice");
      p.kivi = true;
      return;
    }
    const std::size_t eq = part.find('=');
    if (eq == std::string::npos) return set_once(p.both, format(part, part), part, "format for K and V");
    const std::string key = part.substr(0, eq), value = part.substr(eq + 1);
    if (key == "k") return set_once(p.k, format(part, value), part, "K format");
    if (key == "v") return set_once(p.v, format(part, value), part, "V format");
    if (key == "hot") return set_once(p.hot, positive(part, value), part, "hot window");
    if (key == "scale") return set_once(p.scale, scale(part, value), part, "scale");
    if (key == "evict") {
      if (p.evict) fail(part, "a second eviction policy");
      try {
        p.evict = parse_eviction_policy(value, "");
      } catch (const InputError& e) {
        fail(part, e.problem());
      }
      return;
    }
    if (key == "rot") {
      if (p.rot.kind != RotationKind::none) fail(part, "a second rotation");
      p.rot = rotation(part, value);
      return;
    }
    if (key == "edges") {
      const std::size_t colon = value.find(':');
      if (colon == std::string::npos) fail(part, "expected edges=N:FORMAT");
      const int n = positive(part, value.substr(0, colon));
      return set_once(p.edges, std::pair<int, int>{n, format(part, value.substr(colon + 1))}, part, "edges setting");
    }
    fail(part, "unknown setting '" + key + "' (expected k, v, edges, hot, scale, rot or evict)");
  }

  const std::string& spec_;
  const std::string& source_;
};

}  // namespace

KvPolicySpec parse_kv_policy_spec(const std::string& spec, const std::string& source) {
  return SpecParser(spec, source).parse();
}

void require_latent_policy(const KvPolicy& policy, const std::string& source) {
  bool one_format = true;
  for (std::size_t l = 0; l < policy.k.size(); ++l) one_format = one_format && policy.k[l].format == policy.v[l].format;
  if (!one_format || policy.hot_window > 0 || policy.kivi || policy.rotation.active() || policy.evict)
    throw InputError(source, "KV policy '" + policy.spec + "' on a latent (MLA) cache: its rows are keys and values at "
                             "once, so one format a layer for both, without hot windows, KIVI, rotations or evictions");
}

KvPolicySpec plain_kv_policy_spec(FloatFormat f) {
  KvPolicySpec spec;
  spec.text = to_string(f);
  spec.both = plain_format(f).index;
  return spec;
}

KvPolicy kv_policy_for(const KvPolicySpec& spec, int n_layers, int n_kv_heads) {
  if (n_layers < 1 || n_kv_heads < 1) throw InputError(spec.source, "KV policy for a model without layers or KV heads");
  const int k_format = spec.k.value_or(spec.both.value_or(f32_index()));  // what nothing names stays in f32
  const int v_format = spec.v.value_or(spec.both.value_or(f32_index()));
  const std::vector<float> scales(std::size_t(n_kv_heads), spec.scale.value_or(1.0f));
  KvPolicy policy;
  for (int l = 0; l < n_layers; ++l) {
    const bool edge = spec.edges && (l < spec.edges->first || l >= n_layers - spec.edges->first);
    policy.k.push_back({edge ? spec.edges->second : k_format, scales});
    policy.v.push_back({edge ? spec.edges->second : v_format, scales});
  }
  policy.hot_window = spec.hot.value_or(0);
  policy.kivi = spec.kivi;
  policy.evict = spec.evict;
  policy.spec = spec.text;
  if (policy.kivi) {
    bool any_blocked = false;
    for (const KvSlot& s : policy.k) any_blocked = any_blocked || blocked(s.format);
    if (!any_blocked) fail_part(spec.source, spec.text, "kivi", kKiviNeedsBlocks);
  }
  return policy;
}

std::vector<std::string> split_kv_spec_list(const std::string& list, const std::string& source) {
  std::vector<std::string> parts;
  for (std::size_t begin = 0;;) {
    const std::size_t comma = list.find(',', begin);
    std::string part = list.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
    if (part.empty()) throw InputError(source, "empty KV spec in '" + list + "' (expected e.g. f16,q8_0)");
    // No format name starts with a digit: such a part is an eviction's next number.
    if (!parts.empty() && std::isdigit(static_cast<unsigned char>(part[0])) &&
        parts.back().find("evict=") != std::string::npos)
      parts.back() += "," + part;
    else
      parts.push_back(std::move(part));
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  std::vector<std::string> specs;
  for (std::string& spec : parts) {
    if (std::find(specs.begin(), specs.end(), spec) != specs.end())
      throw InputError(source, "KV spec '" + spec + "' is given twice");
    specs.push_back(std::move(spec));
  }
  return specs;
}

}  // namespace kvfid::ref::quant
