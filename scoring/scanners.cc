// Security scanners over added lines: built-in rules (secrets, code injection,
// prompt-injection text) compiled once for the process into one RE2::Set that
// tells which rules may match a line, then each candidate rule's own RE2 finds
// where. A suite's banned patterns are compiled once per distinct list.
#include "scoring/scanners.h"

#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string_view>
#include <utility>

namespace crucible::scoring {

namespace {

// Only this many bytes of a line are scanned: a minified or generated line of
// megabytes costs no more than a normal one.
constexpr size_t kMaxScannedLine = 4096;
constexpr size_t kMaxMatch = 200;
constexpr size_t kMaxStars = 32;

// ---------------------------------------------------------------- languages

enum Lang : unsigned {
  kPython = 1,
  kJs = 2,
  kC = 4,
  kHashComments = 8,  // shell, YAML, TOML, INI, Ruby, Makefile, ...
  kProse = 16,        // Markdown, text: every line is prose
  kOther = 32,
};
constexpr unsigned kAnyLang = 63;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view BaseName(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string Extension(std::string_view path) {
  std::string_view base = BaseName(path);
  size_t dot = base.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return "";
  return Lower(base.substr(dot + 1));
}

Lang LanguageOf(std::string_view path) {
  std::string base = Lower(BaseName(path));
  std::string ext = Extension(path);
  if (ext == "py" || ext == "pyw" || ext == "pyi") return kPython;
  for (const char* e : {"js", "mjs", "cjs", "jsx", "ts", "tsx", "mts", "cts"}) {
    if (ext == e) return kJs;
  }
  for (const char* e :
       {"c", "h", "cc", "cpp", "cxx", "hpp", "hh", "hxx", "ipp", "inl", "m", "mm"}) {
    if (ext == e) return kC;
  }
  if (base == "dockerfile" || base == "makefile" || base.starts_with(".env")) return kHashComments;
  for (const char* e : {"sh", "bash", "zsh", "env", "ini", "cfg", "conf", "properties", "yaml",
                        "yml", "toml", "rb", "pl", "r", "cmake", "mk"}) {
    if (ext == e) return kHashComments;
  }
  if (ext.empty() || ext == "md" || ext == "markdown" || ext == "txt" || ext == "rst" ||
      ext == "adoc") {
    return kProse;
  }
  return kOther;
}

// Files where a bare `NAME=value` (no quotes) is an assignment of a value.
bool IsConfigFile(std::string_view path) {
  std::string base = Lower(BaseName(path));
  std::string ext = Extension(path);
  if (base.starts_with(".env") || base == "dockerfile") return true;
  for (const char* e :
       {"env", "ini", "cfg", "conf", "properties", "yaml", "yml", "sh", "bash", "zsh"}) {
    if (ext == e) return true;
  }
  return false;
}

// Lock files hold long hashes by design; the high-entropy rule skips them.
bool IsLockFile(std::string_view path) {
  std::string base = Lower(BaseName(path));
  return Extension(path) == "lock" || base == "package-lock.json" ||
         base == "npm-shrinkwrap.json" || base == "pnpm-lock.yaml" || base == "go.sum";
}

// ---------------------------------------------------------------- comments

// Where the comment (or docstring) on each line of a file begins, following
// block comments and triple-quoted strings from line to line. A hunk may start
// inside a block comment it cannot see; a C line that begins with '*' counts
// as one.
class CommentTracker {
 public:
  explicit CommentTracker(Lang lang) : lang_(lang) {}

  // The offset of the first comment byte of `line` (npos: none).
  size_t CommentStart(std::string_view line) {
    if (lang_ == kProse) return 0;
    const bool hash = lang_ & (kPython | kHashComments | kOther);
    const bool slashes = lang_ & (kC | kJs | kOther);
    const bool triple = lang_ & kPython;
    const bool html = lang_ & kOther;
    size_t start = (block_ || triple_ || html_) ? 0 : std::string_view::npos;
    char quote = 0;
    auto at = [&](size_t i, std::string_view s) { return line.substr(i).starts_with(s); };
    bool leading = true;
    for (size_t i = 0; i < line.size(); ++i) {
      char c = line[i];
      if (block_) {
        if (at(i, "*/")) block_ = false, ++i;
        continue;
      }
      if (html_) {
        if (at(i, "-->")) html_ = false, i += 2;
        continue;
      }
      if (triple_) {
        if (at(i, std::string(3, triple_))) triple_ = 0, i += 2;
        continue;
      }
      if (quote) {
        if (c == '\\')
          ++i;
        else if (c == quote)
          quote = 0;
        continue;
      }
      bool was_leading = leading;
      if (c != ' ' && c != '\t') leading = false;
      if (triple && (at(i, "\"\"\"") || at(i, "'''"))) {
        triple_ = c;
        start = std::min(start, i);
        i += 2;
      } else if (c == '"' || c == '\'' || (c == '`' && (lang_ & kJs))) {
        quote = c;
      } else if (hash && c == '#') {
        return std::min(start, i);
      } else if (slashes && at(i, "//")) {
        return std::min(start, i);
      } else if (slashes && at(i, "/*")) {
        block_ = true;
        start = std::min(start, i);
        ++i;
      } else if (html && at(i, "<!--")) {
        html_ = true;
        start = std::min(start, i);
        i += 3;
      } else if (slashes && was_leading && c == '*') {
        return std::min(start, i);
      }
    }
    return start;
  }

 private:
  Lang lang_;
  bool block_ = false;
  bool html_ = false;
  char triple_ = 0;
};

// ---------------------------------------------------------------- text

// `s` with every invalid UTF-8 byte replaced by U+FFFD, cut on a character
// boundary to at most kMaxMatch bytes.
std::string CleanUtf8(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 2;
    if (ok && n == 2 && c < 0xc2) ok = false;  // overlong
    std::string_view piece = ok ? s.substr(i, n) : std::string_view("\xef\xbf\xbd");
    if (out.size() + piece.size() > kMaxMatch) break;
    out += piece;
    i += ok ? n : 1;
  }
  return out;
}

std::string Mask(std::string_view secret, size_t keep) {
  keep = std::min(keep, secret.size());
  return std::string(secret.substr(0, keep)) +
         std::string(std::min(secret.size() - keep, kMaxStars), '*');
}

double Entropy(std::string_view s) {
  std::array<int, 256> counts{};
  for (char c : s) ++counts[static_cast<unsigned char>(c)];
  double h = 0;
  for (int n : counts) {
    if (n == 0) continue;
    double p = static_cast<double>(n) / static_cast<double>(s.size());
    h -= p * std::log2(p);
  }
  return h;
}

// Values that stand for a secret without being one.
bool IsPlaceholder(std::string_view value) {
  std::string v = Lower(value);
  for (const char* p :
       {"xxx",         "***",      "...",    "changeme",    "change_me",  "change-me",
        "${",          "{{",       "<",      "%(",          "%s",         "example",
        "placeholder", "dummy",    "sample", "your_",       "your-",      "yourkey",
        "replace",     "redacted", "todo",   "fixme",       "fake",       "notreal",
        "not_real",    "environ",  "getenv", "process.env", "0000000000", "1234567890",
        "abcdefghij"}) {
    if (v.find(p) != std::string::npos) return true;
  }
  return false;
}

// Key-like names that hold something else: a hash, a location, a name of a key.
bool IsNotASecretName(std::string_view name) {
  std::string n = Lower(name);
  while (!n.empty() && (n.back() == '"' || n.back() == '\'')) n.pop_back();
  for (const char* suffix :
       {"url",   "uri",    "path",   "file",      "dir",         "name",   "type", "field",
        "env",   "var",    "header", "endpoint",  "izer",        "_id",    "hash", "digest",
        "sum",   "sha",    "md5",    "integrity", "fingerprint", "length", "len",  "size",
        "count", "prefix", "regex",  "pattern",   "label"}) {
    if (n.ends_with(suffix)) return true;
  }
  return false;
}

// The high-entropy test, with thresholds measured on real code (docs/scoring.md):
// hex strings >= 3.0 bits per character, other strings >= 0.85 * log2(length)
// capped at 4.5 bits and holding both a letter and a digit.
bool LooksRandom(std::string_view v) {
  if (v.starts_with("/") || v.starts_with("./") || v.find("://") != std::string_view::npos) {
    return false;
  }
  bool hex = std::all_of(v.begin(), v.end(), [](char c) { return std::isxdigit(c); });
  double h = Entropy(v);
  if (hex) return h >= 3.0;
  bool digit = std::any_of(v.begin(), v.end(), [](char c) { return std::isdigit(c); });
  bool alpha = std::any_of(v.begin(), v.end(), [](char c) { return std::isalpha(c); });
  double threshold = std::min(0.85 * std::log2(static_cast<double>(v.size())), 4.5);
  return digit && alpha && h >= threshold;
}

// ---------------------------------------------------------------- rules

enum class Kind { kSecret, kEntropy, kCode, kPrompt };

struct RuleSpec {
  const char* id;
  const char* severity;
  Kind kind;
  unsigned langs;
  const char* pattern;              // group 1: the reported text (entropy: 1 name, 2 value)
  size_t keep = 0;                  // secrets: readable prefix; npos = nothing secret in the match
  const char* unless = nullptr;     // a line matching this is no finding
  bool literal_is_warning = false;  // code: a call on a string literal is a warning
  bool needs_digit = false;         // secrets: the token holds a digit
  bool config_only = false;         // only in configuration files
};

constexpr size_t kAll = std::string_view::npos;

// clang-format off
const RuleSpec kRules[] = {
    // Secrets, most specific first: an overlapping later secret is dropped.
    {"secret.private-key", "error", Kind::kSecret, kAnyLang,
     R"((-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----))", kAll},
    {"secret.aws-access-key", "error", Kind::kSecret, kAnyLang,
     R"(\b((?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16})\b)", 4},
    {"secret.github-token", "error", Kind::kSecret, kAnyLang,
     R"(\b(github_pat_[A-Za-z0-9_]{22,}))", 11},
    {"secret.github-token", "error", Kind::kSecret, kAnyLang,
     R"(\b(gh[pousr]_[A-Za-z0-9]{36,})\b)", 4},
    {"secret.slack-token", "error", Kind::kSecret, kAnyLang,
     R"(\b(xox[abposr]-[A-Za-z0-9-]{10,}))", 5, nullptr, false, true},
    {"secret.slack-token", "error", Kind::kSecret, kAnyLang,
     R"((https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+))", 33},
    {"secret.google-api-key", "error", Kind::kSecret, kAnyLang,
     R"(\b(AIza[0-9A-Za-z_-]{35}))", 4},
    {"secret.stripe-live-key", "error", Kind::kSecret, kAnyLang,
     R"(\b((?:sk|rk)_live_[0-9A-Za-z]{20,}))", 8},
    {"secret.anthropic-key", "error", Kind::kSecret, kAnyLang,
     R"(\b(sk-ant-[A-Za-z0-9_-]{20,}))", 7, nullptr, false, true},
    {"secret.openai-key", "error", Kind::kSecret, kAnyLang,
     R"(\b(sk-[A-Za-z0-9_-]{20,}))", 3, nullptr, false, true},
    {"secret.high-entropy", "error", Kind::kEntropy, kAnyLang,
     R"((?i)([\w.-]*(?:password|passwd|pwd|secret|token|api_?key|api-key|access_?key|access-key|private_?key|auth_?key|credentials?)[\w.-]*)["']?\s*(?::=|=>|==|[:=])\s*[rbuRBU]{0,2}["'`]([^"'`\s]{20,})["'`])",
     3},
    {"secret.high-entropy", "error", Kind::kEntropy, kAnyLang,
     R"((?i)^\s*(?:export\s+)?([\w.-]*(?:password|passwd|pwd|secret|token|api_?key|api-key|access_?key|access-key|private_?key|auth_?key|credentials?)[\w.-]*)\s*[:=]\s*([^"'`\s#]{20,})\s*(?:#.*)?$)",
     3, nullptr, false, false, true},

