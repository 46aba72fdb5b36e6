#pragma once
// Bad input (a file, a flag, a token list) is reported as one line naming the
// source and the problem; the CLI turns it into exit status 2.
#include <stdexcept>
#include <string>

namespace kvfid::ref {

class InputError : public std::runtime_error {
 public:
  InputError(const std::string& source, const std::string& problem)
      : std::runtime_error(source + ": " + problem), source_(source), problem_(problem) {}
  const std::string& source() const { return source_; }
  const std::string& problem() const { return problem_; }

 private:
  std::string source_;
  std::string problem_;
};

}  // namespace kvfid::ref
