#include "reference/formats/quant/eviction_spec.h"

#include <cstdint>
#include <regex>
#include <stdexcept>
#include <algorithm>

#include "reference/util/input_error.h"

namespace kvfid::ref::quant {

namespace {

const char* name_of(EvictionKind k) {
  switch (k) {
    case EvictionKind::streaming: return "streaming";
    case EvictionKind::h2o: return "h2o";
    case EvictionKind::tova: return "tova";
    case EvictionKind::knorm: return "knorm";
    case EvictionKind::snapkv: return "snapkv";
    case EvictionKind::window: return "window";
  }
  return "?";
}

constexpr const char* kExpected =
    "streaming:SINKS,WINDOW, h2o:BUDGET, tova:BUDGET, knorm:BUDGET, snapkv:BUDGET,OBS,POOL or window";

// A count of 1 to 9 digits, at least `least`; InputError naming `what` otherwise.
int count_of(const std::string& part, int least, const std::string& what, const std::string& source) {
  static const std::regex digits(R"(\d{1,9})");
  if (!std::regex_match(part, digits) || std::stoi(part) < least)
    throw InputError(source, what + " '" + part.substr(0, 20) + "' is not a whole number >= " + std::to_string(least));
  return std::stoi(part);
}

// One budget: a count >= 1 or a percentage 1%..100%.
EvictionBudget budget_of(const std::string& part, const std::string& what, const std::string& source) {
  static const std::regex percent(R"((\d{1,3})%)");
  std::smatch m;
  if (std::regex_match(part, m, percent)) {
    const EvictionBudget b{std::stoi(m[1]), true};
    if (b.value < 1 || b.value > 100)
      throw InputError(source, what + " '" + part + "' is not a percentage from 1% to 100%");
    return b;
  }
  static const std::regex digits(R"(\d{1,9})");
  if (!std::regex_match(part, digits) || std::stoi(part) < 1)
    throw InputError(source, what + " '" + part.substr(0, 20) +
                                 "' is neither a token count >= 1 nor a percentage such as 25% (past keys kept)");
  return {std::stoi(part), false};
}

// A budget, or one per layer joined by '/'.
void set_budget(EvictionPolicy& p, const std::string& part, const std::string& source) {
  const std::string what = std::string(name_of(p.kind)) + "'s budget";
  std::size_t at = 0;
  while (true) {
    const std::size_t slash = part.find('/', at);
    p.budgets.push_back(budget_of(part.substr(at, slash == std::string::npos ? std::string::npos : slash - at), what, source));
    if (slash == std::string::npos) return;
    at = slash + 1;
  }
}

}  // namespace

int EvictionBudget::past_keys(int tokens) const {
  return percent ? int((std::int64_t(value) * tokens + 99) / 100) : value;
}

std::string EvictionBudget::text() const { return std::to_string(value) + (percent ? "%" : ""); }

int EvictionPolicy::budget_for(int tokens, int layer) const {
  if (kind == EvictionKind::streaming) return sinks + window - 1;
  if (kind == EvictionKind::window) {
    if (layer < 0 || std::size_t(layer) >= layer_windows.size())
      throw std::logic_error("EvictionPolicy::budget_for: layer " + std::to_string(layer) + " of a window policy with " +
                             std::to_string(layer_windows.size()) + " layer windows (not set from a model?)");
    const int w = layer_windows[std::size_t(layer)];
    return w > 0 ? w - 1 : tokens;
  }
  if (budgets.empty()) throw std::logic_error("EvictionPolicy::budget_for: a policy without its budget");
  if (budgets.size() == 1) return budgets[0].past_keys(tokens);
  if (layer < 0 || std::size_t(layer) >= budgets.size())
    throw std::logic_error("EvictionPolicy::budget_for: layer " + std::to_string(layer) + " of " +
                           std::to_string(budgets.size()) + " per-layer budgets");
  return budgets[std::size_t(layer)].past_keys(tokens);
}

int EvictionPolicy::max_budget_for(int tokens) const {
  int most = 0;
  const int layers = kind == EvictionKind::window ? int(layer_windows.size()) : std::max<int>(1, int(budgets.size()));
  for (int l = 0; l < layers; ++l) most = std::max(most, budget_for(tokens, l));
  return most;
}

std::string EvictionPolicy::budget_text() const {
  std::string s;
  for (const EvictionBudget& b : budgets) s += (s.empty() ? "" : "/") + b.text();
  return s;
}

void check_eviction_layers(const EvictionPolicy& p, int n_layers, const std::string& source) {
  if (p.budgets.size() > 1 && int(p.budgets.size()) != n_layers)
    throw InputError(source, "eviction '" + p.spec() + "' gives " + std::to_string(p.budgets.size()) +
                                 " per-layer budgets for a model of " + std::to_string(n_layers) + " layers");
}

std::string EvictionPolicy::spec() const {
  if (kind == EvictionKind::window) return name_of(kind);
  std::string s = std::string(name_of(kind)) + ":";
  if (kind == EvictionKind::streaming) return s + std::to_string(sinks) + "," + std::to_string(window);
  s += budget_text();
  if (kind == EvictionKind::snapkv) s += "," + std::to_string(obs_window) + "," + std::to_string(pool);
  return s;
}

EvictionPolicy parse_eviction_policy(const std::string& spec, const std::string& source) {
  const std::size_t colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  EvictionPolicy p;
  bool known = false;
  for (EvictionKind k : {EvictionKind::streaming, EvictionKind::h2o, EvictionKind::tova, EvictionKind::knorm,
                         EvictionKind::snapkv, EvictionKind::window})
    if (name == name_of(k)) p.kind = k, known = true;
  if (!known) throw InputError(source, "'" + spec.substr(0, 40) + "' is not an eviction policy (expected " + kExpected + ")");
  if (p.kind == EvictionKind::window) {
    if (colon != std::string::npos)
      throw InputError(source, "'" + spec.substr(0, 40) + "': window takes no argument (the model gives each layer's window)");
    return p;
  }
  std::vector<std::string> parts;
  if (colon != std::string::npos) {
    std::size_t at = colon + 1;
    while (true) {
      const std::size_t comma = spec.find(',', at);
      parts.push_back(spec.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
      if (comma == std::string::npos) break;
      at = comma + 1;
    }
  }
  const std::size_t wanted = p.kind == EvictionKind::streaming ? 2 : p.kind == EvictionKind::snapkv ? 3 : 1;
  static const char* forms[] = {"streaming:SINKS,WINDOW", "h2o:BUDGET", "tova:BUDGET", "knorm:BUDGET",
                                "snapkv:BUDGET,OBS,POOL"};
  if (parts.size() != wanted)
    throw InputError(source, "'" + spec.substr(0, 40) + "': " + name + " takes " + forms[int(p.kind)]);
  switch (p.kind) {
    case EvictionKind::streaming:
      p.sinks = count_of(parts[0], 0, "streaming's SINKS", source);
      p.window = count_of(parts[1], 1, "streaming's WINDOW (it holds the query's own key)", source);
      break;
    case EvictionKind::snapkv:
      set_budget(p, parts[0], source);
      p.obs_window = count_of(parts[1], 1, "snapkv's observation window OBS", source);
      p.pool = count_of(parts[2], 1, "snapkv's pooling kernel POOL", source);
      if (p.pool % 2 == 0)
        throw InputError(source, "snapkv's pooling kernel POOL '" + parts[2] + "' is even (an odd window centers on each key)");
      break;
    default:
      set_budget(p, parts[0], source);
  }
  return p;
}

std::vector<EvictionPolicy> parse_eviction_policies(const std::string& list, const std::string& source) {
  static const std::regex starts_spec(R"([A-Za-z_][A-Za-z0-9_]*:.*)");
  std::vector<std::string> specs;
  std::size_t at = 0;
  while (true) {
    const std::size_t comma = list.find(',', at);
    const std::string part = list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    if (specs.empty() || std::regex_match(part, starts_spec) ||
        std::regex_match(part, std::regex(R"([A-Za-z_][A-Za-z0-9_]*)")))
      specs.push_back(part);
    else
      specs.back() += "," + part;
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  std::vector<EvictionPolicy> out;
  for (const std::string& s : specs) out.push_back(parse_eviction_policy(s, source));
  return out;
}

}  // namespace kvfid::ref::quant
