// The environment check end to end (docs/swebench.md "Environment check"): a
// SWE-bench-format file over a tiny git repository built here, imported with
// a scoped test command ({test_files}), `crucible calibrate --environment`
// running the real oracle and noop in the sandbox, the statuses stored and
// shown, runs leaving the mismatched tasks out and saying so, and
// --include-mismatched running them.
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "base/fs.h"
#include "storage/store.h"
#include "tests/support/run_command.h"
#include "tests/vcs/git_fixture.h"

namespace crucible {
namespace {

using crucible::testing::Crucible;
using crucible::testing::GitRepo;
using crucible::testing::ShellQuote;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

// The run id `crucible run` prints ("run r-...: N attempts ...").
std::string RunId(const std::string& text) {
  auto pos = text.find("run r");
  if (pos == std::string::npos) return "";
  return text.substr(pos + 4, text.find(':', pos) - pos - 4);
}

class EnvironmentCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
    auto dir = TempDir::Create("crucible-environment-cli-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    db_ = ShellQuote(dir_->path() + "/db");
  }

  // The change from `base` to the files written, as a patch; the tree is
  // back at `base` after.
  std::string Patch(GitRepo& repo, const std::string& base,
                    const std::vector<std::pair<std::string, std::string>>& files) {
    for (const auto& [path, text] : files) repo.Write(path, text);
    repo.Git("add -A");
    std::string patch = repo.Git("diff --cached " + base);
    repo.Git("reset -q --hard " + base);
    return patch;
  }

  // A repository whose lib.sh has a wrong add and sub and a right mul, and a
  // file of three tasks: "good" (its gold patch fixes add), "unresolved" (its
  // gold patch leaves sub wrong) and "passes-without" (mul's FAIL_TO_PASS test
  // passes at the base commit).
  std::string ImportSuite(GitRepo& repo) {
    const std::string lib =
        "add() { echo $(($1 - $2)); }\nsub() { echo $(($1 + $2)); }\nmul() { echo $(($1 * $2)); "
        "}\n";
    repo.Write("lib.sh", lib);
    // Runs the test files given (all without arguments), TAP on stdout.
    repo.Write("tests/run.sh",
               ". ./lib.sh\nfail=0\n"
               "check() { n=$1; shift; if \"$@\"; then echo \"ok 1 - $n\"; else echo \"not ok 1 - "
               "$n\"; fail=1; fi; }\n"
               "[ $# -gt 0 ] || set -- tests/test_*.sh\n"
               "for f in \"$@\"; do . \"./$f\"; done\nexit $fail\n");
    repo.Write("tests/test_base.sh", "check base_ok [ 1 = 1 ]\n");
    const std::string base = repo.Commit("base");
    auto line = [&](const std::string& id, const std::string& patch, const std::string& test_patch,
                    const std::vector<std::string>& f2p, const std::vector<std::string>& p2p) {
      nlohmann::json j = {
          {"instance_id", id},
          {"repo", "local/calc"},
          {"base_commit", base},
          {"patch", patch},
          {"test_patch", test_patch},
          {"problem_statement", "fix " + id},
          {"FAIL_TO_PASS", f2p},
          {"PASS_TO_PASS", p2p},
          {"crucible", {{"test_cmd", "sh tests/run.sh {test_files}"}, {"results", "tap"}}}};
      return j.dump() + "\n";
    };
    std::string jsonl;
    jsonl += line("good",
                  Patch(repo, base,
                        {{"lib.sh",
                          "add() { echo $(($1 + $2)); }\nsub() { echo $(($1 + $2)); }\n"
                          "mul() { echo $(($1 * $2)); }\n"}}),
                  Patch(repo, base,
                        {{"tests/test_add.sh",
                          "check add_works [ \"$(add 1 2)\" = 3 ]\n"
                          "check add_zero [ \"$(add 0 0)\" = 0 ]\n"}}),
                  {"add_works"}, {"add_zero"});
    jsonl +=
        line("unresolved", Patch(repo, base, {{"lib.sh", "# subtracts\n" + lib}}),
             Patch(repo, base, {{"tests/test_sub.sh", "check sub_works [ \"$(sub 3 1)\" = 2 ]\n"}}),
             {"sub_works"}, {});
    jsonl +=
        line("passes-without", Patch(repo, base, {{"lib.sh", lib + "# multiplies\n"}}),
             Patch(repo, base, {{"tests/test_mul.sh", "check mul_works [ \"$(mul 2 2)\" = 4 ]\n"}}),
             {"mul_works"}, {});
    const std::string file = dir_->path() + "/calc.jsonl";
    EXPECT_TRUE(WriteFile(file, jsonl));
    return file;
  }

