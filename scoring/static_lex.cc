#include "scoring/static_lex.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <string_view>

namespace crucible::scoring::internal {

namespace {

bool IsIdentStart(char c) { return IsIdentChar(c) && !(c >= '0' && c <= '9'); }

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

template <size_t N>
bool In(const std::array<std::string_view, N>& words, std::string_view w) {
  return std::find(words.begin(), words.end(), w) != words.end();
}

constexpr std::array<std::string_view, 35> kPythonKeywords = {
    "False", "None",     "True",  "and",    "as",   "assert", "async",  "await",    "break",
    "class", "continue", "def",   "del",    "elif", "else",   "except", "finally",  "for",
    "from",  "global",   "if",    "import", "in",   "is",     "lambda", "nonlocal", "not",
    "or",    "pass",     "raise", "return", "try",  "while",  "with",   "yield"};

// Words that start a statement or expression, never a declaration.
constexpr std::array<std::string_view, 32> kCStatementWords = {
    "return",   "if",       "while",     "for",     "switch",        "else",      "do",
    "case",     "goto",     "sizeof",    "new",     "delete",        "throw",     "co_return",
    "co_await", "co_yield", "typeid",    "alignof", "static_assert", "decltype",  "break",
    "continue", "default",  "operator",  "typedef", "using",         "namespace", "template",
    "public",   "private",  "protected", "defined"};

void SkipSpace(std::string_view s, size_t& i) {
  while (i < s.size() && IsSpace(s[i])) ++i;
}

std::string_view Ident(std::string_view s, size_t& i) {
  if (i >= s.size() || !IsIdentStart(s[i])) return {};
  size_t b = i;
  while (i < s.size() && IsIdentChar(s[i])) ++i;
  return s.substr(b, i - b);
}

// Blanks [from, to) of `out`, keeping line breaks.
void Blank(std::string& out, size_t from, size_t to) {
  for (size_t k = from; k < to && k < out.size(); ++k) {
    if (out[k] != '\n') out[k] = ' ';
  }
}

std::string PythonCodeView(std::string_view text) {
  std::string out(text);
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const char c = text[i];
    if (c == '#') {
      size_t j = i;
      while (j < n && text[j] != '\n') ++j;
      Blank(out, i, j);
      i = j;
      continue;
    }
    if (c != '\'' && c != '"') {
      ++i;
      continue;
    }
    // A string prefix (r, b, f, u, rb, ...) is blanked with the string.
    size_t p = i;
    while (p > 0 && i - p < 2 &&
           std::string_view("rRbBuUfF").find(text[p - 1]) != std::string_view::npos) {
      --p;
    }
    if (p < i && (p == 0 || !IsIdentChar(text[p - 1]))) Blank(out, p, i);
    const bool triple = i + 2 < n && text[i + 1] == c && text[i + 2] == c;
    size_t j = i + (triple ? 3 : 1);
    size_t end = n;
    while (j < n) {
      const char d = text[j];
      if (d == '\\') {
        j += 2;
        continue;
      }
      if (triple && d == c && j + 2 < n && text[j + 1] == c && text[j + 2] == c) {
        end = j;
        j += 3;
        break;
      }
      if (!triple && d == c) {
        end = j;
        ++j;
        break;
      }
      if (!triple && d == '\n') {  // unterminated: the string ends with the line
        end = j;
        break;
      }
      ++j;
    }
    if (j > n) j = n;
    Blank(out, i + (triple ? 3 : 1), std::min(end, n));
    i = j;
  }
  return out;
}

std::string CCodeView(std::string_view text) {
  std::string out(text);
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const char c = text[i];
    const char next = i + 1 < n ? text[i + 1] : '\0';
    if (c == '/' && next == '/') {
      size_t j = i;
      while (j < n && !(text[j] == '\n' && text[j - 1] != '\\')) ++j;
      Blank(out, i, j);
      i = j;
      continue;
    }
    if (c == '/' && next == '*') {
      size_t close = text.find("*/", i + 2);
      size_t j = close == std::string_view::npos ? n : close + 2;
      Blank(out, i, j);
      i = j;
      continue;
    }
    if (c == '"') {
      // A raw string: R"delim( ... )delim", possibly after u8, u, U or L.
      if (i > 0 && text[i - 1] == 'R' &&
          (i == 1 || !IsIdentChar(text[i - 2]) || text[i - 2] == '8' || text[i - 2] == 'u' ||
           text[i - 2] == 'U' || text[i - 2] == 'L')) {
        size_t open = text.find('(', i + 1);
        if (open != std::string_view::npos && open - i <= 17) {
          std::string closing = ")" + std::string(text.substr(i + 1, open - i - 1)) + "\"";
          size_t close = text.find(closing, open + 1);
          size_t end = close == std::string_view::npos ? n : close;
          Blank(out, i + 1, end);
          i = close == std::string_view::npos ? n : close + closing.size();
          continue;
        }
      }
    }
    if (c == '\'' && i > 0 && IsIdentChar(text[i - 1])) {
      // A digit separator (1'000) when the word before is a number.
      size_t p = i;
      while (p > 0 && IsIdentChar(text[p - 1])) --p;
      if (text[p] >= '0' && text[p] <= '9') {
        ++i;
        continue;
      }
    }
    if (c == '"' || c == '\'') {
      size_t j = i + 1;
      size_t end = n;
      while (j < n) {
        if (text[j] == '\\') {
          j += 2;
          continue;
        }
        if (text[j] == c || text[j] == '\n') {
          end = j;
          break;
        }
        ++j;
      }
      end = std::min(end, n);
      Blank(out, i + 1, end);
      i = end < n && text[end] == c ? end + 1 : end;
      continue;
    }
    ++i;
  }
  return out;
}

