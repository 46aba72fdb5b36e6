#include "tools/kvfid/command.h"

#include <charconv>
#include <sstream>

namespace kvfid::cli {

namespace {

const OptionSpec* find_option(const CommandSpec& spec, const std::string& name) {
  for (const auto& o : spec.options)
    if (o.name == name) return &o;
  return nullptr;
}

long long to_integer(const std::string& text, const std::string& what) {
  long long v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty())
    throw UsageError(what + ": '" + text + "' is not an integer");
  return v;
}

}  // namespace

std::string ParsedArgs::str(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw UsageError("--" + name + " is required");
  return it->second;
}

std::string ParsedArgs::str_or(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

long long ParsedArgs::integer_or(const std::string& name, long long fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : to_integer(it->second, "--" + name);
}

double ParsedArgs::number_or(const std::string& name, double fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  std::istringstream in(it->second);
  double v;
  if (!(in >> v) || !in.eof()) throw UsageError("--" + name + ": '" + it->second + "' is not a number");
  return v;
}

ParsedArgs parse_args(const CommandSpec& spec, const std::vector<std::string>& argv) {
  ParsedArgs out;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.rfind("--", 0) != 0) {
      if (spec.operand.empty() || !out.operand_.empty()) throw UsageError("unexpected argument '" + a + "'");
      out.operand_ = a;
      continue;
    }
    std::string name = a.substr(2), value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    const OptionSpec* o = find_option(spec, name);
    if (!o) throw UsageError("unknown option --" + name);
    if (o->value_name.empty()) {
      if (inline_value) throw UsageError("--" + name + " takes no value");
      out.switches_.insert(name);
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argv.size()) throw UsageError("--" + name + " needs a value (" + o->value_name + ")");
      value = argv[++i];
    }
    // An empty value names nothing (--model '' would otherwise surface as a nameless
    // file error); no option takes one.
    if (value.empty()) throw UsageError("--" + name + " is empty; it needs a value (" + o->value_name + ")");
    out.values_[name] = value;
  }
  if (!spec.operand.empty() && out.operand_.empty()) throw UsageError(spec.operand + " is required");
  for (const auto& o : spec.options)
    if (o.required && !out.has(o.name)) throw UsageError("--" + o.name + " is required");
  return out;
}

std::string help_text(const CommandSpec& spec) {
  std::ostringstream s;
  s << "usage: kvfid " << spec.name;
  if (!spec.operand.empty()) s << ' ' << spec.operand;
  for (const auto& o : spec.options) {
    std::string part = "--" + o.name + (o.value_name.empty() ? "" : " " + o.value_name);
    s << ' ' << (o.required ? part : "[" + part + "]");
  }
  s << "\n\n" << spec.description << "\n\noptions:\n";
  for (const auto& o : spec.options) {
    std::string left = "--" + o.name + (o.value_name.empty() ? "" : " " + o.value_name);
    s << "  " << left << std::string(left.size() < 28 ? 28 - left.size() : 1, ' ') << o.help << '\n';
  }
  s << "  --help" << std::string(22, ' ') << "show this help\n"
    << "\nexit status: 0 pass, 1 a fidelity check failed, 2 bad input or usage\n";
  return s.str();
}

std::vector<long long> parse_int_list(const std::string& text, const std::string& what) {
  std::vector<long long> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    out.push_back(to_integer(text.substr(start, comma - start), what));
    start = comma + 1;
  }
  return out;
}

}  // namespace kvfid::cli