    // Code injection.
    {"injection.eval", "error", Kind::kCode, kPython | kJs,
     R"((?:^|[^\w.$])(eval\s*\())", 0, nullptr, true},
    {"injection.eval", "error", Kind::kCode, kJs,
     R"(\b(new\s+Function\s*\())", 0, nullptr, true},
    {"injection.exec", "error", Kind::kCode, kPython,
     R"((?:^|[^\w.$])(exec\s*\())", 0, nullptr, true},
    {"injection.shell", "error", Kind::kCode, kPython,
     R"(\b(os\s*\.\s*(?:system|popen)\s*\())", 0, nullptr, true},
    {"injection.shell", "warning", Kind::kCode, kPython,
     R"(\b(shell\s*=\s*True)\b)"},
    {"injection.shell", "error", Kind::kCode, kJs,
     R"((?:^|[^\w.$])(exec(?:Sync)?\s*\())", 0, nullptr, true},
    {"injection.shell", "error", Kind::kCode, kJs,
     R"(\b((?:child_process|childProcess|cp)\s*\.\s*exec(?:Sync)?\s*\())", 0, nullptr, true},
    {"injection.shell", "warning", Kind::kCode, kJs,
     R"(\b(shell\s*:\s*true)\b)"},
    {"injection.shell", "error", Kind::kCode, kC,
     R"((?:^|[^\w.>:])((?:::|std::)?system\s*\())", 0, nullptr, true},
    {"injection.shell", "error", Kind::kCode, kC,
     R"((?:^|[^\w.>:])(_?popen\s*\())", 0, nullptr, true},
    {"injection.deserialize", "warning", Kind::kCode, kPython,
     R"(\b((?:c?[Pp]ickle|_pickle|dill|cloudpickle|marshal)\s*\.\s*(?:loads?|Unpickler)\s*\())"},
    {"injection.deserialize", "warning", Kind::kCode, kPython,
     R"(\b(yaml\s*\.\s*(?:load|load_all)\s*\())", 0,
     R"((?:Safe|CSafe|Base)Loader)"},
    {"injection.deserialize", "warning", Kind::kCode, kPython,
     R"(\b(yaml\s*\.\s*unsafe_load(?:_all)?\s*\())"},

