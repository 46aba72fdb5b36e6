#pragma once
// The typed options a test writes as text: parsed once here as the CLI parses its flags,
// with "test" as their source.
#include <string>

#include "reference/formats/quant/kv_policy.h"
#include "reference/model/weight_storage.h"

namespace kvfid::test {

inline ref::quant::KvPolicySpec kv_spec(const std::string& text) {
  return ref::quant::parse_kv_policy_spec(text, "test");
}

inline ref::WeightFormat weight_format(const std::string& name) { return ref::weight_format_from_string(name, "test"); }

inline ref::quant::KvPolicySpec kv_spec(ref::FloatFormat f) { return ref::quant::plain_kv_policy_spec(f); }
inline ref::WeightFormat weight_format(ref::FloatFormat f) { return weight_format(ref::to_string(f)); }

}  // namespace kvfid::test
