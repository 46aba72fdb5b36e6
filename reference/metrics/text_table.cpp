#include "reference/metrics/text_table.h"

#include <algorithm>
#include <stdexcept>

namespace kvfid::ref {

std::size_t display_width(const std::string& text) {
  return std::size_t(std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

std::string format_text_table(const std::vector<std::vector<std::string>>& rows, const std::vector<Align>& align) {
  std::vector<std::size_t> width(align.size(), 0);
  for (const auto& row : rows) {
    if (row.size() != align.size()) throw std::invalid_argument("format_text_table: a row has the wrong cell count");
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], display_width(row[c]));
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      const std::string padding(width[c] - display_width(row[c]), ' ');
      line += align[c] == Align::right ? padding + row[c] : row[c] + padding;
      if (c + 1 < row.size()) line += "  ";
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out += line + "\n";
  }
  return out;
}

}  // namespace kvfid::ref
