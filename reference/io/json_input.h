#pragma once
// Every JSON file kvfid reads (config.json, a safetensors header, a golden's manifest)
// goes through parse_json_input: its nesting is bounded before the parser builds a tree,
// so nothing that later walks the tree recursively (copying, dump(), destruction) can
// exhaust the stack, and parse errors are quoted briefly.
#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace kvfid::ref {

// The deepest any of those files legitimately nests is 3 (a manifest's certification, a
// config's rope_scaling, a header's data_offsets); 64 leaves room for extensions while
// keeping recursion over a parsed value shallow.
inline constexpr int kMaxJsonDepth = 64;

// Nesting depth of the arrays and objects in `text` (brackets inside strings excluded),
// or kMaxJsonDepth + 1 as soon as it is exceeded, with `at` the byte where that happened.
// One pass, no recursion. Exact for valid JSON; on invalid JSON the parser stops at or
// before the first place this scan could disagree with it.
int json_depth(std::string_view text, std::size_t* at = nullptr);

// Throws InputError(source, what + " is not valid JSON (...)") or
// InputError(source, what + " nests deeper than 64 levels ...").
nlohmann::json parse_json_input(std::string_view text, const std::string& source, const std::string& what);

// The whole file as text; InputError(path, "cannot open") when it cannot be read.
std::string read_text_file(const std::string& path);

// A JSON value from a user's file, described for an error line without serializing it
// recursively: scalars as written (strings quoted and cut short), containers by kind
// and size.
std::string brief_json(const nlohmann::json& value);

}  // namespace kvfid::ref