    // Prompt-injection text, in comments, docstrings and prose only.
    {"prompt.ignore-instructions", "error", Kind::kPrompt, kAnyLang,
     R"((?i)\b((?:ignore|disregard|forget|override|bypass)\s+(?:(?:all|any|the|your|of|these)\s+)*(?:previous|prior|above|earlier|preceding|former|original|system|existing)\s+(?:instructions?|prompts?|rules|directions|guidelines|directives|context|messages?))\b)"},
    {"prompt.conceal", "error", Kind::kPrompt, kAnyLang,
     R"((?i)\b((?:do\s+not|don'?t|never)\s+(?:tell|inform|mention\s+(?:this\s+|it\s+)?to|reveal\s+(?:this\s+|it\s+)?to)\s+the\s+(?:user|human|reviewer|operator)s?|without\s+(?:telling|informing|notifying)\s+the\s+(?:user|human|reviewer|operator)s?|(?:hide|conceal|keep)\s+(?:this|it)\s+(?:secret\s+)?from\s+the\s+(?:user|human|reviewer|operator)s?)\b)"},
    {"prompt.addressed-to-ai", "error", Kind::kPrompt, kAnyLang,
     R"((?i)\b((?:note|message|instructions?|attention|notice|reminder)\s+(?:to|for)\s+(?:any\s+|the\s+|all\s+)?(?:ai|llms?|assistants?|language\s+models?|ai\s+agents?|coding\s+agents?|chatbots?|copilots?)|if\s+you\s+are\s+(?:an?\s+)?(?:ai|llm|large\s+language\s+model|language\s+model|ai\s+assistant|assistant|ai\s+agent|coding\s+agent|automated\s+agent|chatbot)|(?:hey|hi|hello|dear)\s*,?\s+(?:ai|llm|assistant|claude|chatgpt|gpt|copilot|gemini)|(?:ai|llm)\s+(?:agents?|assistants?|models?)\s+(?:must|should|shall|reading\s+this|processing\s+this|reviewing\s+this))\b)"},
    {"prompt.role-override", "warning", Kind::kPrompt, kAnyLang,
     R"((?i)\b(you\s+are\s+now\s+(?:an?|the|my|acting|operating|no\s+longer|free|dan|unrestricted|jailbroken)|from\s+now\s+on,?\s+you\s+(?:are|will|must|should)|new\s+instructions\s*:|pretend\s+(?:to\s+be|you\s+are)\s+an?|act\s+as\s+an?\s+(?:unrestricted|unfiltered|different))\b)"},
    {"prompt.system-prompt", "warning", Kind::kPrompt, kAnyLang,
     R"((?i)(\bsystem\s+prompt\b|<\|im_start\|>|<\|system\|>|\[/?INST\]|<</?SYS>>))"},
};
// clang-format on

// A call's argument is one string literal: `("...")`, `('...')`, raw or bytes
// prefixes allowed, f-strings and template strings not.
const char kLiteralArgument[] = R"(^\s*(?:[rRbBuU]{0,2}"[^"\\]*"|[rRbBuU]{0,2}'[^'\\]*')?\s*\))";

RE2::Options BuiltinOptions() {
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingLatin1);  // every byte is a character: any input is fine
  o.set_log_errors(false);
  return o;
}

