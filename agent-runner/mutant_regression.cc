// silent-regression: the search for a mutation that breaks a PASS_TO_PASS
// test while every FAIL_TO_PASS test passes (mutants_internal.h).
//
// Candidates are one-line changes of source lines the golden patch does not
// change: first in the golden patch's source files, then in the tree's other
// source files. Each is tried in one scratch tree (base commit, golden patch,
// hidden test patch, as scoring builds it) with the task's own test command
// in the sandbox; the first that keeps every FAIL_TO_PASS test passing and
// breaks a PASS_TO_PASS (or regression) test that passed without it is
// written to the workspace. docs/scoring.md, "silent-regression".
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string_view>

#include <fmt/format.h>

#include "agent-runner/mutants_internal.h"
#include "agent-runner/review_round.h"
#include "base/fs.h"
#include "golden/rules.h"
#include "golden/test_infra.h"
#include "golden/test_run.h"
#include "scoring/static_check.h"
#include "vcs/repo.h"

namespace crucible::runner::internal {

namespace {

using Clock = std::chrono::steady_clock;

// The search's budget, per task.
constexpr int kMaxCandidates = 25;
constexpr std::chrono::seconds kMaxSearch{120};
// Source files read while collecting candidates.
constexpr size_t kMaxFilesRead = 5000;

std::string Budget() {
  return fmt::format("budget: {} candidates or {} s", kMaxCandidates, kMaxSearch.count());
}

// Extensions of the source files whose lines are mutated.
bool IsCodeFile(std::string_view path) {
  static const std::set<std::string, std::less<>> kExtensions = {
      "py",  "c",  "cc", "cpp",  "cxx", "h",     "hh", "hpp", "js", "jsx",   "mjs", "ts",
      "tsx", "go", "rs", "java", "kt",  "scala", "rb", "php", "cs", "swift", "lua", "pl"};
  size_t slash = path.rfind('/');
  std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  return kExtensions.contains(name.substr(dot + 1));
}

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// A character that may end (or start) an operand of a binary operator.
bool EndsOperand(char c) { return IsWordChar(c) || c == ')' || c == ']'; }
bool StartsOperand(char c) { return IsWordChar(c) || c == '(' || c == '['; }

// One mutated line: its new text and what changed, as "`a <= b`" -> "`a < b`".
struct LineMutation {
  std::string text;
  std::string before;
  std::string after;
};

// The text around [pos, pos + len) of `code` for a description: the
// adjacent name, number, dot and bracket characters and, for a binary
// operator (`operands`), the tokens on either side past the spaces; brackets
// that do not pair up within it are left out.
std::string Around(std::string_view code, size_t pos, size_t len, bool operands) {
  auto token = [](char c) {
    return IsWordChar(c) || c == '.' || c == '(' || c == ')' || c == '[' || c == ']';
  };
  size_t begin = pos;
  if (operands) {
    while (begin > 0 && code[begin - 1] == ' ') --begin;
  }
  while (begin > 0 && token(code[begin - 1])) --begin;
  size_t end = pos + len;
  if (operands) {
    while (end < code.size() && code[end] == ' ') ++end;
  }
  while (end < code.size() && token(code[end])) ++end;
  std::string out(code.substr(begin, end - begin));
  auto count = [&out](std::string_view chars) {
    return std::count_if(out.begin(), out.end(),
                         [&](char c) { return chars.find(c) != std::string_view::npos; });
  };
  while (!out.empty() && (out.back() == ')' || out.back() == ']') && count(")]") > count("(["))
    out.pop_back();
  while (!out.empty() && (out.front() == '(' || out.front() == '[') && count("([") > count(")]"))
    out.erase(0, 1);
  size_t first = out.find_first_not_of(' '), last = out.find_last_not_of(' ');
  return first == std::string::npos ? std::string() : out.substr(first, last - first + 1);
}

LineMutation Replace(std::string_view line, std::string_view code, size_t pos, size_t len,
                     std::string_view with, bool operands = true) {
  LineMutation m;
  m.text =
      std::string(line.substr(0, pos)) + std::string(with) + std::string(line.substr(pos + len));
  m.before = Around(code, pos, len, operands);
  std::string code_after =
      std::string(code.substr(0, pos)) + std::string(with) + std::string(code.substr(pos + len));
  m.after = Around(code_after, pos, with.size(), operands);
  return m;
}

// The first word `word` of `code` standing alone; npos when none.
size_t FindWord(std::string_view code, std::string_view word) {
  for (size_t at = code.find(word); at != std::string_view::npos; at = code.find(word, at + 1)) {
    bool left = at == 0 || !IsWordChar(code[at - 1]);
    bool right = at + word.size() >= code.size() || !IsWordChar(code[at + word.size()]);
    if (left && right) return at;
  }
  return std::string_view::npos;
}

// The comparison swap: `<=` <-> `<`, `>=` <-> `>`, `==` <-> `!=` (a lone `<`
// or `>` only with spaces around it, so template brackets, shifts and arrows
// are left alone).
std::optional<LineMutation> SwapComparison(std::string_view line, std::string_view code) {
  auto at = [&](size_t i) { return i < code.size() ? code[i] : '\0'; };
  for (size_t i = 0; i < code.size(); ++i) {
    const char c = code[i], next = at(i + 1), prev = i > 0 ? code[i - 1] : '\0';
    if ((c == '<' || c == '>') && next == '=') {
      if (prev == '<' || prev == '>' || at(i + 2) == '>' || at(i + 2) == '=') {
        ++i;
        continue;
      }
      return Replace(line, code, i, 2, c == '<' ? "<" : ">");
    }
    if ((c == '=' || c == '!') && next == '=') {
      if (prev == '=' || prev == '!' || prev == '<' || prev == '>' || at(i + 2) == '=') {
        ++i;
        continue;
      }
      return Replace(line, code, i, 2, c == '=' ? "!=" : "==");
    }
    if ((c == '<' || c == '>') && prev == ' ' && next == ' ') {
      return Replace(line, code, i, 1, c == '<' ? "<=" : ">=");
    }
  }
  return std::nullopt;
}

std::optional<LineMutation> SwapWords(
    std::string_view line, std::string_view code,
    std::initializer_list<std::pair<std::string_view, std::string_view>> pairs) {
  size_t best = std::string_view::npos;
  std::string_view from, to;
  for (const auto& [a, b] : pairs) {
    for (auto [x, y] : {std::pair{a, b}, std::pair{b, a}}) {
      size_t at = FindWord(code, x);
      if (at < best) {
        best = at;
        from = x;
        to = y;
      }
    }
  }
  if (best == std::string_view::npos) return std::nullopt;
  return Replace(line, code, best, from.size(), to, /*operands=*/from == "and" || from == "or");
}

// `+` <-> `-` between two operands, with a space on each side.
std::optional<LineMutation> SwapPlusMinus(std::string_view line, std::string_view code) {
  for (size_t i = 2; i + 2 < code.size(); ++i) {
    const char c = code[i];
    if ((c == '+' || c == '-') && code[i - 1] == ' ' && code[i + 1] == ' ' &&
        EndsOperand(code[i - 2]) && StartsOperand(code[i + 2])) {
      return Replace(line, code, i, 1, c == '+' ? "-" : "+");
    }
  }
  return std::nullopt;
}

// `&&` <-> `||`.
std::optional<LineMutation> SwapLogical(std::string_view line, std::string_view code) {
  size_t a = code.find("&&"), o = code.find("||");
  if (a == std::string_view::npos && o == std::string_view::npos) return std::nullopt;
  if (a < o) return Replace(line, code, a, 2, "||");
  return Replace(line, code, o, 2, "&&");
}

// The first decimal integer literal n (at most 9 digits, no leading zero, not
// part of a name or of a float) becomes n + 1.
std::optional<LineMutation> BumpInteger(std::string_view line, std::string_view code) {
  for (size_t i = 0; i < code.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(code[i]))) continue;
    size_t end = i;
    while (end < code.size() && std::isdigit(static_cast<unsigned char>(code[end]))) ++end;
    const bool left_ok = i == 0 || (!IsWordChar(code[i - 1]) && code[i - 1] != '.');
    const bool right_ok = end == code.size() || (!IsWordChar(code[end]) && code[end] != '.');
    const size_t len = end - i;
    if (left_ok && right_ok && len <= 9 && (len == 1 || code[i] != '0')) {
      const long n = std::stol(std::string(code.substr(i, len)));
      return Replace(line, code, i, len, std::to_string(n + 1), /*operands=*/false);
    }
    i = end;
  }
  return std::nullopt;
}

