#include "reference/io/prompt.h"

#include <charconv>
#include <limits>

#include <nlohmann/json.hpp>

#include "reference/util/input_error.h"
#include "reference/io/json_input.h"
#include "reference/util/brief_text.h"

namespace kvfid::ref {

int checked_token_id(long long value, bool is_integer, std::string_view shown, std::size_t position,
                     const std::string& source) {
  if (!is_integer || value < 0 || value > std::numeric_limits<int>::max())
    throw InputError(source, "'" + brief_text(shown) + "' at position " + std::to_string(position) +
                                 " is not a token id (an integer in [0, 2147483647])");
  return int(value);
}

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
      const std::string_view word = std::string_view(text).substr(i, end - i);
      long long v = 0;
      auto [p, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
      tokens.push_back(checked_token_id(v, ec == std::errc() && p == word.data() + word.size(), word, tokens.size(), source));
      i = end;
    }
  }
  return tokens;
}

std::vector<int> read_prompt_file(const std::string& path) { return parse_token_list(read_text_file(path), path); }

std::vector<int> tokens_from_json(const nlohmann::json& list, const std::string& source) {
  if (!list.is_array()) throw InputError(source, "\"tokens\" is " + brief_json(list) + ", not a list of token ids");
  std::vector<int> tokens;
  tokens.reserve(list.size());
  for (const nlohmann::json& t : list) {
    // Unsigned values above LLONG_MAX are out of range whatever they wrap to.
    const bool integer = t.is_number_integer() &&
                         !(t.is_number_unsigned() && t.get<unsigned long long>() > std::numeric_limits<int>::max());
    tokens.push_back(checked_token_id(integer ? t.get<long long>() : 0, integer, brief_json(t), tokens.size(), source));
  }
  return tokens;
}

void validate_tokens(const std::vector<int>& tokens, const ModelConfig& config, const std::string& source) {
  if (tokens.empty()) throw InputError(source, "no tokens");
  if (int(tokens.size()) > config.max_seq)
    throw InputError(source, std::to_string(tokens.size()) + " tokens exceed the model's context of " +
                                 std::to_string(config.max_seq));
  for (std::size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= config.vocab)
      throw InputError(source, "token " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                                   " is out of range for vocab " + std::to_string(config.vocab));
}

}  // namespace kvfid::ref