void PythonDefinitions(std::string_view s, DefScope scope, std::vector<std::string_view>& out) {
  size_t i = 0;
  SkipSpace(s, i);
  const size_t indent = i;
  size_t at = i;
  std::string_view first = Ident(s, at);
  if (first == "async") {
    SkipSpace(s, at);
    first = Ident(s, at);
  }
  if (first == "def" || first == "class") {
    SkipSpace(s, at);
    if (auto name = Ident(s, at); !name.empty()) out.push_back(name);
    return;
  }
  if (scope == DefScope::kFinal) {
    // `as NAME` (imports, with, except) and `for NAME, NAME in`.
    size_t k = 0;
    while (k < s.size()) {
      if (!IsIdentStart(s[k]) || (k > 0 && IsIdentChar(s[k - 1]))) {
        ++k;
        continue;
      }
      std::string_view w = Ident(s, k);
      if (w == "as") {
        SkipSpace(s, k);
        if (auto name = Ident(s, k); !name.empty()) out.push_back(name);
      } else if (w == "for") {
        while (true) {
          SkipSpace(s, k);
          if (k < s.size() && s[k] == '(') ++k;
          auto name = Ident(s, k);
          if (name.empty() || name == "in") break;
          out.push_back(name);
          SkipSpace(s, k);
          if (k < s.size() && (s[k] == ',' || s[k] == ')')) {
            ++k;
            continue;
          }
          break;
        }
      }
    }
  }
  if (first.empty() || In(kPythonKeywords, first)) return;
  if (scope == DefScope::kRemoved && indent > 0) return;
  // Assignment targets: NAME (, NAME)* = ... or NAME: annotation [= ...];
  // in the final tree also attribute targets (obj.NAME = ...).
  std::vector<std::string_view> targets;
  size_t k = indent;
  while (true) {
    SkipSpace(s, k);
    if (k < s.size() && s[k] == '*') ++k;
    auto name = Ident(s, k);
    if (name.empty()) return;
    while (scope == DefScope::kFinal && k < s.size() && s[k] == '.') {
      ++k;
      name = Ident(s, k);
      if (name.empty()) return;
    }
    if (k < s.size() && s[k] == '.') return;  // an attribute at module level
    targets.push_back(name);
    SkipSpace(s, k);
    if (k < s.size() && s[k] == ',') {
      ++k;
      continue;
    }
    break;
  }
  if (k >= s.size()) return;
  const bool assign = s[k] == '=' && (k + 1 >= s.size() || s[k + 1] != '=');
  const bool annotated =
      s[k] == ':' && targets.size() == 1 && (k + 1 >= s.size() || s[k + 1] != '=');
  if (assign || annotated) out.insert(out.end(), targets.begin(), targets.end());
}

struct Tok {
  bool ident = false;
  std::string_view text;
};

// The tokens of a line of C/C++ up to its first '(' (included), or all of it.
std::vector<Tok> CTokensToParen(std::string_view s, size_t from) {
  std::vector<Tok> toks;
  size_t i = from;
  while (i < s.size()) {
    char c = s[i];
    if (IsSpace(c)) {
      ++i;
    } else if (IsIdentStart(c)) {
      size_t b = i;
      toks.push_back({true, Ident(s, i)});
      (void)b;
    } else if (c >= '0' && c <= '9') {
      size_t b = i;
      while (i < s.size() && IsIdentChar(s[i])) ++i;
      toks.push_back({false, s.substr(b, i - b)});
    } else if (c == ':' && i + 1 < s.size() && s[i + 1] == ':') {
      toks.push_back({false, s.substr(i, 2)});
      i += 2;
    } else {
      toks.push_back({false, s.substr(i, 1)});
      ++i;
      if (c == '(') break;
    }
  }
  return toks;
}

bool AllUpper(std::string_view w) {
  return std::none_of(w.begin(), w.end(), [](char c) { return c >= 'a' && c <= 'z'; });
}

