#pragma once
// Every subcommand is a CommandSpec: its options are declared once and serve both
// parsing and `--help`, so the help can never disagree with what is accepted.
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace kvfid::cli {

// Exit statuses shared by every subcommand.
inline constexpr int kExitPass = 0;
inline constexpr int kExitFidelityFailure = 1;
inline constexpr int kExitBadInput = 2;

// The help of a --model option that loads any model kvfid reads (load_model.h).
inline constexpr const char* kModelPathHelp =
    "llama2.c checkpoint, GGUF file (llama, qwen2, qwen3) or Hugging Face folder (Llama, Mistral, Qwen2, Qwen3, "
    "Gemma 2)";

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct OptionSpec {
  std::string name;        // without the leading "--"
  std::string value_name;  // empty for a boolean switch
  std::string help;
  bool required = false;
};

class ParsedArgs {
 public:
  bool has(const std::string& name) const { return values_.count(name) || switches_.count(name); }
  std::string str(const std::string& name) const;  // required value; throws UsageError when absent
  std::string str_or(const std::string& name, const std::string& fallback) const;
  long long integer_or(const std::string& name, long long fallback) const;
  double number_or(const std::string& name, double fallback) const;
  // The command's one operand (CommandSpec::operand), e.g. kvfid op's NAME.
  const std::string& operand() const { return operand_; }

 private:
  friend ParsedArgs parse_args(const struct CommandSpec&, const std::vector<std::string>&);
  std::map<std::string, std::string> values_;
  std::set<std::string> switches_;
  std::string operand_;
};

struct CommandSpec {
  std::string name;
  std::string summary;      // one line, shown by `kvfid --help`
  std::string description;  // a paragraph, shown by `kvfid NAME --help`
  std::vector<OptionSpec> options;
  int (*run)(const ParsedArgs& args);
  // The name of a required operand before or among the options (e.g. "NAME"); empty:
  // the command takes options only.
  std::string operand = {};
};

ParsedArgs parse_args(const CommandSpec& spec, const std::vector<std::string>& argv);
std::string help_text(const CommandSpec& spec);

// Comma-separated integers, e.g. "1,2,3" (token ids, chunk sizes).
std::vector<long long> parse_int_list(const std::string& text, const std::string& what);

}  // namespace kvfid::cli
