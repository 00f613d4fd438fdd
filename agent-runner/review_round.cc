#include "agent-runner/review_round.h"

#include <sys/stat.h>

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "agent-runner/agent_sandbox.h"
#include "base/fs.h"
#include "golden/test_infra.h"
#include "golden/test_run.h"
#include "golden/utf8.h"
#include "sandbox/sandbox.h"
#include "scoring/score.h"
#include "scoring/static_check.h"
#include "vcs/repo.h"

namespace crucible::runner {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

std::string Cut(std::string_view s, size_t n) {
  if (s.size() <= n) return std::string(s);
  // Not inside a UTF-8 sequence.
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n)) + " [...]";
}

bool IsBlank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

void AddComment(v1::ReviewRound& round, std::string reviewer, std::string kind, std::string file,
                int line, std::string sentence) {
  auto* c = round.add_review();
  c->set_reviewer(std::move(reviewer));
  c->set_kind(std::move(kind));
  c->set_file(golden::internal::ToValidUtf8(file));
  c->set_line(line);
  c->set_sentence(golden::internal::ToValidUtf8(sentence));
}

// Stage 1 on the CI tree: the test command as the task validated it (its
// setup, the suite's build, included), over base + diff, without the hidden
// tests. Tests the task knows to be flaky or excluded do not fail CI.
Status RunCi(const RoundContext& rc, const std::string& tree_dir, const std::string& out_dir,
             v1::ReviewRound& round) {
  CRUCIBLE_RETURN_IF_ERROR(MakeDirs(out_dir));
  CRUCIBLE_ASSIGN_OR_RETURN(v1::TestRun run,
                            golden::RunTests(tree_dir, golden::TestCommandFor(rc.task), out_dir));
  std::set<std::string> ignored(rc.task.flaky().begin(), rc.task.flaky().end());
  for (const auto& e : rc.task.excluded_tests()) ignored.insert(e.id());
  for (const auto& t : run.tests()) {
    if ((t.status() == v1::TestOutcome::FAILED || t.status() == v1::TestOutcome::ERROR) &&
        !ignored.contains(t.id())) {
      round.add_ci_failing(t.id());
    }
  }
  if (!run.infra_error().empty()) {
    round.set_ci_error("the build or the test command failed: " + run.infra_error());
  } else if (run.timed_out()) {
    round.set_ci_error(fmt::format("the tests timed out after {} s",
                                   rc.task.test_timeout_s() > 0 ? rc.task.test_timeout_s() : 600));
  } else if (!run.report_found() && run.exit_code() != 0) {
    round.set_ci_error(fmt::format(
        "the tests exited {} without writing a report (the build failed or the tests crashed "
        "before reporting)",
        run.exit_code()));
  }
  round.set_ci_passed(round.ci_error().empty() && round.ci_failing().empty());
  *round.mutable_ci() = std::move(run);
  return {};
}

// Reads one line a reviewer printed: {"comment": TEXT, "file": F, "line": N}.
Status ParseReviewerLine(std::string_view line, const std::string& reviewer,
                         v1::ReviewRound& round) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Fail(Code::kInvalidArgument, "not a JSON object");
  auto comment = j.find("comment");
  if (comment == j.end() || !comment->is_string() || IsBlank(comment->get<std::string>())) {
    return Fail(Code::kInvalidArgument, "no \"comment\" string");
  }
  std::string file;
  if (auto f = j.find("file"); f != j.end() && !f->is_null()) {
    if (!f->is_string()) return Fail(Code::kInvalidArgument, "\"file\" is not a string");
    file = Cut(f->get<std::string>(), 1024);
  }
  int number = 0;
  if (auto l = j.find("line"); l != j.end() && !l->is_null()) {
    if (!l->is_number_integer() || l->get<int64_t>() < 0 || l->get<int64_t>() > 1'000'000'000) {
      return Fail(Code::kInvalidArgument, "\"line\" is not a line number");
    }
    number = static_cast<int>(l->get<int64_t>());
  }
  AddComment(round, reviewer, "comment", file, number,
             Cut(comment->get<std::string>(), kMaxCommentBytes));
  return {};
}

