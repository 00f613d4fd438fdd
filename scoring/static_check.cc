#include "scoring/static_check.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "golden/utf8.h"
#include "scoring/static_lex.h"
#include "scoring/static_stdlib.h"

namespace crucible::scoring {

namespace {

using internal::DefScope;
using internal::Lang;
using internal::LangOf;
using Clock = std::chrono::steady_clock;

// Budgets of one check: the tree is the agent's, so its size is not ours to
// choose. What was found until a budget ran out is kept, with an error.
constexpr size_t kMaxBytesRead = size_t{256} << 20;
constexpr auto kMaxWall = std::chrono::seconds(30);
// Reported references: per symbol and in all; imports in all.
constexpr int kMaxRefsPerSymbol = 20;
constexpr int kMaxRefs = 200;
constexpr int kMaxImports = 200;

// ---- The tree on disk --------------------------------------------------

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Opens `rel` beneath the directory `root_fd` one component at a time,
// never following a symbolic link and refusing "." and ".." components;
// -1 when it cannot.
int OpenBeneath(int root_fd, std::string_view rel, bool directory) {
  if (rel.empty() || rel.front() == '/') return -1;
  int fd = ::openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  while (fd >= 0) {
    size_t slash = rel.find('/');
    std::string comp(rel.substr(0, slash));
    if (comp.empty() || comp == "." || comp == "..") {
      ::close(fd);
      return -1;
    }
    const bool last = slash == std::string_view::npos;
    int flags = O_NOFOLLOW | O_CLOEXEC;
    if (!last) {
      flags |= O_PATH | O_DIRECTORY;
    } else if (directory) {
      flags |= O_RDONLY | O_DIRECTORY;
    } else {
      flags |= O_RDONLY | O_NONBLOCK | O_NOCTTY;  // a fifo must not block us
    }
    int next = ::openat(fd, comp.c_str(), flags);
    ::close(fd);
    fd = next;
    if (last) return fd;
    rel.remove_prefix(slash + 1);
  }
  return -1;
}

struct DirState {
  std::string root;
  DirectoryTreeLimits limits;
  bool listed = false;
  std::vector<std::string> files;
  std::string incomplete;

