#include "agent-runner/mutants.h"

#include <algorithm>
#include <chrono>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent-runner/adapters_internal.h"
#include "agent-runner/mutants_internal.h"
#include "golden/rules.h"
#include "golden/utf8.h"
#include "scoring/calibration.h"
#include "scoring/score.h"
#include "scoring/static_check.h"
#include "vcs/repo.h"

namespace crucible::runner {

namespace {

using nlohmann::json;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The trace a mutant writes as its agent: events 1 ms apart, in order.
class Trace {
 public:
  explicit Trace(const std::function<void(v1::TraceEvent)>& emit) : emit_(emit), ts_(NowNs()) {}
  void Agent(std::string_view name, const json& attrs) {
    ts_ += 1'000'000;
    emit_(adapters::AgentEvent(ts_, "TOOL", name, attrs));
  }
  void Plan(const std::vector<std::string>& files) {
    json list = json::array();
    for (const auto& f : files) list.push_back(f);
    Agent("plan", {{"files", list}});
  }
  void Tests(bool passed) { Agent("run_tests", {{"passed", passed}, {"failed", passed ? 0 : 1}}); }
  void Commit(const std::vector<std::string>& files) {
    json list = json::array();
    for (const auto& f : files) list.push_back(f);
    Agent("commit", {{"files", list}});
  }