// A --reviewer hook, in the sandbox over the CI tree with
// /crucible/review.json; its comments join stage 2.
void RunReviewer(const RoundContext& rc, const v1::ReviewerSpec& reviewer, size_t index,
                 const std::string& tree_dir, const std::string& input, v1::ReviewRound& round) {
  auto stage_error = [&](const std::string& what) {
    round.add_stage_errors(golden::internal::ToValidUtf8(
        fmt::format("stage 2, reviewer {}: {}", reviewer.name(), what)));
  };
  const std::string io_dir = fmt::format("{}/reviewer-{}", rc.box, index);
  auto prepared = MakeDirs(io_dir);
  if (prepared) prepared = WriteFile(io_dir + "/review.json", input);
  if (!prepared) {
    stage_error("could not be prepared: " + prepared.error().message());
    return;
  }
  sandbox::Spec spec;
  spec.argv = {"/bin/sh", "-c", reviewer.command()};
  spec.workspace = tree_dir;
  spec.binds = CommandFileBinds(reviewer.command());
  spec.binds.push_back({.host_path = io_dir, .sandbox_path = "/crucible", .writable = false});
  spec.env = {"CRUCIBLE_REVIEW_INPUT=/crucible/review.json", "PYTHONDONTWRITEBYTECODE=1"};
  const auto timeout = reviewer.timeout_s() > 0 ? std::chrono::seconds(reviewer.timeout_s())
                                                : kDefaultReviewerTimeout;
  spec.timeout = timeout;
  spec.capture_output = true;
  spec.output_cap = 256 * 1024;
  auto report = sandbox::Run(spec, [&] {
    if (rc.tick) rc.tick();
  });
  if (!report) {
    stage_error("did not run: " + report.error().message());
    return;
  }
  int kept = 0, rejected = 0, line_no = 0;
  std::string first_error;
  std::string_view out = report->stdout_data;
  while (!out.empty()) {
    size_t nl = out.find('\n');
    std::string_view line = out.substr(0, nl);
    out.remove_prefix(nl == std::string_view::npos ? out.size() : nl + 1);
    ++line_no;
    if (IsBlank(line)) continue;
    if (kept >= kMaxReviewerComments) {
      ++rejected;
      if (first_error.empty())
        first_error = fmt::format("more than {} comments", kMaxReviewerComments);
      continue;
    }
    if (auto ok = ParseReviewerLine(line, reviewer.name(), round); !ok) {
      ++rejected;
      if (first_error.empty())
        first_error = fmt::format("line {}: {}", line_no, ok.error().message());
      continue;
    }
    ++kept;
  }
  if (rejected > 0) {
    stage_error(
        fmt::format("{} of its output lines ignored (the first, {}); a line is "
                    "{{\"comment\": TEXT, \"file\": PATH, \"line\": N}}",
                    rejected, first_error));
  }
  if (report->timed_out) {
    stage_error(fmt::format("timed out after {} s and was stopped; its {} comments so far are kept",
                            timeout.count(), kept));
  } else if (report->exit_code != 0) {
    stage_error(fmt::format(
        "exited {}{}; its {} comments are kept", report->exit_code,
        report->stderr_data.empty()
            ? std::string()
            : ": " + Cut(report->stderr_data.substr(report->stderr_data.size() > 300
                                                        ? report->stderr_data.size() - 300
                                                        : 0),
                         300),
        kept));
  }
}

// What a reviewer hook is told (/crucible/review.json).
std::string ReviewerInput(const RoundContext& rc, const std::string& diff,
                          const v1::ReviewRound& round) {
  json failing = json::array();
  for (const auto& id : round.ci_failing()) failing.push_back(id);
  json bar = json::array();
  for (const auto& c : round.review()) {
    bar.push_back(
        {{"kind", c.kind()}, {"file", c.file()}, {"line", c.line()}, {"sentence", c.sentence()}});
  }
  json files = json::array();
  for (const auto& f : round.files_touched()) files.push_back(f);
  json input = {
      {"task_id", rc.task.id()},
      {"intent", rc.task.intent()},
      {"round", round.number()},
      {"diff", diff},
      {"files_touched", files},
      {"ci", {{"passed", round.ci_passed()}, {"failing", failing}, {"error", round.ci_error()}}},
      {"review", bar}};
  return input.dump(2, ' ', false, json::error_handler_t::replace);
}

}  // namespace

Result<std::optional<sandbox::QuotaDir>> WritableBox(const std::string& dir, uint64_t quota_bytes) {
  CRUCIBLE_RETURN_IF_ERROR(MakeDirs(dir));
  if (::chmod(dir.c_str(), 0700) != 0) return FailErrno("cannot restrict " + dir);
  if (quota_bytes == 0) return std::optional<sandbox::QuotaDir>();
  auto q = sandbox::QuotaDir::Mount(dir, quota_bytes);
  if (!q) return Fail(q.error().Wrap("workspace quota"));
  return std::optional<sandbox::QuotaDir>(std::move(*q));
}