// The first operator of the list that applies to `line`; nullopt for a line
// with none, a blank or comment line, or a line with string quotes.
std::optional<LineMutation> MutateLine(std::string_view line) {
  size_t first = line.find_first_not_of(" \t");
  if (first == std::string_view::npos) return std::nullopt;
  std::string_view body = line.substr(first);
  for (std::string_view comment : {"#", "//", "/*", "*", "--"}) {
    if (body.starts_with(comment)) return std::nullopt;
  }
  if (line.find_first_of("\"'`") != std::string_view::npos) return std::nullopt;
  // The code before a trailing comment.
  std::string_view code = line.substr(0, std::min(line.find('#'), line.find("//")));
  if (auto m = SwapComparison(line, code)) return m;
  if (auto m = SwapWords(line, code, {{"True", "False"}, {"true", "false"}})) return m;
  if (auto m = SwapPlusMinus(line, code)) return m;
  if (auto m = SwapWords(line, code, {{"and", "or"}})) return m;
  if (auto m = SwapLogical(line, code)) return m;
  if (auto m = BumpInteger(line, code)) return m;
  return std::nullopt;
}

// One line of a file, changed.
struct Candidate {
  std::string file;
  int line = 0;  // 1-based
  // The file as it is (shared by its candidates), and where the line's text
  // is in it (without its line ending), and its new text.
  std::shared_ptr<const std::string> content;
  size_t offset = 0, length = 0;
  std::string text;
  std::string before, after;  // for the description