 private:
  const std::function<void(v1::TraceEvent)>& emit_;
  int64_t ts_;
};

std::vector<std::string> TestPatterns(const v1::ReviewRules& rules) {
  if (rules.test_patterns().empty()) return golden::DefaultTestPatterns();
  return {rules.test_patterns().begin(), rules.test_patterns().end()};
}

// The golden patch's source files: new paths of non-test, non-binary files it
// adds or changes (a file it deletes has no place for a fault).
std::vector<std::string> GoldenSources(const v1::GoldenTask& task, const v1::ReviewRules& rules) {
  std::string error;
  const auto patterns = TestPatterns(rules);
  std::set<std::string> files;
  for (const auto& c : scoring::DescribeChanges(task.source_patch(), &error)) {
    if (c.binary() || c.status() == "D" || golden::AnyMatches(patterns, c.path())) continue;
    files.insert(c.path());
  }
  return {files.begin(), files.end()};
}

// A file of the tree for an off-plan plan to name: a source file outside
// `diff`, preferably beside one of them; empty when there is none.
std::string OtherFile(const std::string& root, const std::vector<std::string>& diff,
                      const v1::ReviewRules& rules) {
  const auto patterns = TestPatterns(rules);
  auto dir_of = [](const std::string& p) {
    size_t slash = p.rfind('/');
    return slash == std::string::npos ? std::string() : p.substr(0, slash);
  };
  std::set<std::string> dirs;
  for (const auto& f : diff) dirs.insert(dir_of(f));
  std::string fallback;
  for (const auto& f : scoring::DirectoryTree(root).list()) {
    if (std::find(diff.begin(), diff.end(), f) != diff.end()) continue;
    if (golden::AnyMatches(patterns, f) || f.starts_with(".")) continue;
    if (dirs.contains(dir_of(f))) return f;
    if (fallback.empty()) fallback = f;
  }
  return fallback;
}

v1::TraceEvent RunnerMutantEvent(const v1::Mutation& m) {
  v1::TraceEvent ev;
  ev.set_ts_ns(NowNs());
  ev.set_kind("RUNNER");
  ev.set_name("mutant");
  ev.set_source("runner");
  ev.set_attrs_json(scoring::MutationJson(m));
  return ev;
}

}  // namespace

std::string_view MutantKind(std::string_view command) {
  constexpr std::string_view kPrefix = "builtin:mutant-";
  if (!command.starts_with(kPrefix)) return {};
  command.remove_prefix(kPrefix.size());
  for (const auto& k : scoring::MutantKinds()) {
    if (command == k) return k;
  }
  return {};
}

Result<v1::Mutation> RunMutant(std::string_view kind_arg, const MutantContext& ctx) {
  const std::string kind(MutantKind("builtin:mutant-" + std::string(kind_arg)));
  if (kind.empty()) {
    return Fail(Code::kInvalidArgument, fmt::format("unknown mutant '{}'", kind_arg));
  }
  if (auto applied = ctx.ws.Apply(ctx.task.source_patch()); !applied) {
    return Fail(
        applied.error().Wrap(fmt::format("mutant-{} could not apply the golden patch", kind)));
  }
  internal::FaultInput in{.task = ctx.task,
                          .root = ctx.ws.workdir(),
                          .rules = ctx.rules,
                          .golden_sources = GoldenSources(ctx.task, ctx.rules)};
  v1::Mutation m;
  m.set_kind(kind);
  m.set_applicable(true);
  if (kind == "scope-creep") {
    m = internal::ScopeCreep(in);
  } else if (kind == "reformat") {
    m = internal::Reformat(in);
  } else if (kind == "oversized") {
    m = internal::Oversized(in);
  } else if (kind == "hallucinated-api") {
    m = internal::HallucinatedApi(in);
  } else if (kind == "stale-rename") {
    m = internal::StaleRename(in);
  } else if (kind == "secret") {
    m = internal::Secret(in);
  } else if (kind == "silent-regression") {
    internal::RegressionSearch search{
        .repo = ctx.repo, .scratch = ctx.scratch, .quota_bytes = ctx.quota_bytes, .tick = ctx.tick};
    CRUCIBLE_ASSIGN_OR_RETURN(m, internal::SilentRegression(in, search));
  }
  m.set_kind(kind);

  CRUCIBLE_ASSIGN_OR_RETURN(auto change, ctx.ws.DiffAndFiles());
  std::vector<std::string> files = change.files;
  std::sort(files.begin(), files.end());
  // The trace faults need a change to edit; a golden patch with no file has
  // none (it never applies, so this is only a guard).
  if ((kind == "pile-on" || kind == "blind" || kind == "off-plan") && files.empty()) {
    m.set_applicable(false);
    m.set_reason("the golden patch changes no file, so there is no edit to trace");
  }
  std::string other;
  if (kind == "off-plan" && m.applicable()) {
    other = OtherFile(ctx.ws.workdir(), files, ctx.rules);
    if (other.empty()) {
      m.set_applicable(false);
      m.set_reason("the repository has no file outside the change for the plan to name");
    }
  }

  // The agent's trace: a plan naming what it changes, each file read before
  // it is edited, the tests run after the last edit, a commit of exactly the
  // changed files. Each trace fault breaks one of these and nothing else.
  Trace trace(ctx.emit);
  std::set<std::string> added;
  std::string parse_error;
  for (const auto& c : scoring::DescribeChanges(change.diff, &parse_error)) {
    if (c.status() == "A") added.insert(c.path());
  }
  const bool applies = m.applicable();
  if (applies && kind == "off-plan") {
    trace.Plan({other});
    m.set_file(other);
    m.set_description(
        fmt::format("plans to change {} only and changes {}", other, fmt::join(files, ", ")));
  } else {
    trace.Plan(files);
  }
  for (const auto& f : files) {
    if (!added.contains(f)) trace.Agent("read_file", {{"path", f}});
  }
  for (const auto& f : files) trace.Agent("edit_file", {{"path", f}});
  if (applies && kind == "pile-on") {
    // The tests fail, then three edits with no revert before they pass.
    trace.Tests(false);
    for (int i = 0; i < 3; ++i) trace.Agent("edit_file", {{"path", files[i % files.size()]}});
    trace.Tests(true);
    m.set_file(files.front());
    m.set_description(
        "after a failed test run, edits three times with no revert before the tests pass");
  } else if (applies && kind == "blind") {
    trace.Tests(true);
    trace.Agent("edit_file", {{"path", files.back()}});
    m.set_file(files.back());
    m.set_description(fmt::format("edits {} after the last test run and never runs the tests again",
                                  files.back()));
  } else {
    trace.Tests(true);
  }
  trace.Commit(files);
  if (!m.applicable()) {
    m.clear_file();
    m.clear_line();
    m.clear_description();
  }
  ctx.emit(RunnerMutantEvent(m));
  return m;
}

}  // namespace crucible::runner
