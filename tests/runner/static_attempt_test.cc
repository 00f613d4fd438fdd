// The static checks in a real attempt: a real git repository, the real
// sandbox and an external agent script; the evidence names what it left stale.
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent-runner/attempt.h"
#include "base/fs.h"
#include "tests/runner/value_tests.h"
#include "tests/vcs/git_fixture.h"

namespace crucible::runner {
namespace {

using crucible::testing::GitRepo;

class StaticAttemptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
    repo_.Write("run_tests.sh", kRunTests);
    repo_.Write("value.txt", "1\n");
    repo_.Write("pricing.py", "def calc_total(items):\n    return sum(items)\n");
    repo_.Write("report.py",
                "from pricing import calc_total\n\n\ndef report(items):\n"
                "    return calc_total(items)\n");
    task_.set_suite("s");
    task_.set_id("t-1");
    task_.set_repo_path(repo_.path());
    task_.set_base_commit(repo_.Commit("base"));
    task_.set_intent("Set the value to 2.");
    task_.set_source_patch(
        "diff --git a/value.txt b/value.txt\n--- a/value.txt\n+++ b/value.txt\n"
        "@@ -1 +1 @@\n-1\n+2\n");
    // The hidden tests refer to the old name too: the checks run before they
    // are applied, so they must not be named.
    task_.set_test_patch(
        "diff --git a/tests/expected.txt b/tests/expected.txt\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/tests/expected.txt\n@@ -0,0 +1 @@\n+2\n"
        "diff --git a/tests/test_hidden.py b/tests/test_hidden.py\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/tests/test_hidden.py\n@@ -0,0 +1 @@\n+from pricing import "
        "calc_total\n");
    task_.add_fail_to_pass("tests.check::test_value");
    task_.set_test_cmd("sh run_tests.sh {junit}");
    task_.set_test_timeout_s(30);
    auto dir = TempDir::Create("crucible-static-attempt-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
  }

  Result<v1::Evidence> Perform(const std::string& command) {
    v1::AgentSpec agent;
    agent.set_name("a");
    agent.set_command(command);
    agent.set_timeout_s(60);
    AttemptContext ctx;
    ctx.workdir = dir_->path() + "/attempt-" + std::to_string(++n_);
    ctx.emit = [this](v1::TraceEvent ev) { events_.push_back(std::move(ev)); };
    return PerformAttempt(task_, agent, ctx);
  }

  // The attributes of the runner's "static_checks" event; null if none.
  nlohmann::json StaticEvent() {
    for (const auto& e : events_) {
      if (e.source() == "runner" && e.name() == "static_checks") {
        return nlohmann::json::parse(e.attrs_json());
      }
    }
    return nullptr;
  }

  GitRepo repo_;
  v1::GoldenTask task_;
  std::unique_ptr<TempDir> dir_;
  std::vector<v1::TraceEvent> events_;
  int n_ = 0;
};

TEST_F(StaticAttemptTest, ARenameThatLeavesACallSiteStaleIsNamedInTheEvidence) {
  auto e = Perform(
      "echo 2 > value.txt; "
      "sed -i 's/calc_total/compute_order_total/' pricing.py; "
      "printf 'import json\\nimport leftpad_nowhere\\n' >> pricing.py");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(e->agent_exit().exit_code(), 0) << e->agent_output_tail();
  const auto& facts = e->static_facts();
  EXPECT_EQ(facts.error(), "");
  std::vector<std::string> refs;
  for (const auto& r : facts.stale_references()) {
    refs.push_back(r.symbol() + "@" + r.file() + ":" + std::to_string(r.line()) + "<" +
                   r.defined_in());
  }
  EXPECT_EQ(refs, (std::vector<std::string>{"calc_total@report.py:1<pricing.py",
                                            "calc_total@report.py:5<pricing.py"}));
  ASSERT_EQ(facts.broken_imports_size(), 1);
  EXPECT_EQ(facts.broken_imports(0).name(), "leftpad_nowhere");
  EXPECT_EQ(facts.broken_imports(0).file(), "pricing.py");
  EXPECT_EQ(facts.broken_imports(0).line(), 4);
  EXPECT_EQ(facts.not_checked_size(), 1);  // value.txt
  // The attempt went on to the tests, with the hidden test patch applied.
  EXPECT_EQ(e->test_patch_error(), "");
  EXPECT_GT(e->tests().tests_size(), 0);

  auto ev = StaticEvent();
  ASSERT_FALSE(ev.is_null());
  EXPECT_EQ(ev["stale_references"], 2);
  EXPECT_EQ(ev["broken_imports"], 1);
  EXPECT_EQ(ev["not_checked"], 1);
  EXPECT_EQ(ev["error"], "");
}

TEST_F(StaticAttemptTest, ACleanChangeHasNoFinding) {
  auto e = Perform(
      "echo 2 > value.txt; "
      "sed -i 's/calc_total/compute_order_total/' pricing.py report.py");
  ASSERT_TRUE(e) << e.error().ToString();
  const auto& facts = e->static_facts();
  EXPECT_EQ(facts.error(), "");
  EXPECT_EQ(facts.stale_references_size(), 0) << facts.stale_references(0).file();
  EXPECT_EQ(facts.broken_imports_size(), 0);
  EXPECT_FALSE(StaticEvent().is_null());
}

}  // namespace
}  // namespace crucible::runner
