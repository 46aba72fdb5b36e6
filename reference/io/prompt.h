#pragma once
// Prompts are token ids: kvfid has no tokenizer. A prompt file holds integers
// separated by commas, spaces or newlines; '#' starts a comment to the end of line.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "reference/model/config.h"

namespace kvfid::ref {

// The one rule for a token id wherever it is read (a prompt file, --tokens, a golden's
// manifest): an integer in [0, 2^31 - 1]. The model's vocab is validate_tokens' check.
// `shown` is the id as written, quoted briefly in the error; throws InputError(source, ...).
int checked_token_id(long long value, bool is_integer, std::string_view shown, std::size_t position,
                     const std::string& source);

std::vector<int> read_prompt_file(const std::string& path);          // throws InputError(path, ...)
std::vector<int> parse_token_list(const std::string& text, const std::string& source);
// A JSON array of token ids (a golden's manifest "tokens"), each under checked_token_id.
std::vector<int> tokens_from_json(const nlohmann::json& list, const std::string& source);
// Non-empty, every id in [0, vocab), at most max_seq tokens.
void validate_tokens(const std::vector<int>& tokens, const ModelConfig& config, const std::string& source);

}  // namespace kvfid::ref
