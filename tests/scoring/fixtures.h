// Fixtures of the scoring tests: unified diffs as `git diff` writes them,
// tasks, evidence and agent traces.
#pragma once

#include <string>
#include <vector>

#include <fmt/format.h>

#include "protocol/crucible.pb.h"
#include "scoring/score.h"

namespace crucible::testing {

struct HunkSpec {
  int start;
  std::vector<std::string> removed;
  std::vector<std::string> added;
};

// The `git diff` of a change to `path` whose hunks (no context lines) each
// replace `removed` lines with `added` lines at line `start`.
inline std::string ModifyHunks(const std::string& path, const std::vector<HunkSpec>& hunks) {
  std::string d = fmt::format(
      "diff --git a/{0} b/{0}\nindex 1111111..2222222 100644\n--- a/{0}\n+++ b/{0}\n", path);
  int shift = 0;
  for (const auto& h : hunks) {
    d += fmt::format("@@ -{},{} +{},{} @@\n", h.start, h.removed.size(), h.start + shift,
                     h.added.size());
    for (const auto& l : h.removed) d += "-" + l + "\n";
    for (const auto& l : h.added) d += "+" + l + "\n";
    shift += static_cast<int>(h.added.size()) - static_cast<int>(h.removed.size());
  }
  return d;
}

inline std::string Modify(const std::string& path, int start,
                          const std::vector<std::string>& removed,
                          const std::vector<std::string>& added) {
  return ModifyHunks(path, {HunkSpec{start, removed, added}});
}

// The `git diff` of a new file `path` holding `lines`.
inline std::string Create(const std::string& path, const std::vector<std::string>& lines) {
  std::string d = fmt::format(
      "diff --git a/{0} b/{0}\nnew file mode 100644\nindex 0000000..3333333\n--- /dev/null\n"
      "+++ b/{0}\n@@ -0,0 +1,{1} @@\n",
      path, lines.size());
  for (const auto& l : lines) d += "+" + l + "\n";
  return d;
}

// `n` numbered lines "<prefix> i".
inline std::vector<std::string> Lines(int n, const std::string& prefix = "x = ") {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

// The golden fix of the fixture task: two lines of pkg/core.py.
inline HunkSpec GoldenHunk() {
  return {10, {"    return a - b"}, {"    if b is None:", "        return a"}};
}
inline std::string GoldenPatch() { return ModifyHunks("pkg/core.py", {GoldenHunk()}); }

inline v1::GoldenTask Task() {
  v1::GoldenTask t;
  t.set_id("t-1");
  t.set_source_patch(GoldenPatch());
  t.add_fail_to_pass("tests.test_core::test_none");
  t.add_pass_to_pass("tests.test_core::test_sub");
  t.add_pass_to_pass("tests.test_util::test_slug");
  return t;
}

// Evidence of an attempt whose diff is `diff` and whose tests all pass,
// stored as scoring version 2 evidence (per-file changes included).
inline v1::Evidence Passing(const std::string& diff) {
  v1::Evidence e;
  e.set_final_diff(diff);
  e.set_diff_bytes(diff.size());
  std::string error;
  for (auto& c : scoring::DescribeChanges(diff, &error)) {
    e.add_files_touched(c.path());
    *e.add_changes() = std::move(c);
  }
  for (auto& c : scoring::DescribeChanges(GoldenPatch(), &error))
    *e.add_golden_changes() = std::move(c);
  for (const char* id :
       {"tests.test_core::test_none", "tests.test_core::test_sub", "tests.test_util::test_slug"}) {
    auto* t = e.mutable_tests()->add_tests();
    t->set_id(id);
    t->set_status(v1::TestOutcome::PASSED);
  }
  return e;
}

inline void SetStatus(v1::Evidence& e, const std::string& id, v1::TestOutcome::Status s) {
  for (auto& t : *e.mutable_tests()->mutable_tests()) {
    if (t.id() == id) t.set_status(s);
  }
}

// An agent event of the trace; seq and ts follow the order of `Add`.
struct Trace {
  std::vector<v1::TraceEvent> events;
  Trace& Add(const std::string& name, const std::string& attrs = "{}",
             const std::string& source = "agent") {
    return AddAt(1'000'000'000 * static_cast<int64_t>(events.size() + 1), name, attrs, source);
  }
  // The same at a time of the caller's (seq still follows the order of adding).
  Trace& AddAt(int64_t ts_ns, const std::string& name, const std::string& attrs = "{}",
               const std::string& source = "agent") {
    v1::TraceEvent ev;
    ev.set_seq(events.size() + 1);
    ev.set_ts_ns(ts_ns);
    ev.set_kind(source == "agent" ? "TOOL" : "RUNNER");
    ev.set_name(name);
    ev.set_attrs_json(attrs);
    ev.set_source(source);
    events.push_back(std::move(ev));
    return *this;
  }
};

inline v1::Score Score(const v1::GoldenTask& task, const v1::Evidence& e, const Trace& trace = {},
                       const v1::ReviewRules& rules = {}) {
  return scoring::ScoreAttempt(
      scoring::AttemptInput{.task = task, .evidence = e, .trace = trace.events, .rules = rules});
}

inline std::vector<std::string> Kinds(const v1::Score& s) {
  std::vector<std::string> out;
  for (const auto& v : s.violations()) out.push_back(v.kind());
  return out;
}

// True when one of the score's not_measurable entries contains `text`.
inline bool NotMeasurable(const v1::Score& s, const std::string& text) {
  for (const auto& n : s.not_measurable()) {
    if (n.find(text) != std::string::npos) return true;
  }
  return false;
}

inline std::string AllNotMeasurable(const v1::Score& s) {
  std::string out;
  for (const auto& n : s.not_measurable()) out += n + "\n";
  return out;
}

}  // namespace crucible::testing
