#include "golden/rules.h"

#include <fmt/core.h>
#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <regex>
#include <string>

namespace crucible::golden {

namespace {

bool ContainsComponents(std::string_view path, std::string_view dirs) {
  // `dirs` is "a/b" (no trailing slash); match whole components of the
  // directory part of `path`.
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return false;
  std::string_view dir = path.substr(0, slash);
  for (size_t at = dir.find(dirs); at != std::string_view::npos; at = dir.find(dirs, at + 1)) {
    bool starts = at == 0 || dir[at - 1] == '/';
    size_t end = at + dirs.size();
    bool ends = end == dir.size() || dir[end] == '/';
    if (starts && ends) return true;
  }
  return false;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Replaces each version number ("1.2", "v1.2.3", "2.0.0-rc.1") with "V".
std::string NormalizeVersions(std::string_view line) {
  std::string out;
  size_t i = 0;
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  while (i < line.size()) {
    char c = line[i];
    bool boundary =
        i == 0 || !alnum(line[i - 1]) || (line[i - 1] == 'v' && (i < 2 || !alnum(line[i - 2])));
    if (std::isdigit(static_cast<unsigned char>(c)) && boundary) {
      size_t j = i;
      bool dot = false;
      while (j < line.size() && (std::isdigit(static_cast<unsigned char>(line[j])) ||
                                 (line[j] == '.' && j + 1 < line.size() &&
                                  std::isdigit(static_cast<unsigned char>(line[j + 1]))))) {
        if (line[j] == '.') dot = true;
        ++j;
      }
      if (dot) {
        // A pre-release or build suffix: "-rc.1", "+build5", "b2".
        while (j < line.size() && (alnum(line[j]) || line[j] == '-' || line[j] == '+' ||
                                   (line[j] == '.' && j + 1 < line.size() && alnum(line[j + 1])))) {
          ++j;
        }
        out += 'V';
        i = j;
        continue;
      }
      out.append(line.substr(i, j - i));
      i = j;
      continue;
    }
    out += c;
    ++i;
  }
  return out;
}

// Calls f(line) for each added ('+') or removed ('-') line inside hunks.
template <typename F>
void ForEachChangedLine(std::string_view patch, F&& f) {
  bool in_hunk = false;
  while (!patch.empty()) {
    size_t nl = patch.find('\n');
    std::string_view line = patch.substr(0, nl);
    patch.remove_prefix(nl == std::string_view::npos ? patch.size() : nl + 1);
    if (line.starts_with("diff --git ")) {
      in_hunk = false;
    } else if (line.starts_with("@@")) {
      in_hunk = true;
    } else if (in_hunk && !line.empty() && (line[0] == '+' || line[0] == '-')) {
      f(line);
    }
  }
}

}  // namespace

bool PathMatches(std::string_view pattern, std::string_view path) {
  if (pattern.empty()) return false;
  if (pattern.back() == '/') {
    std::string_view dirs = pattern.substr(0, pattern.size() - 1);
    while (dirs.starts_with("/")) dirs.remove_prefix(1);
    return !dirs.empty() && ContainsComponents(path, dirs);
  }
  std::string pat(pattern);
  if (pattern.find('/') != std::string_view::npos) {
    return ::fnmatch(pat.c_str(), std::string(path).c_str(), 0) == 0;
  }
  size_t slash = path.rfind('/');
  std::string name(slash == std::string_view::npos ? path : path.substr(slash + 1));
  return ::fnmatch(pat.c_str(), name.c_str(), 0) == 0;
}

bool AnyMatches(const std::vector<std::string>& patterns, std::string_view path) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return PathMatches(p, path); });
}

const std::vector<std::string>& DefaultTestPatterns() {
  static const std::vector<std::string> kPatterns = {
      "test/",     "tests/",     "__tests__/", "conftest.py", "test_*.py",  "*_test.py",
      "*_test.cc", "*_test.cpp", "*_test.go",  "?*.test.?*",  "?*.spec.?*",
  };
  return kPatterns;
}