std::vector<std::string> TamperedInfrastructure(const v1::GoldenTask& task,
                                                const std::vector<std::string>& touched) {
  const std::vector<std::string> infra = golden::TestInfrastructureOf(task);
  std::set<std::string> in_source;
  if (auto source_paths = vcs::PatchPaths(task.source_patch()); source_paths)
    in_source.insert(source_paths->begin(), source_paths->end());
  std::vector<std::string> out;
  for (const auto& path : touched) {
    if (!in_source.contains(path) && golden::IsTestInfrastructure(path, infra)) out.push_back(path);
  }
  return out;
}

std::vector<v1::ReviewComment> ReviewBarComments(const v1::GoldenTask& task,
                                                 const v1::ReviewRules& rules,
                                                 const std::string& diff,
                                                 const v1::StaticFacts& facts) {
  v1::Evidence ev;
  std::string parse_error;
  for (auto& c : scoring::DescribeChanges(diff, &parse_error)) {
    ev.add_files_touched(c.path());
    *ev.add_changes() = std::move(c);
  }
  for (auto& c : scoring::DescribeChanges(task.source_patch(), &parse_error))
    *ev.add_golden_changes() = std::move(c);
  ev.set_final_diff(diff);
  ev.set_diff_bytes(diff.size());
  *ev.mutable_static_facts() = facts;
  const v1::Score score =
      scoring::ScoreAttempt({.task = task, .evidence = ev, .trace = {}, .rules = rules});
  std::vector<v1::ReviewComment> out;
  for (const auto& v : score.violations()) {
    v1::ReviewComment c;
    c.set_reviewer("crucible");
    c.set_kind(v.kind());
    c.set_file(v.file());
    c.set_line(v.line());
    // What the agent is told names nothing of the golden patch.
    if (v.kind() == "out_of_scope") {
      c.set_sentence(fmt::format(
          "{} is outside the task's scope: the task does not need it changed; revert it.",
          v.file()));
    } else if (v.kind() == "oversized") {
      c.set_sentence(
          "The change is much larger than the task needs: keep only what the task asks for.");
    } else {
      c.set_sentence(v.detail());
    }
    out.push_back(std::move(c));
  }
  return out;
}

Status RunReviewStages(const RoundContext& rc, v1::ReviewRound& round) {
  const auto start = Clock::now();
  const std::string diff = round.diff();  // the caller stores it only when small
  CRUCIBLE_ASSIGN_OR_RETURN(auto quota, WritableBox(rc.box, rc.quota_bytes));
  const std::string tree_dir = rc.box + "/workspace";
  CRUCIBLE_ASSIGN_OR_RETURN(
      auto tree, vcs::Workspace::Create(rc.repo, rc.task.base_commit(), tree_dir, rc.box + "/git"));
  v1::StaticFacts facts;
  bool have_facts = false;
  if (auto applied = tree->Apply(diff); !applied) {
    round.set_ci_error("the change does not apply to a clean checkout of the base commit: " +
                       applied.error().message());
  } else {
    if (auto files = vcs::ParseDiff(diff); files) {
      facts = scoring::CheckStatic(*files, scoring::DirectoryTree(tree_dir));
      have_facts = true;
    }
    std::vector<std::string> touched(round.files_touched().begin(), round.files_touched().end());
    if (auto restored = tree->Restore(TamperedInfrastructure(rc.task, touched)); !restored) {
      round.set_ci_error("the test infrastructure cannot be put back: " +
                         restored.error().message());
    }
  }
  if (round.ci_error().empty()) {
    CRUCIBLE_RETURN_IF_ERROR(RunCi(rc, tree_dir, rc.box + "/out", round));
  }
  round.set_ci_error(golden::internal::ToValidUtf8(round.ci_error()));
  round.set_ci_wall_ms(MsSince(start));

  const auto review_start = Clock::now();
  if (diff.empty()) {
    AddComment(round, "crucible", "empty_change", "", 0,
               "The workspace has no change against the base commit: nothing toward the task "
               "was done.");
  } else {
    for (auto& c :
         ReviewBarComments(rc.task, rc.rules, diff, have_facts ? facts : v1::StaticFacts()))
      *round.add_review() = std::move(c);
  }
  if (!rc.reviewers.empty()) {
    const std::string input = ReviewerInput(rc, diff, round);
    for (size_t i = 0; i < rc.reviewers.size(); ++i)
      RunReviewer(rc, rc.reviewers[i], i, tree_dir, input, round);
  }
  round.set_merge_ready(round.ci_passed() && round.review().empty());
  round.set_review_wall_ms(MsSince(review_start));
  return {};
}

