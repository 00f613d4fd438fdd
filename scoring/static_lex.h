// Private helpers of the static checks (static_check.cc): a cheap lexer for
// Python and C/C++ that blanks comments and string literals, and the
// definitions a line of code makes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace crucible::scoring::internal {

enum class Lang { kNone, kPython, kC };

// The language of a file by its name: .py/.pyi Python; .c, .h, .cc, .cpp,
// .cxx, .hh, .hpp, .hxx, .ipp, .inl, .tcc C/C++; anything else kNone.
Lang LangOf(std::string_view path);

// `text` with the content of comments and string literals replaced by
// spaces (line breaks kept, so line numbers hold). A comment or string left
// open at the end stays blank to the end. Linear in the size of `text`.
std::string CodeView(std::string_view text, Lang lang);

// Splits `text` into lines (without line breaks); line i is number i + 1.
std::vector<std::string_view> SplitLines(std::string_view text);

// True for bytes that continue an identifier (bytes >= 0x80 included, so
// non-ASCII Python names are one word).
inline bool IsIdentChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '_' ||
         u >= 0x80;
}

enum class DefScope {
  // What a removed line defines: Python def/class at any depth and names
  // assigned at module level; C/C++ macros, types, and functions whose
  // declarator starts the line.
  kRemoved,
  // What a line of the final tree may define, read generously so that a
  // name still defined somewhere is never reported: also assignments at any
  // depth, attribute assignments, `as NAME`, `for NAME in`; C/C++
  // functions declared at any indentation.
  kFinal,
};

// The names a line of code (comments and strings blanked) defines.
void LineDefinitions(std::string_view code_line, Lang lang, DefScope scope,
                     std::vector<std::string_view>& out);

}  // namespace crucible::scoring::internal