  std::string Mutated() const {
    return content->substr(0, offset) + text + content->substr(offset + length);
  }
};

// A patch of `path`, `from` -> `to` (the same lines but line `line`), with
// up to three lines of context.
std::string LinePatch(const std::string& path, std::string_view from, std::string_view to,
                      int line) {
  auto lines = [](std::string_view text) {
    std::vector<std::string_view> out;
    size_t start = 0;
    while (start < text.size()) {
      size_t nl = text.find('\n', start);
      size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
      out.push_back(text.substr(start, end - start));
      start = end;
    }
    return out;
  };
  const auto a = lines(from), b = lines(to);
  const size_t at = static_cast<size_t>(line - 1);
  const size_t first = at >= 3 ? at - 3 : 0, last = std::min(a.size(), at + 4);
  std::string out =
      fmt::format("diff --git a/{0} b/{0}\n--- a/{0}\n+++ b/{0}\n@@ -{1},{2} +{1},{2} @@\n", path,
                  first + 1, last - first);
  auto add = [&out](char origin, std::string_view text) {
    out += origin;
    out += text;
    if (!text.ends_with('\n')) out += "\n\\ No newline at end of file\n";
  };
  for (size_t i = first; i < last; ++i) {
    if (i != at) {
      add(' ', a[i]);
    } else {
      add('-', a[i]);
      add('+', b[i]);
    }
  }
  return out;
}

