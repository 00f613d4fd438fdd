// The file faults of the calibration mutants (mutants_internal.h). Each reads
// the workspace through scoring::DirectoryTree (which refuses symbolic links)
// and writes at most one file; docs/scoring.md ("The file faults") says what
// each does and when it does not apply.
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>

#include <fmt/format.h>

#include "agent-runner/mutants_internal.h"
#include "base/fs.h"
#include "golden/rules.h"
#include "scoring/scanners.h"
#include "scoring/score.h"
#include "scoring/static_check.h"
#include "scoring/static_lex.h"
#include "vcs/repo.h"

namespace crucible::runner::internal {

namespace {

using scoring::internal::Lang;

v1::Mutation NotApplicable(const char* kind, std::string reason) {
  v1::Mutation m;
  m.set_kind(kind);
  m.set_applicable(false);
  m.set_reason(std::move(reason));
  return m;
}

v1::Mutation Applied(const char* kind, const std::string& file, int line, std::string description) {
  v1::Mutation m;
  m.set_kind(kind);
  m.set_applicable(true);
  m.set_file(file);
  m.set_line(line);
  m.set_description(std::move(description));
  return m;
}

std::string Extension(std::string_view path) {
  size_t slash = path.rfind('/');
  std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
  size_t dot = base.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  std::string ext(base.substr(dot + 1));
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// The line comment of a file's language by its extension; empty when it is
// not known, and then the file is not used.
std::string_view CommentPrefix(std::string_view path) {
  static const std::map<std::string, std::string_view, std::less<>> kByExt = {
      {"py", "#"},    {"pyi", "#"},  {"sh", "#"},   {"bash", "#"},   {"rb", "#"},   {"yaml", "#"},
      {"yml", "#"},   {"toml", "#"}, {"pl", "#"},   {"pm", "#"},     {"r", "#"},    {"c", "//"},
      {"h", "//"},    {"cc", "//"},  {"cpp", "//"}, {"cxx", "//"},   {"hh", "//"},  {"hpp", "//"},
      {"hxx", "//"},  {"ipp", "//"}, {"inl", "//"}, {"tcc", "//"},   {"go", "//"},  {"rs", "//"},
      {"js", "//"},   {"mjs", "//"}, {"cjs", "//"}, {"ts", "//"},    {"tsx", "//"}, {"jsx", "//"},
      {"java", "//"}, {"kt", "//"},  {"kts", "//"}, {"swift", "//"}, {"cs", "//"},  {"scala", "//"},
      {"dart", "//"}, {"php", "//"}, {"lua", "--"}, {"sql", "--"},   {"hs", "--"}};
  auto it = kByExt.find(Extension(path));
  return it == kByExt.end() ? std::string_view() : it->second;
}

std::vector<std::string> TestPatterns(const v1::ReviewRules& rules) {
  if (rules.test_patterns().empty()) return golden::DefaultTestPatterns();
  return {rules.test_patterns().begin(), rules.test_patterns().end()};
}

std::vector<std::string> AllowedPaths(const v1::ReviewRules& rules) {
  if (rules.allowed_paths().empty()) return scoring::DefaultAllowedPaths();
  return {rules.allowed_paths().begin(), rules.allowed_paths().end()};
}

std::set<std::string> TestPatchPaths(const v1::GoldenTask& task) {
  auto paths = vcs::PatchPaths(task.test_patch());
  if (!paths) return {};
  return {paths->begin(), paths->end()};
}

// A text file's content: nullopt for a link, a missing or large file, or a
// binary one (a NUL byte in its first 8,000 bytes, as the static checks say).
std::optional<std::string> ReadText(const scoring::Tree& tree, const std::string& path) {
  auto text = tree.read(path);
  if (!text) return std::nullopt;
  if (std::string_view(*text).substr(0, 8000).find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  return text;
}

// Replaces the file at `path` under `root` (already read through a
// DirectoryTree, so no component of it is a link), keeping its mode.
bool Replace(const std::string& root, const std::string& path, const std::string& content) {
  const std::string full = root + "/" + path;
  struct stat st {};
  if (::lstat(full.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  return static_cast<bool>(WriteFile(full, content, st.st_mode & 07777));
}

std::vector<std::string> Lines(std::string_view text) {
  std::vector<std::string> out;
  for (auto l : scoring::internal::SplitLines(text)) out.emplace_back(l);
  return out;
}

// `text` with `lines` appended, each on a line of its own; the number of the
// first appended line in *first.
std::string Append(const std::string& text, const std::vector<std::string>& lines, int* first) {
  std::string out = text;
  if (!out.empty() && out.back() != '\n') out += '\n';
  *first = static_cast<int>(scoring::internal::SplitLines(out).size()) + 1;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// The golden patch per new path: the lines it adds (new numbers) and the
// positions of the lines it removes (the new line they precede), and the
// names its removed lines define.
struct GoldenFile {
  std::set<int> changed;  // new line numbers near which the golden patch changes
  std::set<int> added;
  std::set<std::string> removed_defs;
  bool is_new = false;
};

std::map<std::string, GoldenFile> GoldenByFile(const v1::GoldenTask& task) {
  std::map<std::string, GoldenFile> out;
  auto files = vcs::ParseDiff(task.source_patch());
  if (!files) return out;
  for (const auto& f : *files) {
    GoldenFile& g = out[f.path];
    g.is_new = f.status == 'A';
    const Lang lang = scoring::internal::LangOf(f.old_path);
    for (const auto& h : f.hunks) {
      int next_new = h.new_start;
      for (const auto& l : h.lines) {
        if (l.origin == '+') {
          g.added.insert(l.new_line);
          g.changed.insert(l.new_line);
          next_new = l.new_line + 1;
        } else if (l.origin == '-') {
          g.changed.insert(next_new);
          if (lang != Lang::kNone) {
            const std::string code = scoring::internal::CodeView(l.text, lang);
            std::vector<std::string_view> names;
            scoring::internal::LineDefinitions(code, lang, scoring::internal::DefScope::kRemoved,
                                               names);
            for (auto n : names) g.removed_defs.emplace(n);
          }
        } else if (l.new_line > 0) {
          next_new = l.new_line + 1;
        }
      }
    }
  }
  return out;
}

// A diff of one file that adds `lines` at `first`, for the scanners.
vcs::DiffFile AddedLines(const std::string& path, int first,
                         const std::vector<std::string>& lines) {
  vcs::DiffFile f;
  f.path = path;
  f.old_path = path;
  f.added = static_cast<int>(lines.size());
  vcs::DiffHunk h;
  h.new_start = first;
  h.new_lines = f.added;
  for (size_t i = 0; i < lines.size(); ++i) {
    h.lines.push_back({'+', 0, first + static_cast<int>(i), lines[i]});
  }
  f.hunks.push_back(std::move(h));
  return f;
}

std::vector<v1::Finding> Scan(const v1::ReviewRules& rules, const vcs::DiffFile& file) {
  std::vector<std::string> banned(rules.banned_patterns().begin(), rules.banned_patterns().end());
  auto scanners = scoring::Scanners::For(banned);
  if (!scanners) scanners = scoring::Scanners::For({});
  if (!scanners) return {};
  return (*scanners)->Scan({file});
}

bool AnyError(const std::vector<v1::Finding>& findings) {
  return std::any_of(findings.begin(), findings.end(),
                     [](const v1::Finding& f) { return f.severity() == "error"; });
}

// The first golden source with a known comment syntax (and, when `lang` is
// given, of that language) whose text can be read.
std::optional<std::pair<std::string, std::string>> FirstCommentable(
    const FaultInput& in, const scoring::Tree& tree, std::optional<Lang> lang = std::nullopt) {
  for (const auto& f : in.golden_sources) {
    if (CommentPrefix(f).empty()) continue;
    if (lang && scoring::internal::LangOf(f) != *lang) continue;
    if (auto text = ReadText(tree, f)) return std::make_pair(f, *text);
  }
  return std::nullopt;
}

std::string NoCommentableReason() {
  return "the golden patch changes no readable source file whose comment syntax is known";
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

bool IsWordAt(std::string_view text, size_t pos, size_t len) {
  using scoring::internal::IsIdentChar;
  if (pos > 0 && IsIdentChar(text[pos - 1])) return false;
  if (pos + len < text.size() && IsIdentChar(text[pos + len])) return false;
  return true;
}

// Offsets of whole-word occurrences of `name` in `code`.
std::vector<size_t> WordOffsets(std::string_view code, std::string_view name) {
  std::vector<size_t> out;
  for (size_t pos = code.find(name); pos != std::string_view::npos;
       pos = code.find(name, pos + 1)) {
    if (IsWordAt(code, pos, name.size())) out.push_back(pos);
  }
  return out;
}

}  // namespace

v1::Mutation ScopeCreep(const FaultInput& in) {
  constexpr const char* kKind = "scope-creep";
  const auto tree = scoring::DirectoryTree(in.root);
  const auto tests = TestPatterns(in.rules);
  const auto allowed = AllowedPaths(in.rules);
  const auto hidden = TestPatchPaths(in.task);
  auto dir_of = [](const std::string& p) {
    size_t slash = p.rfind('/');
    return slash == std::string::npos ? std::string() : p.substr(0, slash);
  };
  std::set<std::string> golden_dirs;
  for (const auto& f : in.golden_sources) golden_dirs.insert(dir_of(f));
  std::set<std::string> golden_paths;
  if (auto paths = vcs::PatchPaths(in.task.source_patch()); paths) {
    golden_paths.insert(paths->begin(), paths->end());
  }
  std::string chosen;
  std::string text;
  for (const auto& f : tree.list()) {
    if (golden_paths.contains(f) || hidden.contains(f) || CommentPrefix(f).empty()) continue;
    if (f.starts_with(".") || f.find("/.") != std::string::npos) continue;
    if (golden::AnyMatches(tests, f) || golden::AnyMatches(allowed, f)) continue;
    const bool beside = golden_dirs.contains(dir_of(f));
    if (!chosen.empty() && !beside) continue;
    auto content = ReadText(tree, f);
    if (!content) continue;
    chosen = f;
    text = *content;
    if (beside) break;
  }
  if (chosen.empty()) {
    return NotApplicable(kKind,
                         "the repository has no other source file with a known comment syntax "
                         "outside the golden patch, the tests and the allowed paths");
  }
  const std::string comment =
      fmt::format("{} Kept for reference; this line changes no behaviour.", CommentPrefix(chosen));
  int line = 0;
  const std::string out = Append(text, {comment}, &line);
  if (!Replace(in.root, chosen, out)) {
    return NotApplicable(kKind, fmt::format("{} could not be rewritten", chosen));
  }
  return Applied(kKind, chosen, line,
                 fmt::format("appends a comment line to {}, a source file the golden patch does "
                             "not change",
                             chosen));
}

v1::Mutation Reformat(const FaultInput& in) {
  constexpr const char* kKind = "reformat";
  const auto tree = scoring::DirectoryTree(in.root);
  const auto golden = GoldenByFile(in.task);
  // Files the lexer reads first: in them a line inside a string literal is
  // known; elsewhere only a line without quotes is taken.
  std::vector<std::string> files = in.golden_sources;
  std::stable_partition(files.begin(), files.end(), [](const std::string& f) {
    return scoring::internal::LangOf(f) != Lang::kNone;
  });
  bool any_source = false;
  for (const auto& f : files) {
    if (CommentPrefix(f).empty()) continue;
    auto text = ReadText(tree, f);
    if (!text) continue;
    any_source = true;
    const Lang lang = scoring::internal::LangOf(f);
    const std::string code = lang == Lang::kNone ? *text : scoring::internal::CodeView(*text, lang);
    const auto lines = Lines(*text);
    const auto code_lines = Lines(code);
    if (lines.size() != code_lines.size()) continue;
    const auto it = golden.find(f);
    if (it == golden.end() || it->second.is_new) continue;
    const auto& changed = it->second.changed;
    const bool heredoc = lang == Lang::kNone && text->find("<<") != std::string::npos;
    for (size_t i = 0; i < lines.size(); ++i) {
      const int n = static_cast<int>(i) + 1;
      const std::string& l = lines[i];
      // Plainly code: not blank, no comment or string in it (the lexer
      // blanks them), no line continuation before or in it.
      if (l.find_first_not_of(" \t\r") == std::string::npos) continue;
      if (l.find('\r') != std::string::npos || l.back() == '\\') continue;
      if (i > 0 && !lines[i - 1].empty() && lines[i - 1].back() == '\\') continue;
      if (lang != Lang::kNone && code_lines[i] != l) continue;
      if (lang == Lang::kNone && (heredoc || l.find_first_of("'\"`\\") != std::string::npos)) {
        continue;
      }
      // Not an import or include: the static checks read added ones.
      const std::string_view trimmed = std::string_view(l).substr(l.find_first_not_of(" \t"));
      if (trimmed.starts_with("import ") || trimmed.starts_with("from ") ||
          trimmed.starts_with("#")) {
        continue;
      }
      // Its own hunk: more than 6 unchanged lines to every golden change.
      bool far = true;
      for (int c : changed) far = far && std::abs(c - n) >= 8;
      if (!far) continue;
      const std::string churned = l + "  ";
      if (AnyError(Scan(in.rules, AddedLines(f, n, {churned})))) continue;
      std::string out;
      for (size_t j = 0; j < lines.size(); ++j) {
        out += j == i ? churned : lines[j];
        if (j + 1 < lines.size() || text->ends_with('\n')) out += '\n';
      }
      if (!Replace(in.root, f, out)) continue;
      return Applied(kKind, f, n,
                     fmt::format("adds trailing whitespace to line {} of {}, away from the golden "
                                 "patch's hunks",
                                 n, f));
    }
  }
  if (!any_source) return NotApplicable(kKind, NoCommentableReason());
  return NotApplicable(kKind,
                       "no code line of the golden patch's source files is more than 6 lines "
                       "away from its changes, so whitespace churn would share a golden hunk");
}

v1::Mutation Oversized(const FaultInput& in) {
  constexpr const char* kKind = "oversized";
  const auto tree = scoring::DirectoryTree(in.root);
  auto target = FirstCommentable(in, tree);
  if (!target) return NotApplicable(kKind, NoCommentableReason());
  // The golden patch's lines as scoring counts them: added + removed of its
  // non-test, non-binary files.
  const auto tests = TestPatterns(in.rules);
  std::string error;
  int64_t golden_lines = 0;
  for (const auto& c : scoring::DescribeChanges(in.task.source_patch(), &error)) {
    if (c.binary() || golden::AnyMatches(tests, c.path())) continue;
    golden_lines += c.added() + c.removed();
  }
  const double factor = in.rules.has_oversized_factor() ? in.rules.oversized_factor()
                                                        : scoring::kDefaultOversizedFactor;
  const int64_t min_extra = in.rules.has_oversized_min_extra_lines()
                                ? in.rules.oversized_min_extra_lines()
                                : scoring::kDefaultOversizedMinExtraLines;
  // A file without a final line break costs one more removed and added line.
  const auto& [file, text] = *target;
  const int64_t fixed = !text.empty() && text.back() != '\n' ? 2 : 0;
  const auto g = static_cast<double>(golden_lines);
  int64_t n = std::max<int64_t>(
      {min_extra, 1, static_cast<int64_t>(std::floor(factor * g)) - golden_lines - fixed + 1});
  while (static_cast<double>(golden_lines + fixed + n) <= factor * g) ++n;
  if (n > 100000) {
    return NotApplicable(kKind, fmt::format("the addition would need {} lines", n));
  }
  const std::string_view prefix = CommentPrefix(file);
  std::vector<std::string> block;
  for (int64_t i = 1; i <= n; ++i) {
    block.push_back(
        fmt::format("{} Note {} of {}: this paragraph restates what the code above "
                    "already does.",
                    prefix, i, n));
  }
  int line = 0;
  const std::string out = Append(text, block, &line);
  if (!Replace(in.root, file, out)) {
    return NotApplicable(kKind, fmt::format("{} could not be rewritten", file));
  }
  return Applied(kKind, file, line,
                 fmt::format("appends {} comment lines to {}, against {} changed lines of the "
                             "golden patch",
                             n, file, golden_lines));
}

v1::Mutation HallucinatedApi(const FaultInput& in) {
  constexpr const char* kKind = "hallucinated-api";
  const auto tree = scoring::DirectoryTree(in.root);
  for (const auto& f : in.golden_sources) {
    const Lang lang = scoring::internal::LangOf(f);
    if (lang == Lang::kNone || f.ends_with(".pyi")) continue;
    auto text = ReadText(tree, f);
    if (!text) continue;
    std::vector<std::string> block;
    std::string what;
    if (lang == Lang::kPython) {
      // A module missing from the file's own package (or, for a module at
      // the root, under the module itself): the package is the
      // repository's, so the static checks look for the module and do not
      // find it. A top-level module nobody provides when the path is no
      // dotted name.
      std::string package = f.substr(0, f.size() - 3);
      if (package.starts_with("src/")) package = package.substr(4);
      if (size_t slash = package.rfind('/'); slash != std::string::npos) {
        package = package.substr(0, slash);
      }
      bool dotted = !package.empty() && !std::isdigit(static_cast<unsigned char>(package[0]));
      for (char& c : package) {
        if (c == '/') {
          c = '.';
        } else if (!scoring::internal::IsIdentChar(c)) {
          dotted = false;
        }
      }
      const std::string dir = f.substr(0, f.size() - 3).substr(0, f.rfind('/') + 1);
      const bool taken =
          tree.read((f.find('/') == std::string::npos ? f.substr(0, f.size() - 3) + "/" : dir) +
                    "calibration_missing_api.py")
              .has_value();
      std::string import;
      if (dotted && !taken && package != "__init__") {
        import = fmt::format("from {}.calibration_missing_api import probe", package);
        what = fmt::format("probe from {}.calibration_missing_api", package);
      } else {
        import = "import calibration_missing_module";
        what = "the module calibration_missing_module";
      }
      // Inside a function nobody calls, so it never runs and the tests pass.
      block = {"def _calibration_probe():", "    " + import};
    } else {
      // Guarded, so the build never reads it; the static checks read every
      // include the diff adds.
      block = {"#if 0", "#include \"calibration_missing_api.h\"", "#endif"};
      what = "the header calibration_missing_api.h";
    }
    int line = 0;
    const std::string out = Append(*text, block, &line);
    if (!Replace(in.root, f, out)) continue;
    return Applied(
        kKind, f, line + 1,
        fmt::format("imports {}, which the repository does not have, in {}{}", what, f,
                    lang == Lang::kPython ? " (in a function nobody calls)" : " (under #if 0)"));
  }
  return NotApplicable(kKind,
                       "the golden patch changes no Python or C/C++ source file, which the static "
                       "checks cover");
}

v1::Mutation StaleRename(const FaultInput& in) {
  constexpr const char* kKind = "stale-rename";
  const auto tree = scoring::DirectoryTree(in.root);
  const auto golden = GoldenByFile(in.task);
  const auto hidden = TestPatchPaths(in.task);
  bool any_source = false;
  for (const Lang lang : {Lang::kPython, Lang::kC}) {
    std::vector<std::string> sources;
    for (const auto& f : in.golden_sources) {
      if (scoring::internal::LangOf(f) == lang) sources.push_back(f);
    }
    if (sources.empty()) continue;
    any_source = true;
    // Every file of the language, as code (comments and strings blanked),
    // and how often each name is defined in it.
    std::map<std::string, std::string> code;
    std::map<std::string, std::string> text;
    std::map<std::string, int, std::less<>> defined;
    for (const auto& f : tree.list()) {
      if (scoring::internal::LangOf(f) != lang) continue;
      auto t = ReadText(tree, f);
      if (!t) continue;
      text[f] = *t;
      code[f] = scoring::internal::CodeView(*t, lang);
      for (auto l : scoring::internal::SplitLines(code[f])) {
        std::vector<std::string_view> names;
        scoring::internal::LineDefinitions(l, lang, scoring::internal::DefScope::kFinal, names);
        for (auto n : names) ++defined[std::string(n)];
      }
    }
    struct Candidate {
      std::string file;
      int line = 0;
      std::string name;
    };
    std::vector<Candidate> preferred, others;
    for (const auto& f : sources) {
      if (!code.contains(f)) continue;
      const auto g = golden.find(f);
      if (g != golden.end() && g->second.is_new) continue;
      const auto lines = scoring::internal::SplitLines(code[f]);
      int last_def = 0;
      std::vector<std::pair<int, std::string>> defs;
      std::set<int> enclosing;  // definitions whose body a golden line changes
      for (size_t i = 0; i < lines.size(); ++i) {
        const int n = static_cast<int>(i) + 1;
        std::vector<std::string_view> names;
        scoring::internal::LineDefinitions(lines[i], lang, scoring::internal::DefScope::kRemoved,
                                           names);
        const std::string_view trimmed =
            lines[i].substr(std::min(lines[i].size(), lines[i].find_first_not_of(" \t")));
        const bool is_def = trimmed.starts_with("def ") || trimmed.starts_with("async def ") ||
                            trimmed.starts_with("class ") || lang == Lang::kC ||
                            trimmed.size() == lines[i].size();  // a module-level name
        if (!names.empty() && is_def) last_def = n;
        if (g != golden.end() && g->second.changed.contains(n) && last_def > 0) {
          enclosing.insert(last_def);
        }
        if (!is_def) continue;
        for (auto name : names) {
          const std::string s(name);
          // A line of the base commit that the rename will remove, or one
          // the golden patch changed while keeping the name.
          const bool base_line = g == golden.end() || !g->second.added.contains(n) ||
                                 g->second.removed_defs.contains(s);
          if (!base_line || s.size() < 2 || (s.starts_with("__") && s.ends_with("__")) ||
              s == "self" || s == "cls" || s == "main" || defined[s] != 1) {
            continue;
          }
          defs.emplace_back(n, s);
        }
      }
      for (const auto& [n, name] : defs) {
        (enclosing.contains(n) ? preferred : others).push_back({f, n, name});
      }
    }
    preferred.insert(preferred.end(), others.begin(), others.end());
    for (const auto& c : preferred) {
      const std::string renamed = c.name + "_renamed";
      bool taken = false;
      int outside = 0;
      for (const auto& [f, cv] : code) {
        if (!WordOffsets(text[f], renamed).empty()) taken = true;
        if (f != c.file && !hidden.contains(f)) {
          outside += static_cast<int>(WordOffsets(cv, c.name).size());
        }
      }
      if (taken) continue;
      // Occurrences in the file itself, as code: the definition and the
      // references to rename.
      const std::string& cv = code[c.file];
      const auto offsets = WordOffsets(cv, c.name);
      std::vector<size_t> line_start = {0};
      for (size_t i = 0; i < cv.size(); ++i) {
        if (cv[i] == '\n') line_start.push_back(i + 1);
      }
      auto line_of = [&](size_t off) {
        return static_cast<int>(std::upper_bound(line_start.begin(), line_start.end(), off) -
                                line_start.begin());
      };
      std::vector<size_t> refs;
      for (size_t off : offsets) {
        if (line_of(off) != c.line) refs.push_back(off);
      }
      if (outside == 0 && refs.empty()) continue;
      // Leave the last reference of the file stale when no other file refers
      // to the name.
      std::set<size_t> keep;
      int stale_line = 0;
      if (outside == 0) {
        keep.insert(refs.back());
        stale_line = line_of(refs.back());
      }
      std::string out = text[c.file];
      for (auto it = offsets.rbegin(); it != offsets.rend(); ++it) {
        if (keep.contains(*it)) continue;
        out.replace(*it, c.name.size(), renamed);
      }
      if (!Replace(in.root, c.file, out)) continue;
      std::string stale_where;
      if (outside > 0) {
        std::vector<std::string> files;
        for (const auto& [f, v] : code) {
          if (f != c.file && !hidden.contains(f) && !WordOffsets(v, c.name).empty()) {
            files.push_back(f);
          }
        }
        stale_where = fmt::format("{}", fmt::join(files, ", "));
      } else {
        stale_where = fmt::format("{}:{}", c.file, stale_line);
      }
      return Applied(kKind, c.file, c.line,
                     fmt::format("renames {} to {} at {}:{} and leaves the reference in {} stale",
                                 c.name, renamed, c.file, c.line, stale_where));
    }
  }
  if (!any_source) {
    return NotApplicable(kKind,
                         "the golden patch changes no Python or C/C++ source file, which the "
                         "static checks cover");
  }
  return NotApplicable(kKind,
                       "no definition in the golden patch's source files, present before it and "
                       "defined only once, has a reference to leave stale");
}

v1::Mutation Secret(const FaultInput& in) {
  constexpr const char* kKind = "secret";
  const auto tree = scoring::DirectoryTree(in.root);
  auto target = FirstCommentable(in, tree);
  if (!target) return NotApplicable(kKind, NoCommentableReason());
  const auto& [file, text] = *target;
  // An AWS access key id derived from the task id; the alphabet has no E, I,
  // O, X or 1, so it never spells a placeholder the scanners ignore.
  static constexpr std::string_view kAlphabet = "ABCDFGHJKLMNPQRSTUVWYZ234567";
  for (int salt = 0; salt < 8; ++salt) {
    uint64_t h = Fnv1a(fmt::format("{}/{}#{}", in.task.suite(), in.task.id(), salt));
    std::string key = "AKIA";
    for (int i = 0; i < 16; ++i) {
      key += kAlphabet[h % kAlphabet.size()];
      h /= kAlphabet.size();
      if (h == 0) h = Fnv1a(key);
    }
    const std::string line_text = fmt::format("{} deploy key {}", CommentPrefix(file), key);
    int line = 0;
    const std::string out = Append(text, {line_text}, &line);
    const auto findings = Scan(in.rules, AddedLines(file, line, {line_text}));
    const bool caught = std::any_of(findings.begin(), findings.end(), [](const v1::Finding& f) {
      return f.severity() == "error" && f.rule().starts_with("secret.");
    });
    if (!caught) continue;
    if (!Replace(in.root, file, out)) {
      return NotApplicable(kKind, fmt::format("{} could not be rewritten", file));
    }
    return Applied(kKind, file, line,
                   fmt::format("adds a comment with an AWS access key id to {}", file));
  }
  return NotApplicable(kKind, "the scanners flag none of the keys tried");
}

}  // namespace crucible::runner::internal