const std::vector<std::string>& DefaultGeneratedPatterns() {
  static const std::vector<std::string> kPatterns = {
      "package-lock.json",
      "npm-shrinkwrap.json",
      "yarn.lock",
      "pnpm-lock.yaml",
      "Cargo.lock",
      "poetry.lock",
      "Pipfile.lock",
      "uv.lock",
      "composer.lock",
      "Gemfile.lock",
      "go.sum",
      "vendor/",
      "node_modules/",
      "*_pb2.py",
      "*_pb2_grpc.py",
      "*.pb.go",
      "*.pb.h",
      "*.pb.cc",
      "*.min.js",
  };
  return kPatterns;
}

const std::vector<std::string>& DefaultDocsPatterns() {
  static const std::vector<std::string> kPatterns = {
      "*.md",    "*.rst",   "*.adoc",    "docs/",       "doc/",    "LICENSE", "LICENSE.*",
      "COPYING", "AUTHORS", "CHANGELOG", "CHANGELOG.*", "CHANGES", "NEWS",    "CODEOWNERS",
  };
  return kPatterns;
}

const std::vector<std::string>& DefaultVersionFilePatterns() {
  static const std::vector<std::string> kPatterns = {"VERSION", "VERSION.txt", "version.txt",
                                                     ".version", "_version.py"};
  return kPatterns;
}

bool HasGeneratedMarker(std::string_view patch) {
  int seen = 0;
  bool found = false;
  ForEachChangedLine(patch, [&](std::string_view line) {
    if (found || line[0] != '+' || seen >= 5) return;
    ++seen;
    if (line.find("@generated") != std::string_view::npos ||
        line.find("DO NOT EDIT") != std::string_view::npos ||
        line.find("Generated by the protocol buffer compiler") != std::string_view::npos) {
      found = true;
    }
  });
  return found;
}

size_t ChangedLines(std::string_view patch) {
  size_t n = 0;
  ForEachChangedLine(patch, [&](std::string_view) { ++n; });
  return n;
}

bool OnlyVersionStringsChanged(std::string_view patch) {
  std::vector<std::string> removed, added;
  ForEachChangedLine(patch, [&](std::string_view line) {
    (line[0] == '-' ? removed : added).emplace_back(line.substr(1));
  });
  if (removed.empty() || removed.size() != added.size()) return false;
  for (size_t i = 0; i < removed.size(); ++i) {
    if (removed[i] == added[i]) continue;
    if (Lower(removed[i]).find("version") == std::string::npos &&
        Lower(added[i]).find("version") == std::string::npos) {
      return false;
    }
    if (NormalizeVersions(removed[i]) != NormalizeVersions(added[i])) return false;
  }
  return true;
}