json MakeFeedback(v1::ReviewRound& round) {
  std::map<std::string, const v1::TestOutcome*> outcomes;
  for (const auto& t : round.ci().tests()) outcomes.emplace(t.id(), &t);
  // Limits, halved until the whole fits.
  size_t max_failing = 50, max_comments = 100, max_message = 1000, max_tail = 4096;
  for (int pass = 0;; ++pass) {
    json failing = json::array();
    std::string text = fmt::format("Feedback on round {}.\n\n", round.number());
    if (round.ci_passed()) {
      text += "CI: passed.\n";
    } else {
      text += "CI: failed.";
      if (!round.ci_error().empty()) text += " " + round.ci_error() + ".";
      text += "\n";
    }
    const size_t n_failing = static_cast<size_t>(round.ci_failing_size());
    if (n_failing > 0) text += fmt::format("{} visible tests fail:\n", n_failing);
    for (size_t i = 0; i < n_failing && i < max_failing; ++i) {
      const std::string& id = round.ci_failing(static_cast<int>(i));
      const v1::TestOutcome* t = outcomes.count(id) ? outcomes[id] : nullptr;
      const std::string status =
          t && t->status() == v1::TestOutcome::ERROR ? "error" : std::string("failed");
      const std::string message =
          golden::internal::ToValidUtf8(Cut(t ? t->message() : std::string(), max_message));
      failing.push_back({{"test", id}, {"status", status}, {"message", message}});
      text += fmt::format("  - {} ({}){}\n", id, status, message.empty() ? "" : ": " + message);
    }
    if (n_failing > max_failing)
      text += fmt::format("  ... and {} more\n", n_failing - max_failing);
    std::string tail;
    if (!round.ci_passed() && max_tail > 0) {
      const std::string& all = round.ci().output_tail();
      tail = golden::internal::ToValidUtf8(all.size() > max_tail ? all.substr(all.size() - max_tail)
                                                                 : all);
      if (!tail.empty()) text += "Output of the tests (the end):\n" + tail + "\n";
    }
    json review = json::array();
    const size_t n_comments = static_cast<size_t>(round.review_size());
    if (n_comments > 0) text += "\nReview:\n";
    for (size_t i = 0; i < n_comments && i < max_comments; ++i) {
      const auto& c = round.review(static_cast<int>(i));
      const std::string sentence = Cut(c.sentence(), max_message);
      review.push_back({{"reviewer", c.reviewer()},
                        {"kind", c.kind()},
                        {"file", c.file()},
                        {"line", c.line()},
                        {"sentence", sentence}});
      std::string where = c.file().empty() ? std::string()
                          : c.line() > 0   ? fmt::format("{}:{} ", c.file(), c.line())
                                           : c.file() + " ";
      text += fmt::format("  - {}({}, {}) {}\n", where, c.kind(), c.reviewer(), sentence);
    }
    if (n_comments > max_comments)
      text += fmt::format("  ... and {} more\n", n_comments - max_comments);
    if (round.ci_passed() && n_comments == 0) text += "Review: nothing to say.\n";
    json fb = {{"round", round.number()},
               {"ci",
                {{"passed", round.ci_passed()},
                 {"error", round.ci_error()},
                 {"failing", failing},
                 {"failing_not_listed", n_failing > max_failing ? n_failing - max_failing : 0},
                 {"output_tail", tail}}},
               {"review", review},
               {"review_not_listed", n_comments > max_comments ? n_comments - max_comments : 0},
               {"text", text}};
    const size_t size = fb.dump(-1, ' ', false, json::error_handler_t::replace).size();
    if (size <= kMaxFeedbackBytes || pass >= 12) {
      round.set_feedback_text(text);
      if (pass > 0) {
        round.set_feedback_truncated(fmt::format(
            "cut to stay under {} bytes: {} of {} failing tests and {} of {} review comments "
            "listed, messages at most {} bytes, output tail {} bytes",
            kMaxFeedbackBytes, std::min(n_failing, max_failing), n_failing,
            std::min(n_comments, max_comments), n_comments, max_message, tail.size()));
        fb["truncated"] = round.feedback_truncated();
      }
      return fb;
    }
    max_tail /= 2;
    max_message /= 2;
    max_failing = std::max<size_t>(max_failing / 2, 1);
    max_comments = std::max<size_t>(max_comments / 2, 1);
    if (pass >= 8) max_tail = 0;
  }
}

}  // namespace crucible::runner
