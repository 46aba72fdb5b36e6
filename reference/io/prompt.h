#pragma once
// Prompts are token ids: kvfid has no tokenizer. A prompt file holds integers
// separated by commas, spaces or newlines; '#' starts a comment to the end of line.
#include <string>
#include <vector>

#include "reference/model/config.h"

namespace kvfid::ref {

std::vector<int> read_prompt_file(const std::string& path);          // throws InputError(path, ...)
std::vector<int> parse_token_list(const std::string& text, const std::string& source);
// Non-empty, every id in [0, vocab), at most max_seq tokens.
void validate_tokens(const std::vector<int>& tokens, const ModelConfig& config, const std::string& source);

}  // namespace kvfid::ref
