#pragma once
// Checks every loader applies to the weights it reads, so the reference never runs
// on a model that cannot be what its author meant.
#include <string>
#include <vector>

#include "reference/model/matrix.h"

namespace kvfid::ref {

// Throws InputError(source, "tensor 'NAME' element I is NaN|Inf|-Inf") at the first
// non-finite value.
void check_finite(const std::vector<double>& values, const std::string& source, const std::string& tensor_name);
// The same over a matrix view, row by row (nothing decoded at once beyond one row);
// element indices count from `first_index` (a layer's offset in a stacked tensor).
void check_finite(const Matrix& m, const std::string& source, const std::string& tensor_name,
                  std::size_t first_index = 0);

}  // namespace kvfid::ref
