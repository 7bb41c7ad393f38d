// Printing a Reply's table (rows[0]: the column names, cells joined with
// kCellSeparator) for people or as JSON for scripts: roamctl's broker
// commands and `roam` in a desktop print their answers this way.
#pragma once

#include <string>
#include <string_view>

#include "protocol/protocol.h"

namespace roam::proto {

// `s` as a JSON string (RFC 8259 escapes), quotes included.
std::string json_string(std::string_view s);

// Prints the reply's rows as an aligned table under upper-case column names,
// or, with `json`, as a JSON array of objects. Nothing when it has no rows.
void print_table(const Reply& reply, bool json);

}  // namespace roam::proto
