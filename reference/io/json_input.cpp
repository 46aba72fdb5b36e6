#include "reference/io/json_input.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "reference/util/input_error.h"
#include "reference/util/brief_text.h"

namespace kvfid::ref {

namespace {
// nlohmann's messages quote the last token read, which may be a whole hostile value.
constexpr std::size_t kParseErrorChars = 160;
}  // namespace

int json_depth(std::string_view text, std::size_t* at) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        if (at) *at = i;
        return kMaxJsonDepth + 1;
      }
      if (depth > deepest) deepest = depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

nlohmann::json parse_json_input(std::string_view text, const std::string& source, const std::string& what) {
  std::size_t at = 0;
  if (json_depth(text, &at) > kMaxJsonDepth)
    throw InputError(source, what + " nests deeper than " + std::to_string(kMaxJsonDepth) + " levels (at byte " +
                                 std::to_string(at) + ")");
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(source, what + " is not valid JSON (" + brief_text(e.what(), kParseErrorChars) + ")");
  }
}

std::string read_text_file(const std::string& path) {
  // A folder opens as a stream on Linux and fails only on reading: say what it is.
  if (std::filesystem::is_directory(path)) throw InputError(path, "is a folder, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw InputError(path, "cannot read");
  return s.str();
}

std::string brief_json(const nlohmann::json& value) {
  if (value.is_string()) return "\"" + brief_text(value.get_ref<const std::string&>()) + "\"";
  if (value.is_object()) return "an object of " + std::to_string(value.size()) + " members";
  if (value.is_array()) return "an array of " + std::to_string(value.size()) + " elements";
  return value.dump();  // a number, true, false or null: short, and not a container
}

}  // namespace kvfid::ref
