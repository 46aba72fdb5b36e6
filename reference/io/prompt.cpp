#include "reference/io/prompt.h"

#include <charconv>
#include <fstream>
#include <sstream>
#include <string_view>

#include "reference/util/input_error.h"

namespace kvfid::ref {

std::vector<int> parse_token_list(const std::string& text, const std::string& source) {
  std::vector<int> tokens;
  std::size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
    } else if (c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      ++i;
    } else {
      std::size_t end = i;
      while (end < text.size() && std::string_view(",# \n\t\r").find(text[end]) == std::string_view::npos) ++end;
      long long v = 0;
      auto [p, ec] = std::from_chars(text.data() + i, text.data() + end, v);
      if (ec != std::errc() || p != text.data() + end || v < 0 || v > 0x7fffffff)
        throw InputError(source, "'" + text.substr(i, end - i) + "' is not a token id (a non-negative integer)");
      tokens.push_back(int(v));
      i = end;
    }
  }
  return tokens;
}

std::vector<int> read_prompt_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path, "cannot open prompt file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_token_list(ss.str(), path);
}

void validate_tokens(const std::vector<int>& tokens, const ModelConfig& config, const std::string& source) {
  if (tokens.empty()) throw InputError(source, "no tokens");
  if (int(tokens.size()) > config.max_seq)
    throw InputError(source, std::to_string(tokens.size()) + " tokens exceed the model's context of " +
                                 std::to_string(config.max_seq));
  for (std::size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] >= config.vocab)
      throw InputError(source, "token " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                                   " is out of range for vocab " + std::to_string(config.vocab));
}

}  // namespace kvfid::ref
