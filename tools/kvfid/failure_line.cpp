#include "tools/kvfid/failure_line.h"

#include <new>

#include "reference/util/available_memory.h"
#include "reference/util/input_error.h"
#include "tools/kvfid/command.h"

namespace kvfid::cli {

std::string one_line(std::string text) {
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return text;
}

FailureLine failure_line(const std::string& command, std::exception_ptr error) {
  const std::string prefix = "kvfid " + command + ": ";
  try {
    std::rethrow_exception(error);
  } catch (const UsageError& e) {
    return {prefix + one_line(e.what()) + " (see kvfid " + command + " --help)", kExitBadInput};
  } catch (const kvfid::ref::InputError& e) {
    return {prefix + one_line(e.what()), kExitBadInput};
  } catch (const kvfid::ref::MemoryError& e) {
    return {one_line(e.what()), kExitBadInput};
  } catch (const std::bad_alloc&) {
    return {prefix + "out of memory: the input needs more memory than this machine could allocate", kExitBadInput};
  } catch (const std::exception& e) {
    return {prefix + "internal error: " + one_line(e.what()), kExitBadInput};
  } catch (...) {
    return {prefix + "internal error: an unknown exception", kExitBadInput};
  }
}

}  // namespace kvfid::cli
