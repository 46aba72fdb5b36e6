#pragma once
// Aligned plain-text columns for terminal reports.
#include <string>
#include <vector>

namespace kvfid::ref {

enum class Align { left, right };

// rows[0] is the header; every row has one cell per entry of `align` (throws
// std::invalid_argument otherwise). Columns are two spaces apart; widths count UTF-8
// code points, so "Δp" and "q·k" take the width they show. No trailing spaces.
std::string format_text_table(const std::vector<std::vector<std::string>>& rows, const std::vector<Align>& align);

// The number of UTF-8 code points in text (the bytes that do not continue a sequence).
std::size_t display_width(const std::string& text);

}  // namespace kvfid::ref
