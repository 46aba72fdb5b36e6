#pragma once
// Checks every loader applies to the weights it reads, so the reference never runs
// on a model that cannot be what its author meant.
#include <string>
#include <vector>

namespace kvfid::ref {

// Throws InputError(source, "tensor 'NAME' element I is NaN|Inf|-Inf") at the first
// non-finite value.
void check_finite(const std::vector<double>& values, const std::string& source, const std::string& tensor_name);

}  // namespace kvfid::ref
