// RFC 4180 CSV output for `--format csv` (report, compare, runs).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace crucible::report {

// One field: as is when it holds no comma, double quote, CR or LF; else in
// double quotes with each double quote doubled.
std::string CsvField(std::string_view field);

// One record: the fields joined by commas, ended by CRLF (RFC 4180, 2.1).
std::string CsvRecord(const std::vector<std::string>& fields);

}  // namespace crucible::report