// Appends to `out` the candidates of `content` (the file `path`), skipping
// the lines in `skip`, until `out` holds kMaxCandidates.
void CollectCandidates(const std::string& path, std::shared_ptr<const std::string> file,
                       const std::set<int>& skip, std::vector<Candidate>& out) {
  const std::string& content = *file;
  if (content.find('\0') != std::string::npos) return;  // binary
  bool in_docstring = false, in_block_comment = false;
  size_t start = 0;
  for (int number = 1; start < content.size() && out.size() < kMaxCandidates; ++number) {
    size_t nl = content.find('\n', start);
    const size_t end = nl == std::string::npos ? content.size() : nl;
    std::string_view line(content.data() + start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t line_start = start;
    start = end + 1;
    // Lines inside a multi-line string or block comment are text, not code.
    const bool was_text = in_docstring || in_block_comment;
    for (std::string_view triple : {"\"\"\"", "'''"}) {
      size_t count = 0;
      for (size_t at = line.find(triple); at != std::string_view::npos;
           at = line.find(triple, at + 3))
        ++count;
      if (count % 2 == 1) in_docstring = !in_docstring;
    }
    size_t open = line.rfind("/*"), close = line.rfind("*/");
    if (open != std::string_view::npos && (close == std::string_view::npos || close < open))
      in_block_comment = true;
    else if (close != std::string_view::npos)
      in_block_comment = false;
    if (was_text || in_docstring || in_block_comment || skip.contains(number)) continue;
    auto m = MutateLine(line);
    if (!m) continue;
    Candidate c;
    c.file = path;
    c.line = number;
    c.content = file;
    c.offset = line_start;
    c.length = line.size();
    c.text = std::move(m->text);
    c.before = std::move(m->before);
    c.after = std::move(m->after);
    out.push_back(std::move(c));
  }
}

// The lines (new side) the golden patch adds, per file.
std::map<std::string, std::set<int>> GoldenLines(const v1::GoldenTask& task) {
  std::map<std::string, std::set<int>> out;
  auto files = vcs::ParseDiff(task.source_patch());
  if (!files) return out;
  for (const auto& f : *files) {
    auto& lines = out[f.path];
    for (const auto& h : f.hunks) {
      for (const auto& l : h.lines) {
        if (l.origin == '+') lines.insert(l.new_line);
      }
    }
  }
  return out;
}

// Every candidate in search order: the golden source files first (outside
// the lines the golden patch adds), then the other source files of the
// tree, sorted; none in test files, test infrastructure, or files the hidden
// test or regression patches write.
std::vector<Candidate> Candidates(const FaultInput& in) {
  std::vector<std::string> patterns =
      in.rules.test_patterns().empty() ? golden::DefaultTestPatterns()
                                       : std::vector<std::string>(in.rules.test_patterns().begin(),
                                                                  in.rules.test_patterns().end());
  const std::vector<std::string> infra = golden::TestInfrastructureOf(in.task);
  std::set<std::string> excluded;
  for (const auto* patch : {&in.task.test_patch(), &in.task.regression_patch()}) {
    if (auto paths = vcs::PatchPaths(*patch); paths) excluded.insert(paths->begin(), paths->end());
  }
  auto eligible = [&](const std::string& f) {
    return IsCodeFile(f) && !f.starts_with(".") && f.find("/.") == std::string::npos &&
           !excluded.contains(f) && !golden::AnyMatches(patterns, f) &&
           !golden::IsTestInfrastructure(f, infra);
  };
  const auto golden_lines = GoldenLines(in.task);
  const scoring::Tree tree = scoring::DirectoryTree(in.root);
  std::vector<Candidate> out;
  size_t read = 0;
  auto scan = [&](const std::string& f) {
    if (out.size() >= kMaxCandidates || read >= kMaxFilesRead || !eligible(f)) return;
    ++read;
    auto content = tree.read(f);
    if (!content) return;
    auto it = golden_lines.find(f);
    CollectCandidates(f, std::make_shared<const std::string>(std::move(*content)),
                      it == golden_lines.end() ? std::set<int>() : it->second, out);
  };
  for (const auto& f : in.golden_sources) scan(f);
  const std::set<std::string> golden(in.golden_sources.begin(), in.golden_sources.end());
  for (const auto& f : tree.list()) {
    if (!golden.contains(f)) scan(f);
  }
  return out;
}

// The first of `ids` that passed in `baseline` and does not pass in `run`,
// with how it went ("fails", "errors", "does not run"); empty when none.
std::pair<std::string, std::string> Broken(
    const google::protobuf::RepeatedPtrField<std::string>& ids,
    const std::set<std::string>& baseline, const v1::TestRun& run) {
  std::map<std::string, v1::TestOutcome::Status> status;
  for (const auto& t : run.tests()) status[t.id()] = t.status();
  for (const auto& id : ids) {
    if (!baseline.contains(id)) continue;
    auto it = status.find(id);
    if (it == status.end()) return {id, "does not run"};
    if (it->second == v1::TestOutcome::FAILED) return {id, "fails"};
    if (it->second == v1::TestOutcome::ERROR) return {id, "errors"};
    if (it->second != v1::TestOutcome::PASSED) return {id, "does not run"};
  }
  return {};
}

std::set<std::string> Passed(const google::protobuf::RepeatedPtrField<std::string>& ids,
                             const v1::TestRun& run) {
  std::set<std::string> wanted(ids.begin(), ids.end()), out;
  for (const auto& t : run.tests()) {
    if (t.status() == v1::TestOutcome::PASSED && wanted.contains(t.id())) out.insert(t.id());
  }
  return out;
}

// A trustworthy run: the report was read, no timeout, no harness failure.
bool Usable(const v1::TestRun& run) {
  return run.report_found() && !run.timed_out() && run.infra_error().empty();
}

v1::Mutation NotApplicable(std::string reason, int tried, Clock::time_point start) {
  v1::Mutation m;
  m.set_kind("silent-regression");
  m.set_applicable(false);
  m.set_reason(std::move(reason));
  m.set_candidates_tried(tried);
  m.set_search_ms(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
  return m;
}

// A scratch tree for the tests: the base commit, the golden patch, the
// hidden test patch over the base versions of its files and, with
// `regression`, the regression patch over the merged versions of its files
// (as attempt.cc's RebuildForScoring and RunRegressionTests build theirs).
// The error is the reason the tree cannot be built, a problem of the task.
struct ScratchTree {
  vcs::WorkspacePtr ws;
  std::string problem;
};

Result<ScratchTree> MakeTree(const FaultInput& in, const RegressionSearch& search,
                             const std::string& box, const std::string& name, bool regression) {
  ScratchTree out;
  CRUCIBLE_ASSIGN_OR_RETURN(
      out.ws, vcs::Workspace::Create(search.repo, in.task.base_commit(), box + "/" + name,
                                     search.scratch + "/git-" + name));
  if (auto applied = out.ws->Apply(in.task.source_patch()); !applied) {
    return Fail(applied.error().Wrap("the golden patch does not apply to a scratch tree"));
  }
  CRUCIBLE_ASSIGN_OR_RETURN(auto test_paths, vcs::PatchPaths(in.task.test_patch()));
  CRUCIBLE_RETURN_IF_ERROR(out.ws->Restore(test_paths));
  if (auto applied = out.ws->Apply(in.task.test_patch()); !applied) {
    out.problem =
        "the hidden test patch does not apply over the golden patch: " + applied.error().message();
    return out;
  }
  if (!regression) return out;
  auto paths = vcs::PatchPaths(in.task.regression_patch());
  if (!paths) {
    out.problem = "the regression patch does not parse: " + paths.error().message();
    return out;
  }
  const std::set<std::string> hidden(test_paths.begin(), test_paths.end());
  std::vector<std::string> restore;
  for (const auto& p : *paths) {
    if (!hidden.contains(p)) restore.push_back(p);
  }
  CRUCIBLE_RETURN_IF_ERROR(out.ws->Restore(restore));
  if (auto applied = out.ws->Apply(in.task.regression_patch()); !applied) {
    out.problem = "the regression patch does not apply: " + applied.error().message();
  }
  return out;
}

}  // namespace

Result<v1::Mutation> SilentRegression(const FaultInput& in, const RegressionSearch& search) {
  const auto start = Clock::now();
  const v1::GoldenTask& task = in.task;
  if (task.pass_to_pass_size() == 0 && task.regression_tests_size() == 0) {
    return NotApplicable(
        "the task has no PASS_TO_PASS or regression test, so no test can see a regression", 0,
        start);
  }
  if (in.golden_sources.empty()) {
    bool binary = false, any = false;
    if (auto files = vcs::ParseDiff(task.source_patch()); files) {
      any = !files->empty();
      binary = any && std::all_of(files->begin(), files->end(),
                                  [](const vcs::DiffFile& f) { return f.binary; });
    }
    return NotApplicable(binary ? "the golden patch changes binary files only"
                         : any  ? "the golden patch changes no source file"
                                : "the golden patch changes no file",
                         0, start);
  }
  std::vector<Candidate> candidates = Candidates(in);
  if (candidates.empty()) {
    return NotApplicable(
        "no source line outside the golden patch has a mutation to try (comparison, boolean, "
        "+/-, and/or, integer)",
        0, start);
  }

  // The trees live in one box under the attempt's quota; the quota is
  // unmounted (after the trees are dropped) when this returns.
  const std::string box = search.scratch + "/box";
  CRUCIBLE_ASSIGN_OR_RETURN(auto quota, WritableBox(box, search.quota_bytes));
  const bool use_p2p = task.pass_to_pass_size() > 0;
  const bool use_regression = task.regression_tests_size() > 0;
  CRUCIBLE_ASSIGN_OR_RETURN(ScratchTree tree, MakeTree(in, search, box, "tree", false));
  if (!tree.problem.empty()) return NotApplicable(tree.problem, 0, start);
  std::optional<ScratchTree> regression_tree;
  if (use_regression) {
    CRUCIBLE_ASSIGN_OR_RETURN(regression_tree, MakeTree(in, search, box, "regression", true));
    if (!regression_tree->problem.empty()) {
      if (!use_p2p) return NotApplicable(regression_tree->problem, 0, start);
      regression_tree.reset();  // the PASS_TO_PASS tests still see regressions
    }
  }

  golden::TestCommand cmd = golden::TestCommandFor(task);
  int runs = 0;
  auto run_tests = [&](vcs::Workspace& ws) -> Result<v1::TestRun> {
    if (search.tick) search.tick();
    const std::string out = fmt::format("{}/out-{}", box, runs++);
    CRUCIBLE_RETURN_IF_ERROR(MakeDirs(out));
    auto run = golden::RunTests(ws.workdir(), cmd, out);
    (void)RemoveAll(out);
    if (search.tick) search.tick();
    return run;
  };

  // Without a mutation: FAIL_TO_PASS must pass (else the oracle fails too),
  // and only tests that pass here can be broken by one.
  CRUCIBLE_ASSIGN_OR_RETURN(v1::TestRun baseline, run_tests(*tree.ws));
  if (!baseline.infra_error().empty()) {
    return Fail(Code::kUnavailable,
                "silent-regression: the tests failed to run with the golden patch: " +
                    baseline.infra_error());
  }
  const std::vector<std::string> f2p(task.fail_to_pass().begin(), task.fail_to_pass().end());
  if (!golden::AllPassed(baseline, f2p)) {
    return NotApplicable(
        "with the golden patch alone the FAIL_TO_PASS tests do not all pass, so no mutation can "
        "keep them passing",
        0, start);
  }
  const std::set<std::string> p2p_baseline = Passed(task.pass_to_pass(), baseline);
  std::set<std::string> regression_baseline;
  if (regression_tree) {
    CRUCIBLE_ASSIGN_OR_RETURN(v1::TestRun run, run_tests(*regression_tree->ws));
    if (!run.infra_error().empty()) {
      return Fail(Code::kUnavailable,
                  "silent-regression: the regression tests failed to run with the golden patch: " +
                      run.infra_error());
    }
    if (Usable(run)) regression_baseline = Passed(task.regression_tests(), run);
  }
  if (p2p_baseline.empty() && regression_baseline.empty()) {
    return NotApplicable(
        "with the golden patch alone no PASS_TO_PASS or regression test passes, so none can "
        "break",
        0, start);
  }

  // The mutation goes into a scratch tree and out again as patches: the
  // tests ran in it, so its paths are not trusted (Apply refuses links).
  auto undo = [&](vcs::Workspace& ws, const Candidate& c, const std::string& backward) -> Status {
    if (auto undone = ws.Apply(backward); !undone) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("silent-regression: {} cannot be put back in the scratch tree after "
                              "a test run changed it: {}",
                              c.file, undone.error().message()));
    }
    return {};
  };
  int tried = 0;
  for (const Candidate& c : candidates) {
    const auto elapsed = Clock::now() - start;
    if (tried >= kMaxCandidates || elapsed >= kMaxSearch) break;
    // A run may not outlast the search's budget.
    const auto left = std::chrono::ceil<std::chrono::seconds>(kMaxSearch - elapsed);
    cmd.timeout = std::min(golden::TestCommandFor(task).timeout, left);
    const std::string mutated = c.Mutated();
    const std::string forward = LinePatch(c.file, *c.content, mutated, c.line);
    const std::string backward = LinePatch(c.file, mutated, *c.content, c.line);
    if (!tree.ws->Apply(forward)) continue;  // the tests changed the file
    ++tried;
    auto run = run_tests(*tree.ws);
    CRUCIBLE_RETURN_IF_ERROR(undo(*tree.ws, c, backward));
    if (!run) return Fail(run.error().Wrap("silent-regression: a test run"));
    if (!Usable(*run) || !golden::AllPassed(*run, f2p)) continue;
    auto [broken, how] = Broken(task.pass_to_pass(), p2p_baseline, *run);
    std::string which = "PASS_TO_PASS";
    if (broken.empty() && !regression_baseline.empty()) {
      if (!regression_tree->ws->Apply(forward)) continue;
      auto rrun = run_tests(*regression_tree->ws);
      CRUCIBLE_RETURN_IF_ERROR(undo(*regression_tree->ws, c, backward));
      if (!rrun) return Fail(rrun.error().Wrap("silent-regression: a regression test run"));
      if (!Usable(*rrun)) continue;
      std::tie(broken, how) = Broken(task.regression_tests(), regression_baseline, *rrun);
      which = "regression";
    }
    if (broken.empty()) continue;
    // The workspace is the mutant's own: nothing else wrote it.
    const std::string path = in.root + "/" + c.file;
    struct stat st {};
    const mode_t mode = ::stat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0644;
    CRUCIBLE_RETURN_IF_ERROR(WriteFile(path, mutated, mode));
    v1::Mutation m = NotApplicable("", tried, start);
    m.set_applicable(true);
    m.clear_reason();
    m.set_file(c.file);
    m.set_line(c.line);
    m.set_description(fmt::format("changes `{}` to `{}` in {}:{}; {} test {} {}", c.before, c.after,
                                  c.file, c.line, which, broken, how));
    return m;
  }
  const bool out_of_time = Clock::now() - start >= kMaxSearch;
  return NotApplicable(
      fmt::format("no mutation outside the golden patch broke a PASS_TO_PASS{} test while the "
                  "FAIL_TO_PASS tests passed: {} candidate{} tried{} ({})",
                  use_regression ? " or regression" : "", tried, tried == 1 ? "" : "s",
                  out_of_time ? fmt::format(" in {} s", kMaxSearch.count()) : "", Budget()),
      tried, start);
}

}  // namespace crucible::runner::internal