void CDefinitions(std::string_view s, DefScope scope, std::vector<std::string_view>& out) {
  size_t i = 0;
  SkipSpace(s, i);
  const size_t indent = i;
  if (i < s.size() && s[i] == '#') {
    ++i;
    SkipSpace(s, i);
    if (Ident(s, i) == "define") {
      SkipSpace(s, i);
      if (auto name = Ident(s, i); !name.empty()) out.push_back(name);
    }
    return;
  }
  size_t at = i;
  std::string_view first = Ident(s, at);
  if (first == "typedef") {
    if (size_t fp = s.find("(*"); fp != std::string_view::npos) {
      size_t k = fp + 2;
      SkipSpace(s, k);
      if (auto name = Ident(s, k); !name.empty()) out.push_back(name);
      return;
    }
    size_t semi = s.find(';');
    if (semi != std::string_view::npos) {
      size_t k = semi;
      while (k > 0 && IsSpace(s[k - 1])) --k;
      size_t e = k;
      while (k > 0 && IsIdentChar(s[k - 1])) --k;
      if (k < e && IsIdentStart(s[k])) out.push_back(s.substr(k, e - k));
    }
    SkipSpace(s, at);
    first = Ident(s, at);  // typedef struct NAME { ...
    if (first != "struct" && first != "union" && first != "enum") return;
  }
  if (first == "using") {
    SkipSpace(s, at);
    auto name = Ident(s, at);
    SkipSpace(s, at);
    if (!name.empty() && at < s.size() && s[at] == '=') out.push_back(name);
    return;
  }
  if (first == "struct" || first == "class" || first == "union" || first == "enum") {
    SkipSpace(s, at);
    size_t k = at;
    auto name = Ident(s, k);
    if (name == "class" || name == "struct") {  // enum class
      SkipSpace(s, k);
      name = Ident(s, k);
    }
    if (name.empty()) return;
    SkipSpace(s, k);
    size_t f = k;
    if (k >= s.size() || s[k] == '{' || s[k] == ':' || s[k] == ';' || Ident(s, f) == "final") {
      out.push_back(name);
    }
    return;
  }
  if (i < s.size() && s[i] == '}') {  // } NAME;  (the end of a typedef struct)
    size_t k = i + 1;
    SkipSpace(s, k);
    auto name = Ident(s, k);
    SkipSpace(s, k);
    if (!name.empty() && k < s.size() && s[k] == ';' && !In(kCStatementWords, name)) {
      out.push_back(name);
    }
    return;
  }
  if (scope == DefScope::kRemoved && indent > 0) return;
  // A function declarator: [type tokens] [Qual::]NAME (
  auto toks = CTokensToParen(s, i);
  if (toks.size() < 2 || toks.back().text != "(") return;
  const size_t name_at = toks.size() - 2;
  if (!toks[name_at].ident) return;
  const std::string_view name = toks[name_at].text;
  if (In(kCStatementWords, name)) return;
  size_t k = name_at;
  if (k > 0 && toks[k - 1].text == "~") --k;
  while (k >= 2 && toks[k - 1].text == "::" && toks[k - 2].ident) k -= 2;
  const bool qualified = k < name_at && toks[k + 1].text == "::";
  for (size_t t = 0; t < k; ++t) {
    const auto& tok = toks[t];
    if (tok.ident) {
      if (In(kCStatementWords, tok.text)) return;
      continue;
    }
    if (tok.text != "*" && tok.text != "&" && tok.text != "::" && tok.text != "<" &&
        tok.text != ">" && tok.text != ",") {
      return;
    }
  }
  const bool has_type = std::any_of(toks.begin(), toks.begin() + static_cast<std::ptrdiff_t>(k),
                                    [](const Tok& t) { return t.ident; });
  if (has_type) {
    out.push_back(name);
    return;
  }
  if (qualified && toks[k].text == name) {  // Foo::Foo( a constructor
    out.push_back(name);
    return;
  }
  // GNU style, the return type on the line before: NAME (...) at column 0.
  if (k == name_at && indent == 0 && !AllUpper(name)) {
    size_t e = s.size();
    while (e > 0 && IsSpace(s[e - 1])) --e;
    if (e > 0 && s[e - 1] != ';' && s[e - 1] != ',') out.push_back(name);
  }
}

}  // namespace

Lang LangOf(std::string_view path) {
  size_t slash = path.rfind('/');
  std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
  size_t dot = base.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return Lang::kNone;
  std::string ext(base.substr(dot + 1));
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == "py" || ext == "pyi") return Lang::kPython;
  static constexpr std::array<std::string_view, 11> kC = {"c",   "h",   "cc",  "cpp", "cxx", "hh",
                                                          "hpp", "hxx", "ipp", "inl", "tcc"};
  if (In(kC, ext)) return Lang::kC;
  return Lang::kNone;
}

std::string CodeView(std::string_view text, Lang lang) {
  switch (lang) {
    case Lang::kPython:
      return PythonCodeView(text);
    case Lang::kC:
      return CCodeView(text);
    case Lang::kNone:
      break;
  }
  return std::string(text);
}

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

void LineDefinitions(std::string_view code_line, Lang lang, DefScope scope,
                     std::vector<std::string_view>& out) {
  if (lang == Lang::kPython) PythonDefinitions(code_line, scope, out);
  if (lang == Lang::kC) CDefinitions(code_line, scope, out);
}

}  // namespace crucible::scoring::internal