struct Rule {
  const RuleSpec* spec;
  std::unique_ptr<RE2> re;
  std::unique_ptr<RE2> unless;
};

// A built-in rule that does not compile is a bug in Crucible.
[[noreturn]] void Broken(std::string_view pattern, const std::string& error) {
  std::fprintf(stderr, "scanners: built-in rule %.*s: %s\n", static_cast<int>(pattern.size()),
               pattern.data(), error.c_str());
  std::abort();
}

struct Builtins {
  std::vector<Rule> rules;
  RE2::Set set{BuiltinOptions(), RE2::UNANCHORED};
  RE2 literal{kLiteralArgument, BuiltinOptions()};
  std::vector<std::unique_ptr<RE2>> secrets;  // the known-format secret rules, for masking

  Builtins() {
    for (const RuleSpec& spec : kRules) {
      Rule r{&spec, std::make_unique<RE2>(spec.pattern, BuiltinOptions()), nullptr};
      if (!r.re->ok()) Broken(spec.pattern, r.re->error());
      if (spec.unless) r.unless = std::make_unique<RE2>(spec.unless, BuiltinOptions());
      if (spec.kind == Kind::kSecret && spec.keep != kAll) {
        secrets.push_back(std::make_unique<RE2>(spec.pattern, BuiltinOptions()));
      }
      if (set.Add(spec.pattern, nullptr) < 0) Broken(spec.pattern, "refused by RE2::Set");
      rules.push_back(std::move(r));
    }
    if (!literal.ok()) Broken(kLiteralArgument, literal.error());
    if (!set.Compile()) Broken("the set of built-in rules", "does not compile");
  }
};

