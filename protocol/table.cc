#include "protocol/table.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace roam::proto {

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out + "\"";
}

void print_table(const proto::Reply& reply, bool json) {
  if (reply.rows.empty()) return;
  auto header = proto::split_cells(reply.rows[0]);
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 1; i < reply.rows.size(); ++i) rows.push_back(proto::split_cells(reply.rows[i]));
  if (json) {
    std::printf("[");
    for (size_t r = 0; r < rows.size(); ++r) {
      std::printf("%s{", r ? ",\n " : "");
      for (size_t c = 0; c < header.size() && c < rows[r].size(); ++c)
        std::printf("%s%s: %s", c ? ", " : "", json_string(header[c]).c_str(), json_string(rows[r][c]).c_str());
      std::printf("}");
    }
    std::printf("]\n");
    return;
  }
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& row : rows)
      if (c < row.size()) width[c] = std::max(width[c], row[c].size());
  }
  auto print_row = [&](const std::vector<std::string>& row, bool upper) {
    std::string line;
    for (size_t c = 0; c < header.size(); ++c) {
      std::string cell = c < row.size() ? row[c] : "";
      if (upper) std::transform(cell.begin(), cell.end(), cell.begin(), ::toupper);
      if (c + 1 < header.size()) cell.resize(width[c] + 2, ' ');
      line += cell;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  };
  print_row(header, true);
  for (const auto& row : rows) print_row(row, false);
}

}  // namespace roam::proto