  void List() {
    if (listed) return;
    listed = true;
    Fd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (root_fd.fd < 0) {
      incomplete = fmt::format("the tree {} cannot be opened: {}", root, std::strerror(errno));
      return;
    }
    std::vector<std::pair<std::string, int>> stack = {{"", 0}};
    bool too_deep = false;
    while (!stack.empty()) {
      auto [dir, depth] = std::move(stack.back());
      stack.pop_back();
      int fd = dir.empty() ? ::openat(root_fd.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                           : OpenBeneath(root_fd.fd, dir, /*directory=*/true);
      if (fd < 0) continue;
      DIR* d = ::fdopendir(fd);
      if (d == nullptr) {
        ::close(fd);
        continue;
      }
      while (dirent* e = ::readdir(d)) {
        std::string_view name = e->d_name;
        if (name == "." || name == "..") continue;
        unsigned char type = e->d_type;
        if (type == DT_UNKNOWN) {
          struct stat st;
          if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
          type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
        }
        std::string path = dir.empty() ? std::string(name) : dir + "/" + std::string(name);
        if (type == DT_DIR) {
          if (name == ".git") continue;
          if (depth + 1 >= limits.max_depth) {
            too_deep = true;
            continue;
          }
          stack.emplace_back(std::move(path), depth + 1);
        } else if (type == DT_REG) {
          if (files.size() >= limits.max_files) {
            incomplete = fmt::format(
                "the tree has more than {} files: the static checks saw only {} of them",
                limits.max_files, limits.max_files);
            ::closedir(d);
            std::sort(files.begin(), files.end());
            return;
          }
          files.push_back(std::move(path));
        }
      }
      ::closedir(d);
    }
    std::sort(files.begin(), files.end());
    if (too_deep) {
      incomplete = fmt::format(
          "the tree has directories nested deeper than {}: the static checks did not look into "
          "them",
          limits.max_depth);
    }
  }

  std::optional<std::string> Read(const std::string& path) const {
    Fd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (root_fd.fd < 0) return std::nullopt;
    Fd fd(OpenBeneath(root_fd.fd, path, /*directory=*/false));
    if (fd.fd < 0) return std::nullopt;
    struct stat st;
    if (::fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<uint64_t>(st.st_size) > limits.max_file_bytes) {
      return std::nullopt;
    }
    std::string out(static_cast<size_t>(st.st_size), '\0');
    size_t got = 0;
    while (got < out.size()) {
      ssize_t r = ::read(fd.fd, out.data() + got, out.size() - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    out.resize(got);  // a file that shrank meanwhile is read as it is
    return out;
  }
};

// ---- Helpers -----------------------------------------------------------

std::string_view DirOf(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
}

std::string_view BaseOf(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string Join(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  return std::string(a) + "/" + std::string(b);
}

// A file with a NUL byte in its first 8,000 bytes is binary (git's rule).
bool LooksBinary(std::string_view content) {
  return content.substr(0, 8000).find('\0') != std::string_view::npos;
}

// Names that are never reported as stale: too short to tell apart, special
// methods, and names every program has.
bool Ignored(std::string_view name, Lang lang) {
  if (name.size() < 2) return true;
  if (name.starts_with("__") && name.ends_with("__")) return true;
  if (lang == Lang::kPython) return name == "self" || name == "cls";
  return name == "main";
}

std::string Escape(std::string_view s) {
  return golden::internal::EscapeInvalidUtf8(std::string(s));
}

// Lowercase, with '-' and '.' as '_' (how pip compares names).
std::string NormalizeDist(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (c == '-' || c == '.') c = '_';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// Modules whose distribution has another name.
const std::unordered_multimap<std::string, std::string>& ImportAliases() {
  static const auto* aliases = new std::unordered_multimap<std::string, std::string>{
      {"yaml", "pyyaml"},
      {"pil", "pillow"},
      {"sklearn", "scikit_learn"},
      {"skimage", "scikit_image"},
      {"bs4", "beautifulsoup4"},
      {"cv2", "opencv_python"},
      {"cv2", "opencv_python_headless"},
      {"cv2", "opencv_contrib_python"},
      {"dateutil", "python_dateutil"},
      {"dotenv", "python_dotenv"},
      {"jwt", "pyjwt"},
      {"attr", "attrs"},
      {"serial", "pyserial"},
      {"crypto", "pycryptodome"},
      {"crypto", "pycrypto"},
      {"openssl", "pyopenssl"},
      {"git", "gitpython"},
      {"zmq", "pyzmq"},
      {"magic", "python_magic"},
      {"docx", "python_docx"},
      {"usb", "pyusb"},
      {"mpl_toolkits", "matplotlib"},
      {"pkg_resources", "setuptools"},
      {"_pytest", "pytest"},
      {"google", "protobuf"},
      {"google", "googleapis_common_protos"},
      {"grpc", "grpcio"},
      {"jose", "python_jose"},
      {"multipart", "python_multipart"},
      {"slugify", "python_slugify"},
      {"telegram", "python_telegram_bot"},
      {"fitz", "pymupdf"},
      {"win32api", "pywin32"},
      {"mysqldb", "mysqlclient"},
      {"psycopg2", "psycopg2_binary"},
  };
  return *aliases;
}

bool IsManifest(std::string_view path) {
  std::string_view base = BaseOf(path);
  if (base == "pyproject.toml" || base == "setup.py" || base == "setup.cfg" || base == "Pipfile") {
    return true;
  }
  const bool txt = base.ends_with(".txt") || base.ends_with(".in");
  if (!txt) return false;
  return base.starts_with("requirements") || base.find("requirements") != std::string_view::npos ||
         BaseOf(DirOf(path)) == "requirements";
}

// ---- Python imports ----------------------------------------------------

struct PyImport {
  int line = 0;
  std::string name;      // as written: the module, or module.name
  std::string module;    // with its leading dots
  std::string imported;  // the name of `from module import NAME`; empty for `import module`
};

void SkipBlank(std::string_view s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\f')) ++i;
}

std::string_view Word(std::string_view s, size_t& i) {
  size_t b = i;
  if (i < s.size() && internal::IsIdentChar(s[i]) && !(s[i] >= '0' && s[i] <= '9')) {
    while (i < s.size() && internal::IsIdentChar(s[i])) ++i;
  }
  return s.substr(b, i - b);
}

// Moves `k` past blanks and an "as NAME" alias of an import, if there is one.
void SkipAlias(std::string_view s, size_t& k) {
  SkipBlank(s, k);
  size_t a = k;
  if (Word(s, a) == "as") {
    SkipBlank(s, a);
    Word(s, a);
    k = a;
  }
}

// A dotted name (a.b.c), possibly after leading dots when `relative`.
std::string Dotted(std::string_view s, size_t& i, bool relative) {
  std::string out;
  if (relative) {
    while (i < s.size() && s[i] == '.') out += s[i++];
    SkipBlank(s, i);
    size_t peek = i;
    if (!out.empty() && Word(s, peek) == "import") return out;  // from . import x
  }
  while (true) {
    auto w = Word(s, i);
    if (w.empty()) break;
    out += w;
    if (i < s.size() && s[i] == '.') {
      out += '.';
      ++i;
      continue;
    }
    break;
  }
  return out;
}

// The import statement that starts on code line `at` (0-based) of `lines`
// (comments and strings blanked), if any.
std::vector<PyImport> ParsePyImport(const std::vector<std::string_view>& lines, size_t at) {
  std::vector<PyImport> out;
  std::string_view s = lines[at];
  size_t i = 0;
  SkipBlank(s, i);
  size_t k = i;
  auto kw = Word(s, k);
  if (kw != "import" && kw != "from") return out;
  if (k >= s.size() || (s[k] != ' ' && s[k] != '\t' && !(kw == "from" && s[k] == '.'))) return out;
  const int line = static_cast<int>(at) + 1;
  if (kw == "import") {
    while (true) {
      SkipBlank(s, k);
      std::string mod = Dotted(s, k, false);
      if (mod.empty() || mod.back() == '.') break;
      out.push_back({line, mod, mod, ""});
      SkipAlias(s, k);
      SkipBlank(s, k);
      if (k < s.size() && s[k] == ',') {
        ++k;
        continue;
      }
      break;
    }
    return out;
  }
  SkipBlank(s, k);
  std::string mod = Dotted(s, k, true);
  if (mod.empty()) return out;
  SkipBlank(s, k);
  if (Word(s, k) != "import") return out;
  // The names, on this line or, in parentheses, on the following ones.
  bool paren = false;
  size_t ln = at;
  while (true) {
    SkipBlank(s, k);
    if (k < s.size() && s[k] == '(' && !paren) {
      paren = true;
      ++k;
      continue;
    }
    if (k < s.size() && s[k] == '\\' && k + 1 == s.size() && ln + 1 < lines.size()) {
      s = lines[++ln];
      k = 0;
      continue;
    }
    if (k >= s.size()) {
      if (!paren || ln + 1 >= lines.size() || ln - at > 1000) break;
      s = lines[++ln];
      k = 0;
      continue;
    }
    if (s[k] == ')' || s[k] == ';') break;
    if (s[k] == ',') {
      ++k;
      continue;
    }
    if (s[k] == '*') {
      out.push_back({static_cast<int>(ln) + 1, mod, mod, ""});
      break;
    }
    auto name = Word(s, k);
    if (name.empty()) break;
    const std::string written =
        mod.back() == '.' ? mod + std::string(name) : mod + "." + std::string(name);
    out.push_back({static_cast<int>(ln) + 1, written, mod, std::string(name)});
    SkipAlias(s, k);
  }
  if (out.empty()) out.push_back({line, mod, mod, ""});
  return out;
}

size_t IndentOf(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return i;
}

// True when the import on line `at` is indented under a `try:` (a guarded,
// optional import).
bool UnderTry(const std::vector<std::string_view>& lines, size_t at) {
  const size_t indent = IndentOf(lines[at]);
  if (indent == 0) return false;
  for (size_t k = at; k-- > 0;) {
    std::string_view l = lines[k];
    size_t ind = IndentOf(l);
    if (ind == l.size() || ind >= indent) continue;
    size_t i = ind;
    if (Word(l, i) != "try") return false;
    SkipBlank(l, i);
    return i < l.size() && l[i] == ':';
  }
  return false;
}

// ---- The check ---------------------------------------------------------

struct Candidate {
  std::string defined_in;
  bool defined = false;  // still defined somewhere in the final tree
  std::vector<std::pair<std::string, int>> refs;
  int ref_count = 0;
};

using Candidates = std::map<std::string, Candidate, std::less<>>;

class Checker {
 public:
  Checker(const Tree& tree, v1::StaticFacts& facts) : tree_(tree), facts_(facts) {}

  void Run(const std::vector<vcs::DiffFile>& diff);

 private:
  // The content of `path`, counted against the budget; nullopt when it
  // cannot be read, is binary, or the budget is spent.
  std::optional<std::string> Read(const std::string& path);
  bool OverBudget();
  void Stop(std::string why) {
    if (facts_.error().empty()) facts_.set_error(std::move(why));
    stopped_ = true;
  }

  const std::vector<std::string>& Files();
  void FindStaleReferences(Lang lang, Candidates& cands);
  void CheckPythonImports(const std::string& path, const std::vector<int>& added);
  void CheckIncludes(const std::string& path, const std::vector<int>& added);
  void AddBrokenImport(const std::string& file, int line, std::string name, std::string detail);

  // Python module index: "a/b/c" for a/b/c.py, "a/b" for a package directory.
  bool ModuleExists(const std::string& path);
  std::string ModuleFile(const std::string& path);
  bool DefinesName(const std::string& module_path, const std::string& name);
  bool ExternalKnown(const std::string& top);
  // Resolves one import: `why` is empty when it resolves; `module_missing`
  // when the module itself (not an imported name) does not resolve.
  struct Resolution {
    std::string why;
    bool module_missing = false;
  };
  Resolution ResolvePython(const std::string& file, const PyImport& imp);

  const Tree& tree_;
  v1::StaticFacts& facts_;
  Clock::time_point start_ = Clock::now();
  size_t bytes_read_ = 0;
  bool stopped_ = false;
  bool listed_ = false;
  std::vector<std::string> files_;
  std::unordered_set<std::string> file_set_;
  bool indexed_ = false;
  std::unordered_set<std::string> modules_;
  std::optional<std::unordered_set<std::string>> dists_;
  std::unordered_map<std::string, std::pair<bool, std::unordered_set<std::string>>> bindings_;
};

bool Checker::OverBudget() {
  if (stopped_) return true;
  if (Clock::now() - start_ > kMaxWall) {
    Stop(fmt::format("the static checks stopped after {} s", kMaxWall.count()));
  } else if (bytes_read_ > kMaxBytesRead) {
    Stop(fmt::format("the static checks stopped after reading {} MiB", kMaxBytesRead >> 20));
  }
  return stopped_;
}

std::optional<std::string> Checker::Read(const std::string& path) {
  if (OverBudget()) return std::nullopt;
  auto content = tree_.read(path);
  if (!content) return std::nullopt;
  bytes_read_ += content->size();
  if (LooksBinary(*content)) return std::nullopt;
  return content;
}

const std::vector<std::string>& Checker::Files() {
  if (!listed_) {
    listed_ = true;
    files_ = tree_.list();
    file_set_.insert(files_.begin(), files_.end());
    if (tree_.incomplete) {
      if (std::string why = tree_.incomplete(); !why.empty() && facts_.error().empty()) {
        facts_.set_error(std::move(why));
      }
    }
  }
  return files_;
}

void Checker::FindStaleReferences(Lang lang, Candidates& cands) {
  std::vector<std::string_view> defs;
  for (const auto& path : Files()) {
    if (LangOf(path) != lang) continue;
    auto content = Read(path);
    if (stopped_) return;
    if (!content) continue;
    const std::string code = internal::CodeView(*content, lang);
    const auto lines = internal::SplitLines(code);
    for (size_t n = 0; n < lines.size(); ++n) {
      std::string_view l = lines[n];
      defs.clear();
      internal::LineDefinitions(l, lang, DefScope::kFinal, defs);
      for (auto d : defs) {
        if (auto it = cands.find(d); it != cands.end()) it->second.defined = true;
      }
      size_t i = 0;
      while (i < l.size()) {
        if (!internal::IsIdentChar(l[i])) {
          ++i;
          continue;
        }
        size_t b = i;
        while (i < l.size() && internal::IsIdentChar(l[i])) ++i;
        if (l[b] >= '0' && l[b] <= '9') continue;
        auto it = cands.find(l.substr(b, i - b));
        if (it == cands.end()) continue;
        auto& c = it->second;
        const int line = static_cast<int>(n) + 1;
        if (!c.refs.empty() && c.refs.back().second == line && c.refs.back().first == path) {
          continue;  // one reference per line
        }
        ++c.ref_count;
        if (c.refs.size() < kMaxRefsPerSymbol) c.refs.emplace_back(path, line);
      }
    }
  }
}

void Checker::AddBrokenImport(const std::string& file, int line, std::string name,
                              std::string detail) {
  if (facts_.broken_imports_size() >= kMaxImports) return;
  auto* b = facts_.add_broken_imports();
  b->set_file(Escape(file));
  b->set_line(line);
  b->set_name(Escape(name));
  b->set_detail(Escape(detail));
}

bool Checker::ModuleExists(const std::string& path) {
  if (!indexed_) {
    indexed_ = true;
    for (const auto& f : Files()) {
      std::string_view v = f;
      std::string_view mod;
      if (v.ends_with(".py") || v.ends_with(".pyi")) {
        mod = v.substr(0, v.rfind('.'));
        if (BaseOf(mod) == "__init__") mod = DirOf(mod);
      } else if (v.ends_with(".so") || v.ends_with(".pyd")) {
        std::string_view base = BaseOf(v);
        std::string_view dir = DirOf(v);
        std::string m = Join(dir, base.substr(0, base.find('.')));
        modules_.insert(m);
        mod = DirOf(v);
      } else {
        continue;
      }
      // The module and every directory above it (packages, namespace or not).
      while (!mod.empty() && modules_.insert(std::string(mod)).second) mod = DirOf(mod);
    }
  }
  return modules_.contains(path);
}

std::string Checker::ModuleFile(const std::string& path) {
  for (const char* suffix : {".py", "/__init__.py", ".pyi", "/__init__.pyi"}) {
    std::string f = path.empty() ? std::string(suffix + (suffix[0] == '/' ? 1 : 0)) : path + suffix;
    if (file_set_.contains(f)) return f;
  }
  return "";
}

bool Checker::DefinesName(const std::string& module_path, const std::string& name) {
  if (ModuleExists(Join(module_path, name))) return true;  // a submodule
  const std::string file = ModuleFile(module_path);
  if (file.empty()) return false;  // a namespace package only has submodules
  auto it = bindings_.find(file);
  if (it == bindings_.end()) {
    bool dynamic = false;
    std::unordered_set<std::string> names;
    auto content = Read(file);
    if (!content) {
      dynamic = true;  // cannot tell: never report
    } else {
      const std::string code = internal::CodeView(*content, Lang::kPython);
      const auto lines = internal::SplitLines(code);
      std::vector<std::string_view> defs;
      for (size_t n = 0; n < lines.size(); ++n) {
        defs.clear();
        internal::LineDefinitions(lines[n], Lang::kPython, DefScope::kFinal, defs);
        for (auto d : defs) {
          names.emplace(d);
          if (d == "__getattr__") dynamic = true;
        }
        for (const auto& imp : ParsePyImport(lines, n)) {
          if (imp.imported.empty() && imp.module == imp.name && imp.name.find('.') == 0) continue;
          if (imp.imported.empty()) {
            if (lines[n].find('*') != std::string_view::npos &&
                lines[n].find("from") != std::string_view::npos) {
              dynamic = true;  // from x import *
            }
            names.insert(imp.module.substr(0, imp.module.find('.')));
          } else {
            names.insert(imp.imported);
          }
        }
      }
    }
    it = bindings_.emplace(file, std::make_pair(dynamic, std::move(names))).first;
  }
  return it->second.first || it->second.second.contains(name);
}

bool Checker::ExternalKnown(const std::string& top) {
  if (internal::IsPythonStdlib(top)) return true;
  if (!dists_) {
    dists_.emplace();
    for (const auto& f : Files()) {
      if (!IsManifest(f)) continue;
      auto content = Read(f);
      if (!content) continue;
      std::string_view s = *content;
      size_t i = 0;
      while (i < s.size()) {
        if (!std::isalnum(static_cast<unsigned char>(s[i]))) {
          ++i;
          continue;
        }
        size_t b = i;
        while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_' ||
                                s[i] == '-' || s[i] == '.')) {
          ++i;
        }
        dists_->insert(NormalizeDist(s.substr(b, i - b)));
      }
    }
  }
  const std::string norm = NormalizeDist(top);
  if (dists_->contains(norm)) return true;
  auto [b, e] = ImportAliases().equal_range(norm);
  for (auto it = b; it != e; ++it) {
    if (dists_->contains(it->second)) return true;
  }
  return false;
}

Checker::Resolution Checker::ResolvePython(const std::string& file, const PyImport& imp) {
  std::string_view mod = imp.module;
  std::string module_path;
  std::string shown;  // where the module was looked for
  if (mod.front() == '.') {
    size_t dots = 0;
    while (dots < mod.size() && mod[dots] == '.') ++dots;
    std::string_view base = DirOf(file);
    for (size_t d = 1; d < dots; ++d) {
      if (base.empty()) {
        return {fmt::format("the relative import goes above the top of the tree from {}", file),
                true};
      }
      base = DirOf(base);
    }
    std::string rest(mod.substr(dots));
    std::replace(rest.begin(), rest.end(), '.', '/');
    module_path = Join(base, rest);
    if (!rest.empty() && !ModuleExists(module_path)) {
      return {fmt::format("there is no module {} (no {}.py and no package directory {}/)",
                          module_path, module_path, module_path),
              true};
    }
  } else {
    const std::string top(mod.substr(0, mod.find('.')));
    std::string rel(mod);
    std::replace(rel.begin(), rel.end(), '.', '/');
    std::vector<std::string> roots = {"", "src"};
    if (std::string dir(DirOf(file)); !dir.empty() && dir != "src") roots.push_back(dir);
    bool own = false;
    for (const auto& r : roots) {
      if (!ModuleExists(Join(r, top))) continue;
      own = true;
      if (ModuleExists(Join(r, rel))) {
        module_path = Join(r, rel);
        break;
      }
    }
    if (!own) {
      if (ExternalKnown(top)) return {};
      return {fmt::format("'{}' is not a module of the repository, of the Python standard "
                          "library, nor a dependency named in requirements*.txt, "
                          "pyproject.toml, setup.py, setup.cfg or Pipfile",
                          top),
              true};
    }
    if (module_path.empty()) {
      if (internal::IsPythonStdlib(top)) return {};
      return {fmt::format("'{}' is the repository's own, but there is no module {} in it (no "
                          "{}.py and no package directory {}/)",
                          top, std::string(mod), rel, rel),
              true};
    }
  }
  if (!imp.imported.empty() && !DefinesName(module_path, imp.imported)) {
    const std::string where = ModuleFile(module_path);
    return {fmt::format("{} is neither a submodule of {} nor defined in {}", imp.imported,
                        std::string(mod), where.empty() ? module_path + "/" : where)};
  }
  return {};
}

void Checker::CheckPythonImports(const std::string& path, const std::vector<int>& added) {
  auto content = Read(path);
  if (!content) return;
  const std::string code = internal::CodeView(*content, Lang::kPython);
  const auto lines = internal::SplitLines(code);
  for (int ln : added) {
    if (ln < 1 || static_cast<size_t>(ln) > lines.size() || OverBudget()) continue;
    const size_t at = static_cast<size_t>(ln) - 1;
    auto imports = ParsePyImport(lines, at);
    if (imports.empty() || UnderTry(lines, at)) continue;
    for (const auto& imp : imports) {
      // A name on a continuation line counts only when that line was added too.
      if (imp.line != ln && !std::binary_search(added.begin(), added.end(), imp.line)) continue;
      auto r = ResolvePython(path, imp);
      if (r.why.empty()) continue;
      if (r.module_missing && !imp.imported.empty()) {
        // The module itself is missing: it is the one finding of the statement.
        AddBrokenImport(path, ln, imp.module, r.why);
        break;
      }
      AddBrokenImport(path, imp.line, imp.name, r.why);
    }
  }
}

// `path` with "." and ".." components resolved; nullopt when it leaves the top.
std::optional<std::string> Normalize(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view comp = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") {
      if (parts.empty()) return std::nullopt;
      parts.pop_back();
      continue;
    }
    parts.push_back(comp);
  }
  std::string out;
  for (auto p : parts) out = Join(out, p);
  return out;
}

void Checker::CheckIncludes(const std::string& path, const std::vector<int>& added) {
  auto content = Read(path);
  if (!content) return;
  const std::string code = internal::CodeView(*content, Lang::kC);
  const auto lines = internal::SplitLines(code);
  const auto raw = internal::SplitLines(*content);
  for (int ln : added) {
    if (ln < 1 || static_cast<size_t>(ln) > lines.size() || OverBudget()) continue;
    std::string_view c = lines[static_cast<size_t>(ln) - 1];
    size_t i = IndentOf(c);
    if (i >= c.size() || c[i] != '#') continue;
    ++i;
    SkipBlank(c, i);
    auto directive = Word(c, i);
    if (directive != "include" && directive != "include_next" && directive != "import") continue;
    SkipBlank(c, i);
    if (i >= c.size() || c[i] != '"') continue;  // <system> or a macro: not checked
    std::string_view r = raw[static_cast<size_t>(ln) - 1];
    size_t close = r.find('"', i + 1);
    if (close == std::string_view::npos) continue;
    const std::string name(r.substr(i + 1, close - i - 1));
    if (name.empty()) continue;
    Files();
    if (auto beside = Normalize(Join(DirOf(path), name)); beside && file_set_.contains(*beside)) {
      continue;
    }
    // Anywhere in the tree at a path ending in the name (an include path).
    std::string_view tail = name;
    while (tail.starts_with("./") || tail.starts_with("../"))
      tail.remove_prefix(tail.find('/') + 1);
    const std::string suffix = "/" + std::string(tail);
    const bool found = file_set_.contains(std::string(tail)) ||
                       std::any_of(files_.begin(), files_.end(),
                                   [&](const std::string& f) { return f.ends_with(suffix); });
    if (!found) {
      AddBrokenImport(path, ln, name,
                      fmt::format("no file of the tree is {} beside {} or at a path ending in {}",
                                  name, path, suffix));
    }
  }
}

void Checker::Run(const std::vector<vcs::DiffFile>& diff) {
  Candidates cands[3];
  std::vector<std::pair<std::string, std::vector<int>>> added;
  std::vector<std::string_view> defs;
  for (const auto& f : diff) {
    const Lang old_lang = LangOf(f.old_path.empty() ? f.path : f.old_path);
    const Lang new_lang = f.status == 'D' ? old_lang : LangOf(f.path);
    if (old_lang == Lang::kNone && new_lang == Lang::kNone) {
      facts_.add_not_checked(Escape(f.path));
      continue;
    }
    if (f.binary) continue;
    std::vector<int> added_lines;
    for (const auto& h : f.hunks) {
      // The old side of the hunk (context and removed lines), so that a
      // removed line inside a comment or string is seen as one.
      std::string old_side;
      for (const auto& l : h.lines) {
        if (l.origin == '+') {
          if (l.new_line > 0) added_lines.push_back(l.new_line);
          continue;
        }
        old_side += l.text;
        old_side += '\n';
      }
      if (old_lang == Lang::kNone) continue;
      const std::string code = internal::CodeView(old_side, old_lang);
      const auto code_lines = internal::SplitLines(code);
      size_t k = 0;
      for (const auto& l : h.lines) {
        if (l.origin == '+') continue;
        if (k >= code_lines.size()) break;
        std::string_view cl = code_lines[k++];
        if (l.origin != '-') continue;
        defs.clear();
        internal::LineDefinitions(cl, old_lang, DefScope::kRemoved, defs);
        for (auto d : defs) {
          if (Ignored(d, old_lang)) continue;
          Candidate c;
          c.defined_in = f.old_path.empty() ? f.path : f.old_path;
          cands[static_cast<int>(old_lang)].try_emplace(std::string(d), std::move(c));
        }
      }
    }
    if (f.status != 'D' && new_lang != Lang::kNone && !added_lines.empty()) {
      std::sort(added_lines.begin(), added_lines.end());
      added.emplace_back(f.path, std::move(added_lines));
    }
  }

  for (Lang lang : {Lang::kPython, Lang::kC}) {
    auto& c = cands[static_cast<int>(lang)];
    if (c.empty()) continue;
    FindStaleReferences(lang, c);
    for (auto& [name, cand] : c) {
      if (cand.defined) continue;
      for (const auto& [file, line] : cand.refs) {
        if (facts_.stale_references_size() >= kMaxRefs) break;
        auto* r = facts_.add_stale_references();
        r->set_symbol(Escape(name));
        r->set_file(Escape(file));
        r->set_line(line);
        r->set_defined_in(Escape(cand.defined_in));
      }
    }
  }
  for (const auto& [path, lines] : added) {
    if (OverBudget()) break;
    if (LangOf(path) == Lang::kPython) CheckPythonImports(path, lines);
    if (LangOf(path) == Lang::kC) CheckIncludes(path, lines);
  }
}

}  // namespace

Tree DirectoryTree(const std::string& root, const DirectoryTreeLimits& limits) {
  auto state = std::make_shared<DirState>();
  state->root = root;
  state->limits = limits;
  return Tree{
      .read = [state](const std::string& path) { return state->Read(path); },
      .list =
          [state] {
            state->List();
            return state->files;
          },
      .incomplete =
          [state] {
            state->List();
            return state->incomplete;
          },
  };
}

v1::StaticFacts CheckStatic(const std::vector<vcs::DiffFile>& diff, const Tree& final_tree) {
  const auto start = Clock::now();
  v1::StaticFacts facts;
  Checker(final_tree, facts).Run(diff);
  facts.set_wall_us(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
  return facts;
}

}  // namespace crucible::scoring
