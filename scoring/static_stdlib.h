// Private helper of the static checks (static_check.cc).
#pragma once

#include <string_view>

namespace crucible::scoring::internal {

// True when `top_level_module` (e.g. "os", "json") is a module of the Python
// standard library.
bool IsPythonStdlib(std::string_view top_level_module);

}  // namespace crucible::scoring::internal