namespace {

constexpr size_t kMaxVersionFileLines = 20;

// True for a line of a new version file that holds no code: blank, a
// comment, an include guard or pragma, or a lone bracket (a JSON object's).
bool IsFillerLine(std::string_view line) {
  if (line.empty()) return true;
  for (std::string_view p : {"#", "//", "/*", "*", ";", "--"}) {
    if (line.starts_with(p)) return true;
  }
  return line.find_first_not_of("{}[](),") == std::string_view::npos;
}

// True when `line` states a version: it mentions "version" and holds a
// number ('__version__ = "1.2.3"', '"version": "1.2.3",', "#define
// PKG_VERSION_MAJOR 1"), or is a bare version number ("1.2.3", "v2.0.0-rc.1").
bool IsVersionLine(std::string_view line, bool& dotted) {
  const std::string normalized = NormalizeVersions(line);
  if (Lower(line).find("version") != std::string::npos) {
    if (normalized != line) dotted = true;
    return std::any_of(line.begin(), line.end(),
                       [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
  }
  std::string_view bare = normalized;
  while (!bare.empty() && (bare.front() == '"' || bare.front() == '\'' || bare.front() == 'v')) {
    bare.remove_prefix(1);
  }
  while (!bare.empty() && (bare.back() == '"' || bare.back() == '\'')) bare.remove_suffix(1);
  if (bare != "V") return false;
  dotted = true;
  return true;
}

// True for a file the change adds whose name speaks of a version and whose
// every line states a version or is filler (IsFillerLine), with at least one
// version number in it: a new version.py holding '__version__ = "1.2.3"', a
// version.h of #defines, a version.json.
bool IsNewVersionFile(const vcs::FilePatch& f) {
  if (f.status != 'A' || f.binary) return false;
  size_t slash = f.path.rfind('/');
  std::string name = Lower(slash == std::string::npos ? f.path : f.path.substr(slash + 1));
  if (name.find("version") == std::string::npos) return false;
  bool ok = true, dotted = false;
  size_t lines = 0;
  ForEachChangedLine(f.patch, [&](std::string_view line) {
    if (!ok) return;
    if (line[0] != '+' || ++lines > kMaxVersionFileLines) {
      ok = false;
      return;
    }
    std::string_view text = line.substr(1);
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
      text.remove_suffix(1);
    }
    ok = IsVersionLine(text, dotted) || IsFillerLine(text);
  });
  return ok && dotted;
}

}  // namespace

std::string PreSkipReason(const std::vector<vcs::FilePatch>& files, const SkipRules& rules) {
  if (files.empty()) return "empty change";
  if (std::any_of(files.begin(), files.end(), [](const auto& f) { return f.submodule; })) {
    return "submodule update";
  }
  if (std::all_of(files.begin(), files.end(), [](const auto& f) { return f.binary; })) {
    return "binary-only change";
  }
  auto generated = [&](const vcs::FilePatch& f) {
    return AnyMatches(rules.generated, f.path) || AnyMatches(rules.generated, f.old_path) ||
           HasGeneratedMarker(f.patch);
  };
  auto docs = [&](const vcs::FilePatch& f) { return AnyMatches(rules.docs, f.path); };
  if (rules.max_changed_lines > 0) {
    size_t lines = 0;
    for (const auto& f : files) {
      if (!generated(f)) lines += ChangedLines(f.patch);
    }
    if (lines > rules.max_changed_lines) {
      return fmt::format("diff of {} changed lines is over the limit of {}", lines,
                         rules.max_changed_lines);
    }
  }
  // A version bump: only version files and version strings change (plus
  // lock files and release notes, which a release updates too).
  bool any_version = false, only_version = true;
  for (const auto& f : files) {
    if (AnyMatches(rules.version_files, f.path) || IsNewVersionFile(f)) {
      any_version = true;
    } else if (!f.binary && OnlyVersionStringsChanged(f.patch)) {
      any_version = true;
    } else if (!generated(f) && !docs(f)) {
      only_version = false;
      break;
    }
  }
  if (any_version && only_version) return "version bump";
  if (std::all_of(files.begin(), files.end(), generated)) {
    return "generated, lock or vendored files only";
  }
  if (std::all_of(files.begin(), files.end(), docs)) return "docs-only change";
  return "";
}

namespace {

// The patterns of ClassifyKind. Compiling a std::regex costs far more than
// matching a title with it, so they are compiled once per process.
struct KindPatterns {
  static std::regex Re(const char* pattern) { return std::regex(pattern, std::regex::ECMAScript); }
  const std::regex upgrade_title =
      Re(R"(\b(bump|upgrade)\b|\bupdate\b.*\b(dependenc|deps?\b|to v?\d))");
  const std::regex fix_title =
      Re(R"(\b(fix(es|ed)?|bug(s|fix)?|hotfix|crash(es|ed|ing)?|regression|incorrect(ly)?|)"
         R"(wrong(ly)?|broken|misses|fails?|failing|doesn'?t|does not|not working|typo)\b)");
  const std::regex config_title = Re(R"(\bconfig(uration)?\b|\bdefault\b|\bsettings?\b)");
  const std::regex defect_body =
      Re(R"((^|\n)\s*(expected|actual)( behaviou?r)?\s*:|\b(expects?|expected) \$?-?\d|)"
         R"(\btraceback\b|\bstack trace\b|\bfix(es|ed)? #\d+|)"
         R"(\bissue #?\d+|\bbug\b|\bcrash(es|ed)?\b|\bregression\b)");
  const std::regex fix_branch = Re(R"((^|[/_-])(fix|fixes|bug|bugfix|hotfix)([/_-]|$))");
  const std::regex refactor_title =
      Re(R"(\b(refactor(ing|s|ed)?|renamed?s?|clean ?up|moved?s?|extract(s|ed)?|)"
         R"(simplif(y|ies|ied)|reorgani[sz]e[sd]?)\b)");
};

const KindPatterns& Kinds() {
  static const KindPatterns kPatterns;
  return kPatterns;
}

bool Search(const std::string& text, const std::regex& re) { return std::regex_search(text, re); }

bool IsManifest(const std::string& p) {
  static const std::vector<std::string> kManifests = {
      "package.json", "requirements*.txt", "go.mod",  "Cargo.toml",   "pyproject.toml",
      "setup.py",     "setup.cfg",         "pom.xml", "build.gradle", "build.gradle.kts",
      "Gemfile",      "*.gemspec",         "Pipfile", "composer.json"};
  return AnyMatches(kManifests, p) || AnyMatches(DefaultGeneratedPatterns(), p);
}

bool IsConfigFile(const std::string& p) {
  std::string l = Lower(p);
  return l.find("config") != std::string::npos || l.find("settings") != std::string::npos ||
         PathMatches("*.ini", l) || PathMatches("*.toml", l) || PathMatches("*.yaml", l) ||
         PathMatches("*.yml", l) || PathMatches("*.cfg", l) || PathMatches("*.conf", l) ||
         PathMatches("*.env", l) || PathMatches(".env*", l);
}

}  // namespace

std::string ClassifyKind(std::string_view intent, const std::vector<vcs::FilePatch>& source,
                         const std::vector<vcs::FilePatch>& tests, std::string_view summary) {
  const std::string text = Lower(intent);
  const std::string title = text.substr(0, text.find('\n'));
  const std::string body = title.size() < text.size() ? text.substr(title.size()) : "";
  auto all_source = [&](auto pred) {
    return !source.empty() &&
           std::all_of(source.begin(), source.end(), [&](const auto& f) { return pred(f.path); });
  };
  const KindPatterns& re = Kinds();
  if (Search(title, re.upgrade_title) || all_source(IsManifest)) return "dependency-upgrade";
  if (Search(title, re.fix_title)) return "bug-fix";
  if (all_source(IsConfigFile) || Search(title, re.config_title)) return "config";
  if (Search(body, re.defect_body) || Search(Lower(summary), re.fix_branch)) return "bug-fix";
  auto moved = [](const vcs::FilePatch& f) { return f.status == 'R'; };
  if ((!source.empty() && std::all_of(source.begin(), source.end(), moved) &&
       std::all_of(tests.begin(), tests.end(), moved)) ||
      Search(title, re.refactor_title)) {
    return "refactor";
  }
  return "feature";
}

std::string ClassifyKind(std::string_view intent, const std::vector<std::string>& source_files,
                         std::string_view summary) {
  std::vector<vcs::FilePatch> source;
  for (const auto& p : source_files) {
    vcs::FilePatch f;
    f.path = p;
    source.push_back(std::move(f));
  }
  return ClassifyKind(intent, source, {}, summary);
}

const std::vector<std::string>& FailureModes() {
  static const std::vector<std::string> kModes = {"context-blindness", "instruction-drift",
                                                  "silent-regression", "scope-creep",
                                                  "hallucinated-api"};
  return kModes;
}

const std::vector<std::string>& TaskKinds() {
  static const std::vector<std::string> kKinds = {
      "bug-fix", "feature", "refactor", "dependency-upgrade", "config", "no-test-delta"};
  return kKinds;
}

}  // namespace crucible::golden