const Builtins& TheBuiltins() {
  static const Builtins* b = new Builtins();
  return *b;
}

// `text` with every known-format secret in it masked.
std::string MaskKnownSecrets(std::string_view text) {
  std::string out(text);
  for (const auto& re : TheBuiltins().secrets) {
    re2::StringPiece input(out), m;
    std::string next;
    size_t done = 0;
    while (RE2::FindAndConsume(&input, *re, &m)) {
      size_t at = static_cast<size_t>(m.data() - out.data());
      next += out.substr(done, at - done);
      next += Mask(std::string_view(m.data(), m.size()), 4);
      done = at + m.size();
      if (m.empty()) break;
    }
    if (done == 0) continue;
    next += out.substr(done);
    out = std::move(next);
  }
  return out;
}

struct Hit {
  int line;
  size_t pos;
  v1::Finding finding;
};

class RuleScanners : public Scanners {
 public:
  explicit RuleScanners(std::vector<std::unique_ptr<RE2>> banned) : banned_(std::move(banned)) {}

  std::vector<v1::Finding> Scan(const std::vector<vcs::DiffFile>& files) const override {
    std::vector<v1::Finding> out;
    std::vector<int> candidates;
    for (const vcs::DiffFile& file : files) {
      if (file.binary) continue;
      Lang lang = LanguageOf(file.path);
      bool config = IsConfigFile(file.path);
      bool lock = IsLockFile(file.path);
      std::vector<Hit> hits;
      for (const vcs::DiffHunk& hunk : file.hunks) {
        CommentTracker comments(lang);
        for (const vcs::DiffLine& dl : hunk.lines) {
          if (dl.origin == '-') continue;
          std::string_view text(dl.text);
          if (text.size() > kMaxScannedLine) text = text.substr(0, kMaxScannedLine);
          size_t comment = comments.CommentStart(text);
          if (dl.origin != '+') continue;
          ScanLine(file.path, lang, config, lock, dl.new_line, text, comment, candidates, hits);
        }
      }
      std::stable_sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
        return std::tie(a.line, a.pos) < std::tie(b.line, b.pos);
      });
      for (Hit& h : hits) out.push_back(std::move(h.finding));
    }
    return out;
  }

 private:
  void ScanLine(const std::string& path, Lang lang, bool config, bool lock, int line_no,
                std::string_view text, size_t comment, std::vector<int>& candidates,
                std::vector<Hit>& hits) const {
    const Builtins& b = TheBuiltins();
    std::vector<std::pair<size_t, size_t>> secret_spans;
    // `masked`: the match has its secret masked already; other matches get
    // any known-format secret in them masked.
    auto add = [&](bool masked, const char* rule, const char* severity, size_t pos,
                   std::string match) {
      Hit h{line_no, pos, {}};
      h.finding.set_rule(rule);
      h.finding.set_severity(severity);
      h.finding.set_file(path);
      h.finding.set_line(line_no);
      h.finding.set_match(CleanUtf8(masked ? match : MaskKnownSecrets(match)));
      hits.push_back(std::move(h));
    };
    candidates.clear();
    if (b.set.Match(text, &candidates)) {
      std::sort(candidates.begin(), candidates.end());
      for (int index : candidates) {
        const Rule& rule = b.rules[static_cast<size_t>(index)];
        const RuleSpec& spec = *rule.spec;
        if (!(spec.langs & lang)) continue;
        if (spec.config_only && !config) continue;
        if (spec.kind == Kind::kEntropy && lock) continue;
        if (rule.unless && RE2::PartialMatch(text, *rule.unless)) continue;
        std::array<re2::StringPiece, 3> g;
        size_t from = 0;
        while (from <= text.size() &&
               rule.re->Match(text, from, text.size(), RE2::UNANCHORED, g.data(), 3)) {
          size_t end = static_cast<size_t>(g[0].data() - text.data()) + g[0].size();
          from = g[0].empty() ? end + 1 : end;
          size_t pos = static_cast<size_t>(g[1].data() - text.data());
          std::string_view reported(g[1].data(), g[1].size());
          switch (spec.kind) {
            case Kind::kSecret:
            case Kind::kEntropy: {
              std::string_view secret = spec.kind == Kind::kEntropy
                                            ? std::string_view(g[2].data(), g[2].size())
                                            : reported;
              size_t s_begin = static_cast<size_t>(secret.data() - text.data());
              size_t s_end = s_begin + secret.size();
              bool overlaps = std::any_of(secret_spans.begin(), secret_spans.end(), [&](auto sp) {
                return s_begin < sp.second && sp.first < s_end;
              });
              if (overlaps || IsPlaceholder(secret)) break;
              // A key header that ends its string is a parser's marker, not a key.
              if (spec.keep == kAll && end < text.size() &&
                  (text[end] == '"' || text[end] == '\'' || text[end] == '`')) {
                break;
              }
              if (spec.needs_digit && std::none_of(secret.begin(), secret.end(),
                                                   [](char c) { return std::isdigit(c); })) {
                break;
              }
              if (spec.kind == Kind::kEntropy &&
                  (IsNotASecretName(reported) || !LooksRandom(secret))) {
                break;
              }
              secret_spans.emplace_back(s_begin, s_end);
              std::string match;
              if (spec.keep == kAll) {
                match = std::string(reported);
              } else if (spec.kind == Kind::kEntropy) {
                size_t m_begin = static_cast<size_t>(g[0].data() - text.data());
                match = std::string(text.substr(pos, s_begin - pos)) + Mask(secret, spec.keep) +
                        std::string(text.substr(s_end, m_begin + g[0].size() - s_end));
              } else {
                match = Mask(secret, spec.keep);
              }
              add(true, spec.id, spec.severity, pos, std::move(match));
              break;
            }
            case Kind::kCode: {
              // Code rules look at code: a call named in a comment or a
              // docstring runs nothing.
              if (comment != std::string_view::npos && pos >= comment) break;
              const char* severity = spec.severity;
              if (spec.literal_is_warning && RE2::PartialMatch(text.substr(end), b.literal)) {
                severity = "warning";
              }
              add(false, spec.id, severity, pos, std::string(reported));
              break;
            }
            case Kind::kPrompt:
              if (comment != std::string_view::npos && pos >= comment) {
                add(false, spec.id, spec.severity, pos, std::string(reported));
              }
              break;
          }
        }
      }
    }
    for (const auto& re : banned_) {
      re2::StringPiece m;
      size_t from = 0;
      while (from <= text.size() && re->Match(text, from, text.size(), RE2::UNANCHORED, &m, 1)) {
        size_t pos = static_cast<size_t>(m.data() - text.data());
        from = m.empty() ? pos + 1 : pos + m.size();
        add(false, "banned", "error", pos, std::string(m.data(), m.size()));
      }
    }
  }

  std::vector<std::unique_ptr<RE2>> banned_;
};

}  // namespace

Result<std::shared_ptr<const Scanners>> Scanners::For(std::span<const std::string> banned) {
  static std::mutex mu;
  static std::map<std::vector<std::string>, std::shared_ptr<const Scanners>> cache;
  std::vector<std::string> key(banned.begin(), banned.end());
  std::lock_guard lock(mu);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  TheBuiltins();  // compile the built-in rules once, here rather than in a first Scan
  std::vector<std::unique_ptr<RE2>> compiled;
  for (const std::string& pattern : key) {
    RE2::Options o;  // UTF-8: a suite may ban non-ASCII text
    o.set_log_errors(false);
    auto re = std::make_unique<RE2>(pattern, o);
    if (!re->ok()) {
      return Fail(Code::kInvalidArgument,
                  "banned pattern '" + pattern + "' is not a valid RE2 expression: " + re->error());
    }
    compiled.push_back(std::move(re));
  }
  // Suites are few; a runaway caller cannot grow the cache without bound.
  if (cache.size() >= 256) cache.clear();
  std::shared_ptr<const Scanners> s = std::make_shared<RuleScanners>(std::move(compiled));
  cache.emplace(std::move(key), s);
  return s;
}

}  // namespace crucible::scoring