  std::unique_ptr<TempDir> dir_;
  std::string db_;
};

TEST_F(EnvironmentCli, MismatchesAreNamedStoredAndLeftOutOfRuns) {
  GitRepo repo;
  const std::string file = ImportSuite(repo);
  auto imp = Crucible("suite import " + ShellQuote(file) + " --repo " + ShellQuote(repo.path()) +
                      " --db " + db_);
  ASSERT_EQ(imp.status, 0) << imp.text;

  auto check = Crucible("calibrate --environment --suite calc --runners 2 --db " + db_);
  EXPECT_EQ(check.status, 3) << check.text;
  EXPECT_THAT(check.text, HasSubstr("3 tasks): 1 ok, 2 mismatch, 0 not checked")) << check.text;
  EXPECT_THAT(check.text, HasSubstr("FAIL_TO_PASS sub_works failed with the gold patch"))
      << check.text;
  EXPECT_THAT(check.text, HasSubstr("FAIL_TO_PASS mul_works passed without it")) << check.text;
  EXPECT_THAT(check.text, Not(HasSubstr("add_works"))) << check.text;
  // Only the oracle and the noop ran.
  EXPECT_THAT(check.text, Not(HasSubstr("mutant"))) << check.text;

  {
    auto store = storage::Store::Open(dir_->path() + "/db");
    ASSERT_TRUE(store) << store.error().ToString();
    auto tasks = (*store)->ListTasks("calc");
    ASSERT_TRUE(tasks);
    std::map<std::string, v1::TaskEnvironment> env;
    for (const auto& t : *tasks) env[t.id()] = t.environment();
    EXPECT_EQ(env["good"].status(), "ok");
    EXPECT_EQ(env["unresolved"].status(), "mismatch");
    EXPECT_THAT(env["unresolved"].failing(),
                UnorderedElementsAre("FAIL_TO_PASS sub_works failed with the gold patch"));
    EXPECT_EQ(env["passes-without"].status(), "mismatch");
    EXPECT_THAT(env["passes-without"].failing(),
                UnorderedElementsAre("FAIL_TO_PASS mul_works passed without it"));
    EXPECT_FALSE(env["good"].run_id().empty());
    EXPECT_GT(env["good"].at_ms(), 0);
  }

  auto show = Crucible("suite show calc --db " + db_);
  ASSERT_EQ(show.status, 0) << show.text;
  EXPECT_THAT(show.text, HasSubstr("2 environment mismatch, left out of runs")) << show.text;
  EXPECT_THAT(show.text, HasSubstr("environment: ok (run ")) << show.text;
  EXPECT_THAT(show.text, HasSubstr("environment: MISMATCH, left out of runs (run ")) << show.text;
  EXPECT_THAT(show.text, HasSubstr("      FAIL_TO_PASS sub_works failed with the gold patch"))
      << show.text;
  auto list = Crucible("suite list --db " + db_);
  EXPECT_THAT(list.text, HasSubstr("(2 environment mismatch)")) << list.text;

  // A run leaves them out and says so; the report does too.
  auto run = Crucible("run --suite calc --agent builtin:oracle --runners 1 --db " + db_);
  ASSERT_EQ(run.status, 0) << run.text;
  EXPECT_THAT(run.text, HasSubstr("2 tasks left out: environment mismatch")) << run.text;
  const std::string run_id = RunId(run.text);
  ASSERT_FALSE(run_id.empty()) << run.text;
  auto table = Crucible("report " + run_id + " --db " + db_);
  EXPECT_THAT(table.text, HasSubstr("2 tasks left out: environment mismatch")) << table.text;
  EXPECT_THAT(table.text, HasSubstr("passes-without, unresolved")) << table.text;
  auto json = Crucible("report " + run_id + " --format json --db " + db_);
  ASSERT_EQ(json.status, 0) << json.text;
  auto rows = nlohmann::json::parse(json.text);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["attempts"], 1) << json.text;
  EXPECT_EQ(rows[0]["completed"], 1) << json.text;
  EXPECT_EQ(rows[0]["mismatched_tasks"], nlohmann::json::array({"passes-without", "unresolved"}))
      << json.text;
  EXPECT_EQ(rows[0]["include_mismatched"], false) << json.text;

  // --include-mismatched runs them.
  auto all = Crucible(
      "run --suite calc --agent builtin:oracle --runners 1 --include-mismatched --db " + db_);
  ASSERT_EQ(all.status, 0) << all.text;
  EXPECT_THAT(all.text, HasSubstr("2 tasks with an environment mismatch included")) << all.text;
  auto all_json = Crucible("report " + RunId(all.text) + " --format json --db " + db_);
  auto all_rows = nlohmann::json::parse(all_json.text);
  ASSERT_EQ(all_rows.size(), 1u);
  EXPECT_EQ(all_rows[0]["attempts"], 3) << all_json.text;
  EXPECT_EQ(all_rows[0]["completed"], 2) << all_json.text;

  // The check again, as JSON: it runs the mismatched tasks too.
  // Stdout alone: the progress goes to stderr.
  auto again = crucible::testing::Sh(
      std::string(CRUCIBLE_BIN) + " calibrate --environment --suite calc --format json --db " + db_,
      crucible::testing::kCommandLimit, /*with_stderr=*/false);
  EXPECT_EQ(again.status, 3) << again.text;
  auto j = nlohmann::json::parse(again.text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << again.text;
  EXPECT_EQ(j["mismatched"], nlohmann::json::array({"passes-without", "unresolved"})) << again.text;
  EXPECT_EQ(j["tasks"].size(), 3u) << again.text;
  EXPECT_EQ(j["ok"], false);

  // Bad input: exit 1 naming what was wrong.
  auto bad = Crucible("calibrate --environment --suite nope --db " + db_);
  EXPECT_EQ(bad.status, 1) << bad.text;
  EXPECT_THAT(bad.text, HasSubstr("nope")) << bad.text;
  auto not_env = Crucible("calibrate --environment --run " + run_id + " --db " + db_);
  EXPECT_EQ(not_env.status, 1) << not_env.text;
  EXPECT_THAT(not_env.text, HasSubstr("is not an environment check: it has no agent noop"))
      << not_env.text;
}

}  // namespace
}  // namespace crucible
