// `crucible mine --config` and the `crucible suite` commands, through the
// real binary.
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "golden/interchange.h"
#include "storage/store.h"
#include "tests/support/run_command.h"
#include "tests/vcs/git_fixture.h"

namespace crucible {
namespace {

using crucible::testing::GitRepo;
using crucible::testing::ShellQuote;
using ::testing::HasSubstr;
using ::testing::Not;

using Output = crucible::testing::CommandOutput;
using crucible::testing::Crucible;

class SuiteCli : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("crucible-suite-cli-");
    ASSERT_TRUE(dir);
    dir_ = std::move(*dir);
    db_ = ShellQuote(dir_.path() + "/db");
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_.path() + "/" + name;
    EXPECT_TRUE(WriteFile(path, text));
    return path;
  }
  TempDir dir_ = *TempDir::Create("crucible-test-unused-");
  std::string db_;
};

TEST_F(SuiteCli, ConfigErrorsNameTheFileAndLine) {
  GitRepo repo;
  repo.Write("a.txt", "a\n");
  repo.Commit("root");
  std::string config = Write("suite.yaml", "test_cmd: \"make {junit}\"\nrepeats: 2\n");
  auto out = Crucible("mine --repo " + ShellQuote(repo.path()) + " --suite s --config " +
                      ShellQuote(config) + " --db " + db_);
  EXPECT_EQ(out.status, 1);
  EXPECT_THAT(out.text, HasSubstr(config + ":2:1: unknown key 'repeats'")) << out.text;

  // A sandbox policy in the configuration is checked before mining starts.
  std::string policy =
      Write("policy.yaml", "test_cmd: \"make {junit}\"\nsandbox:\n  pids: 64\n  netwrk: none\n");
  auto bad_policy = Crucible("mine --repo " + ShellQuote(repo.path()) + " --suite s --config " +
                             ShellQuote(policy) + " --db " + db_);
  EXPECT_EQ(bad_policy.status, 1);
  EXPECT_THAT(bad_policy.text, HasSubstr(policy + ":4:3: unknown key 'netwrk'")) << bad_policy.text;

  auto none = Crucible("mine --repo " + ShellQuote(repo.path()) + " --suite s --db " + db_);
  EXPECT_EQ(none.status, 1);
  EXPECT_THAT(none.text, HasSubstr("no test command")) << none.text;

  auto missing = Crucible("mine --repo " + ShellQuote(repo.path()) +
                          " --suite s --config /nonexistent/s.yaml --db " + db_);
  EXPECT_EQ(missing.status, 1);
  EXPECT_THAT(missing.text, HasSubstr("/nonexistent/s.yaml")) << missing.text;

  auto since = Crucible("mine --repo " + ShellQuote(repo.path()) +
                        " --suite s --test-cmd 'x {junit}' --since yesterday --db " + db_);
  EXPECT_EQ(since.status, 1);
  EXPECT_THAT(since.text, HasSubstr("'yesterday' is not a date")) << since.text;
}

TEST_F(SuiteCli, MineShowSplitExportImport) {
  if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
  GitRepo repo;
  repo.Write("lib.sh", "greet() { echo hello; }\n");
  repo.Write("tests/run.sh", "echo 1..1; echo 'ok 1 - runs'\n");
  repo.Commit("initial");
  repo.Write("README.md", "# greet\n");
  repo.Commit("Describe greet");
  repo.Write("lib.sh", "greet() { echo \"hello ${1:-world}\"; }\n");
  repo.Write("tests/run.sh",
             ". ./lib.sh\necho 1..1\n"
             "[ \"$(greet ann)\" = 'hello ann' ] && echo 'ok 1 - by name' || "
             "{ echo 'not ok 1 - by name'; exit 1; }\n");
  repo.Commit("Fix greet to use the name");
  std::string config = Write("suite.yaml",
                             "test_cmd: sh tests/run.sh\n"
                             "results: tap\n"
                             "repeat: 3\n"
                             "banned_patterns: [\"eval \"]\n");
  auto mined = Crucible("mine --repo " + ShellQuote(repo.path()) + " --suite greet --config " +
                        ShellQuote(config) + " --repeat 1 --db " + db_);
  ASSERT_EQ(mined.status, 0) << mined.text;
  EXPECT_THAT(mined.text, HasSubstr("suite greet: 1 tasks")) << mined.text;

  auto split = Crucible("suite split greet --held-out 1 --db " + db_);
  ASSERT_EQ(split.status, 0) << split.text;
  EXPECT_THAT(split.text, HasSubstr("0 dev, 1 held out"));

  auto show = Crucible("suite show greet --db " + db_);
  ASSERT_EQ(show.status, 0) << show.text;
  EXPECT_THAT(show.text, HasSubstr("results  tap"));
  EXPECT_THAT(show.text, HasSubstr("repetitions  1"));  // the flag beat the file
  EXPECT_THAT(show.text, HasSubstr("banned patterns  eval "));
  EXPECT_THAT(show.text, HasSubstr("kind: bug-fix  split: held-out"));
  EXPECT_THAT(show.text, HasSubstr("FAIL_TO_PASS (1): by name"));
  EXPECT_THAT(show.text, HasSubstr("Describe greet"));
  EXPECT_THAT(show.text, HasSubstr("docs-only change"));

  std::string exported = dir_.path() + "/greet.jsonl";
  auto exp =
      Crucible("suite export greet --format jsonl -o " + ShellQuote(exported) + " --db " + db_);
  ASSERT_EQ(exp.status, 0) << exp.text;
  auto text = ReadFile(exported);
  ASSERT_TRUE(text);
  EXPECT_THAT(*text, HasSubstr("\"FAIL_TO_PASS\":[\"by name\"]"));

  auto imp = Crucible("suite import " + ShellQuote(exported) + " --repo " +
                      ShellQuote(repo.path()) + " --db " + db_);
  ASSERT_EQ(imp.status, 0) << imp.text;
  auto list = Crucible("suite list --db " + db_);
  EXPECT_THAT(list.text, HasSubstr("greet "));  // the imported copy is named after the file
  auto show_again = Crucible("suite show greet --db " + db_);
  EXPECT_THAT(show_again.text, HasSubstr("kind: bug-fix  split: held-out"));

  std::string broken = Write("broken.jsonl", "\n{\"instance_id\": \"x\"}\n");
  auto bad = Crucible("suite import " + ShellQuote(broken) + " --repo " + ShellQuote(repo.path()) +
                      " --db " + db_);
  EXPECT_EQ(bad.status, 1);
  EXPECT_THAT(bad.text, HasSubstr(broken + ":2: missing field \"repo\"")) << bad.text;

  auto format = Crucible("suite export greet --format csv --db " + db_);
  EXPECT_EQ(format.status, 1);
  EXPECT_THAT(format.text, HasSubstr("unknown export format 'csv'"));
}

// A repository whose tests are shell scripts printing TAP: tests/tN.sh checks
// the function fN of lib/fN.sh. AddFeature(n) merges a pull request adding
// both, so its FAIL_TO_PASS is "fN".
class RefreshRepo {
 public:
  RefreshRepo() {
    repo.Write("lib/f0.sh", "f0() { echo 0; }\n");
    repo.Write("tests/t0.sh", Test(0));
    repo.Commit("initial");
  }
  static std::string Test(int n) {
    return fmt::format(
        "[ -f lib/f{0}.sh ] && . lib/f{0}.sh; [ \"$(f{0} 2>/dev/null)\" = {0} ] && "
        "echo 'ok - f{0}' || echo 'not ok - f{0}'\n",
        n);
  }
  // Returns the merge commit.
  std::string AddFeature(int n) {
    repo.Git(fmt::format("checkout -q -b f{}", n));
    repo.Write(fmt::format("lib/f{}.sh", n), fmt::format("f{0}() {{ echo {0}; }}\n", n));
    repo.Write(fmt::format("tests/t{}.sh", n), Test(n));
    repo.Commit(fmt::format("Add f{}", n));
    repo.Git("checkout -q main");
    return repo.Merge(fmt::format("f{}", n),
                      fmt::format("Merge pull request #{0} from team/f{0}\n\nAdd f{0}", n));
  }
  GitRepo repo;
};

std::string Id(const std::string& commit) { return "t-" + commit.substr(0, 8); }

TEST_F(SuiteCli, RefreshPromotesNewMergesAndDropsTheOldest) {
  if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
  RefreshRepo r;
  std::vector<std::string> merges;
  for (int n = 1; n <= 3; ++n) merges.push_back(r.AddFeature(n));
  const std::string mine = "mine --repo " + ShellQuote(r.repo.path()) +
                           " --suite feats --results tap --repeat 1 --jobs 2 --test-cmd " +
                           ShellQuote("for t in tests/t*.sh; do sh \"$t\"; done") + " --db " + db_;
  auto mined = Crucible(mine);
  ASSERT_EQ(mined.status, 0) << mined.text;
  ASSERT_THAT(mined.text, HasSubstr("suite feats: 3 tasks")) << mined.text;
  auto split = Crucible("suite split feats --held-out 0.5 --seed 3 --db " + db_);
  ASSERT_EQ(split.status, 0) << split.text;
  auto before = Crucible("suite show feats --db " + db_);

  auto nothing = Crucible("suite refresh feats --db " + db_);
  ASSERT_EQ(nothing.status, 0) << nothing.text;
  EXPECT_THAT(nothing.text, HasSubstr("suite feats is up to date: nothing merged on HEAD since " +
                                      merges.back().substr(0, 10)));

  merges.push_back(r.AddFeature(4));
  r.repo.Write("NOTES.md", "notes\n");
  std::string docs = r.repo.Commit("Write notes");
  merges.push_back(r.AddFeature(5));
  auto refreshed = Crucible("suite refresh feats --jobs 2 --db " + db_);
  ASSERT_EQ(refreshed.status, 0) << refreshed.text;
  EXPECT_THAT(refreshed.text, HasSubstr("2 promoted, 1 skipped, 2 dropped, 3 tasks"))
      << refreshed.text;
  EXPECT_THAT(refreshed.text, HasSubstr("promoted " + Id(merges[3])));
  EXPECT_THAT(refreshed.text, HasSubstr("promoted " + Id(merges[4])));
  EXPECT_THAT(refreshed.text, HasSubstr("skipped  " + docs.substr(0, 10)));
  EXPECT_THAT(refreshed.text, HasSubstr("docs-only change"));
  EXPECT_THAT(refreshed.text, HasSubstr("dropped  " + Id(merges[0])));
  EXPECT_THAT(refreshed.text, HasSubstr("dropped  " + Id(merges[1])));

  {
    auto store = storage::Store::Open(dir_.path() + "/db");
    ASSERT_TRUE(store) << store.error().message();
    auto suite = (*store)->GetSuite("feats");
    ASSERT_TRUE(suite);
    EXPECT_EQ(suite->mined_head(), merges.back());
    EXPECT_EQ(suite->target_size(), 3);
    auto tasks = (*store)->ListTasks("feats");
    ASSERT_TRUE(tasks);
    std::vector<std::string> ids;
    for (const auto& t : *tasks) {
      ids.push_back(t.id());
      EXPECT_EQ(t.held_out(), golden::IsHeldOut(t.id(), 0.5, 3)) << t.id();
      if (t.id() == Id(merges[2])) {
        // The surviving old task is untouched, split included.
        EXPECT_THAT(before.text, HasSubstr(t.id()));
        EXPECT_THAT(before.text,
                    HasSubstr(std::string("split: ") + (t.held_out() ? "held-out" : "dev")));
      } else {
        EXPECT_THAT(std::vector<std::string>(t.fail_to_pass().begin(), t.fail_to_pass().end()),
                    ::testing::ElementsAre(t.id() == Id(merges[3]) ? "f4" : "f5"));
      }
    }
    std::sort(ids.begin(), ids.end());
    std::vector<std::string> want = {Id(merges[2]), Id(merges[3]), Id(merges[4])};
    std::sort(want.begin(), want.end());
    EXPECT_EQ(ids, want);

    // A run still going that uses the oldest task blocks its drop.
    v1::Run run;
    run.set_id("r-busy");
    run.set_suite("feats");
    run.set_state(v1::Run::RUNNING);
    v1::Attempt a;
    a.set_run_id("r-busy");
    a.set_number(1);
    a.set_task_id(Id(merges[2]));
    ASSERT_TRUE((*store)->CreateRun(run, {a}));
  }
  merges.push_back(r.AddFeature(6));
  auto busy = Crucible("suite refresh feats --db " + db_);
  EXPECT_EQ(busy.status, 1);
  EXPECT_THAT(busy.text, HasSubstr("refresh would drop task " + Id(merges[2]) +
                                   ", which run r-busy (still running) uses"))
      << busy.text;
  auto after = Crucible("suite show feats --db " + db_);
  EXPECT_THAT(after.text, HasSubstr(Id(merges[2])));
  EXPECT_THAT(after.text, ::testing::Not(HasSubstr(Id(merges[5]))));
}

TEST_F(SuiteCli, RefreshNeedsAMinedSuite) {
  GitRepo repo;
  repo.Write("a.py", "x = 1\n");
  std::string base = repo.Commit("root");
  std::string jsonl =
      Write("imp.jsonl", "{\"instance_id\":\"a\",\"repo\":\"r\",\"base_commit\":\"" + base +
                             "\",\"patch\":\"\",\"test_patch\":\"\",\"problem_statement\":\"p\","
                             "\"FAIL_TO_PASS\":[],\"PASS_TO_PASS\":[]}\n");
  auto imp = Crucible("suite import " + ShellQuote(jsonl) + " --repo " + ShellQuote(repo.path()) +
                      " --test-cmd 'true {junit}' --db " + db_);
  ASSERT_EQ(imp.status, 0) << imp.text;
  auto refresh = Crucible("suite refresh imp --db " + db_);
  EXPECT_EQ(refresh.status, 1);
  EXPECT_THAT(refresh.text, HasSubstr("suite imp records no mined history")) << refresh.text;
  auto missing = Crucible("suite refresh nope --db " + db_);
  EXPECT_EQ(missing.status, 1);
  EXPECT_THAT(missing.text, HasSubstr("suite 'nope' not found")) << missing.text;

  auto tag = Crucible(
      "suite tag imp a --add scope-creep --add silent-regression --kind bug-fix "
      "--db " +
      db_);
  ASSERT_EQ(tag.status, 0) << tag.text;
  EXPECT_THAT(tag.text,
              HasSubstr("a: kind bug-fix, failure modes: silent-regression, scope-creep"));
  auto show = Crucible("suite show imp --db " + db_);
  EXPECT_THAT(show.text, HasSubstr("failure modes: silent-regression, scope-creep"));
  auto removed = Crucible("suite tag imp a --remove scope-creep --db " + db_);
  ASSERT_EQ(removed.status, 0) << removed.text;
  auto exported = Crucible("suite export imp --db " + db_);
  EXPECT_THAT(exported.text, HasSubstr("\"failure_modes\":[\"silent-regression\"]"))
      << exported.text;
  std::string round_trip = Write("again.jsonl", exported.text);
  auto again = Crucible("suite import " + ShellQuote(round_trip) + " --repo " +
                        ShellQuote(repo.path()) + " --db " + db_);
  ASSERT_EQ(again.status, 0) << again.text;
  EXPECT_THAT(Crucible("suite show again --db " + db_).text,
              HasSubstr("failure modes: silent-regression"));

  auto bad_mode = Crucible("suite tag imp a --add laziness --db " + db_);
  EXPECT_EQ(bad_mode.status, 1);
  EXPECT_THAT(bad_mode.text,
              HasSubstr("unknown failure mode 'laziness' (valid: context-blindness, "
                        "instruction-drift, silent-regression, scope-creep, hallucinated-api)"));
  auto bad_kind = Crucible("suite tag imp a --kind chore --db " + db_);
  EXPECT_EQ(bad_kind.status, 1);
  EXPECT_THAT(bad_kind.text, HasSubstr("unknown kind 'chore' (valid: bug-fix, feature"));
  auto bad_task = Crucible("suite tag imp zz --add scope-creep --db " + db_);
  EXPECT_EQ(bad_task.status, 1);
  EXPECT_THAT(bad_task.text, HasSubstr("suite imp has no task 'zz'"));
  std::string bad_import =
      Write("badmode.jsonl",
            "{\"instance_id\":\"a\",\"repo\":\"r\",\"base_commit\":\"" + base +
                "\",\"patch\":\"\",\"test_patch\":\"\",\"problem_statement\":\"p\","
                "\"FAIL_TO_PASS\":[],\"PASS_TO_PASS\":[],\"crucible\":{\"test_cmd\":\"t\","
                "\"failure_modes\":[\"lazy\"]}}\n");
  auto bad_imp = Crucible("suite import " + ShellQuote(bad_import) + " --repo " +
                          ShellQuote(repo.path()) + " --db " + db_);
  EXPECT_EQ(bad_imp.status, 1);
  EXPECT_THAT(bad_imp.text, HasSubstr(bad_import + ":1: field \"crucible.failure_modes\": "
                                                   "unknown failure mode lazy"));
}

// `suite import --results PRESET` sets how every task's output is read; the
// export carries it in "crucible" and imports back the same; bad values are
// named.
TEST_F(SuiteCli, ImportWithResultsFromLogsRoundTrips) {
  GitRepo repo;
  repo.Write("a.py", "x = 1\n");
  std::string base = repo.Commit("root");
  std::string jsonl =
      Write("swe.jsonl", "{\"instance_id\":\"a__b-1\",\"repo\":\"a/b\",\"base_commit\":\"" + base +
                             "\",\"patch\":\"\",\"test_patch\":\"\",\"problem_statement\":"
                             "\"p\",\"FAIL_TO_PASS\":\"[\\\"t.py::test_a\\\"]\","
                             "\"PASS_TO_PASS\":\"[]\"}\n");
  auto imp = Crucible("suite import " + ShellQuote(jsonl) + " --repo " + ShellQuote(repo.path()) +
                      " --test-cmd 'pytest -rA' --results pytest --db " + db_);
  ASSERT_EQ(imp.status, 0) << imp.text;
  EXPECT_THAT(Crucible("suite show swe --db " + db_).text,
              HasSubstr("results  regex (log preset pytest)"));
  auto exported = Crucible("suite export swe --db " + db_);
  ASSERT_EQ(exported.status, 0) << exported.text;
  auto line = nlohmann::json::parse(exported.text);
  EXPECT_EQ(line["crucible"]["results"], "regex");
  EXPECT_EQ(line["crucible"]["log_results"]["preset"], "pytest");
  EXPECT_EQ(line["crucible"]["log_results"]["status"]["XFAIL"], "passed");
  std::string again = Write("again.jsonl", exported.text);
  ASSERT_EQ(Crucible("suite import " + ShellQuote(again) + " --repo " + ShellQuote(repo.path()) +
                     " --db " + db_)
                .status,
            0);
  EXPECT_EQ(Crucible("suite export again --db " + db_).text, exported.text);

  auto unknown = Crucible("suite import " + ShellQuote(jsonl) + " --repo " +
                          ShellQuote(repo.path()) + " --test-cmd t --results nose --db " + db_);
  EXPECT_EQ(unknown.status, 1);
  EXPECT_THAT(unknown.text, HasSubstr("unknown results 'nose' (junit, tap, exit-code, cargo, "
                                      "django, go, jest, pytest, sympy)"));
  auto bare = Crucible("suite import " + ShellQuote(jsonl) + " --repo " + ShellQuote(repo.path()) +
                       " --test-cmd t --results regex --db " + db_);
  EXPECT_EQ(bare.status, 1);
  EXPECT_THAT(bare.text, HasSubstr("results 'regex' needs a pattern"));

  nlohmann::json broken = line;
  broken["crucible"]["log_results"]["status"]["PASSED"] = "fine";
  std::string bad = Write("bad.jsonl", broken.dump() + "\n");
  auto bad_imp = Crucible("suite import " + ShellQuote(bad) + " --repo " + ShellQuote(repo.path()) +
                          " --db " + db_);
  EXPECT_EQ(bad_imp.status, 1);
  EXPECT_THAT(bad_imp.text, HasSubstr(bad + ":1: field \"crucible.log_results.status\": 'PASSED' "
                                            "maps to 'fine'"));
  EXPECT_THAT(Crucible("suite list --db " + db_).text, Not(HasSubstr("bad ")));
}

// The run id `crucible run` prints ("run r-...: N attempts ...").
std::string RunId(const std::string& text) {
  auto pos = text.find("run r");
  if (pos == std::string::npos) return "";
  return text.substr(pos + 4, text.find(':', pos) - pos - 4);
}

// A task whose tests the base commit already passes (no FAIL_TO_PASS test) is
// completed by doing nothing: a run leaves it out of the completion rate and
// says so; --include-untestable runs it and reports it apart.
TEST_F(SuiteCli, RunsLeaveOutTasksThatDoingNothingCompletes) {
  if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
  GitRepo repo;
  repo.Write("lib.sh", "greet() { echo hello; }\n");
  repo.Write("tests/run.sh", "echo 1..1; echo 'ok 1 - runs'\n");
  repo.Commit("initial");
  repo.Write("lib.sh", "greet() { echo \"hello ${1:-world}\"; }\n");
  repo.Write("tests/run.sh",
             ". ./lib.sh\necho 1..1\n"
             "[ \"$(greet ann)\" = 'hello ann' ] && echo 'ok 1 - by name' || "
             "{ echo 'not ok 1 - by name'; exit 1; }\n");
  std::string fix = repo.Commit("Fix greet to use the name");
  repo.Write("lib.sh", "greet() { printf 'hello %s\\n' \"${1:-world}\"; }\n");
  std::string speedup = repo.Commit("Speed up greet");
  auto mined = Crucible("mine --repo " + ShellQuote(repo.path()) +
                        " --suite greet --results tap --repeat 1 --test-cmd 'sh tests/run.sh' "
                        "--db " +
                        db_);
  ASSERT_EQ(mined.status, 0) << mined.text;
  ASSERT_THAT(mined.text, HasSubstr("suite greet: 2 tasks")) << mined.text;

  auto show = Crucible("suite show greet --db " + db_);
  ASSERT_EQ(show.status, 0) << show.text;
  EXPECT_THAT(show.text, HasSubstr(Id(speedup) + "  base")) << show.text;
  EXPECT_THAT(show.text, HasSubstr("untestable: no FAIL_TO_PASS test")) << show.text;
  EXPECT_THAT(show.text, HasSubstr("tasks  2 (2 dev, 0 held out; 1 untestable, left out of runs)"))
      << show.text;

  auto run = Crucible("run --suite greet --agent builtin:noop --runners 1 --db " + db_);
  ASSERT_EQ(run.status, 0) << run.text;
  EXPECT_THAT(run.text, HasSubstr("left out 1 of 2 tasks: no FAIL_TO_PASS test")) << run.text;
  EXPECT_THAT(run.text, HasSubstr(Id(speedup))) << run.text;
  EXPECT_THAT(run.text, HasSubstr("--include-untestable")) << run.text;
  std::string run_id = RunId(run.text);
  ASSERT_FALSE(run_id.empty()) << run.text;
  auto report = Crucible("report " + run_id + " --format json --db " + db_);
  ASSERT_EQ(report.status, 0) << report.text;
  auto rows = nlohmann::json::parse(report.text);
  ASSERT_EQ(rows.size(), 1u) << report.text;
  EXPECT_EQ(rows[0]["attempts"], 1) << report.text;
  EXPECT_EQ(rows[0]["completed"], 0) << report.text;
  EXPECT_EQ(rows[0]["completion_rate"], 0.0) << report.text;
  EXPECT_EQ(rows[0]["untestable_attempts"], 0) << report.text;
  {
    auto store = storage::Store::Open(dir_.path() + "/db");
    ASSERT_TRUE(store);
    auto attempts = (*store)->ListAttempts(run_id);
    ASSERT_TRUE(attempts);
    ASSERT_EQ(attempts->size(), 1u);
    EXPECT_EQ((*attempts)[0].task_id(), Id(fix));
  }

  auto all = Crucible(
      "run --suite greet --agent builtin:noop --runners 1 --include-untestable "
      "--db " +
      db_);
  ASSERT_EQ(all.status, 0) << all.text;
  EXPECT_THAT(all.text, HasSubstr("not in the completion rate")) << all.text;
  auto all_report = Crucible("report " + RunId(all.text) + " --format json --db " + db_);
  ASSERT_EQ(all_report.status, 0) << all_report.text;
  auto all_rows = nlohmann::json::parse(all_report.text);
  ASSERT_EQ(all_rows.size(), 1u) << all_report.text;
  EXPECT_EQ(all_rows[0]["attempts"], 1) << all_report.text;
  EXPECT_EQ(all_rows[0]["completed"], 0) << all_report.text;
  EXPECT_EQ(all_rows[0]["completion_rate"], 0.0) << all_report.text;
  EXPECT_EQ(all_rows[0]["untestable_attempts"], 1) << all_report.text;
  EXPECT_EQ(all_rows[0]["untestable_completed"], 1) << all_report.text;
  auto table = Crucible("report " + RunId(all.text) + " --db " + db_);
  EXPECT_THAT(table.text, HasSubstr("not in the completion rate")) << table.text;
}

// A suite mined without regression tests (as an older crucible did) gets
// them from refresh; the config's review rules are stored in the suite.
TEST_F(SuiteCli, ConfigKeysAndRefreshAddsRegressionTests) {
  if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
  RefreshRepo r;
  const std::string merge = r.AddFeature(1);
  r.repo.Write("tests/tz.sh",
               "[ \"$(. lib/f0.sh; f0)\" = 0 ] && echo 'ok - f0 again' || echo 'not ok - f0 "
               "again'\n");
  r.repo.Commit("Test f0 again");
  const std::string config =
      Write("suite.yaml", R"(test_cmd: 'for t in tests/t*.sh; do sh "$t"; done'
results: tap
repeat: 1
regression_tests: none
review:
  allowed_paths: [NOTES.md]
  oversized: {factor: 3, min_extra_lines: 5}
  contained_files: 1
)");
  auto bad = Crucible("mine --repo " + ShellQuote(r.repo.path()) + " --suite x --config " +
                      ShellQuote(Write("bad.yaml", "regression_tests: all\n")) + " --db " + db_);
  EXPECT_EQ(bad.status, 1);
  EXPECT_THAT(bad.text, HasSubstr("bad.yaml:1:19: key 'regression_tests' must be newest or none"));

  auto mined = Crucible("mine --repo " + ShellQuote(r.repo.path()) + " --suite feats --config " +
                        ShellQuote(config) + " --db " + db_);
  ASSERT_EQ(mined.status, 0) << mined.text;
  EXPECT_THAT(mined.text, ::testing::Not(HasSubstr("regression tests:")));
  {
    auto store = storage::Store::Open(dir_.path() + "/db");
    ASSERT_TRUE(store) << store.error().message();
    auto suite = (*store)->GetSuite("feats");
    ASSERT_TRUE(suite);
    EXPECT_EQ(suite->regression_tests(), "none");
    EXPECT_THAT(suite->review().allowed_paths(), ::testing::ElementsAre("NOTES.md"));
    EXPECT_EQ(suite->review().oversized_factor(), 3.0);
    EXPECT_EQ(suite->review().oversized_min_extra_lines(), 5);
    EXPECT_EQ(suite->review().contained_files(), 1);
    auto tasks = (*store)->ListTasks("feats");
    ASSERT_TRUE(tasks);
    ASSERT_EQ(tasks->size(), 1u);
    EXPECT_TRUE((*tasks)[0].regression_commit().empty());
    // What a suite stored before regression tests existed looks like.
    suite->clear_regression_tests();
    ASSERT_TRUE((*store)->PutSuite(*suite, *tasks));
  }
  auto refreshed = Crucible("suite refresh feats --db " + db_);
  ASSERT_EQ(refreshed.status, 0) << refreshed.text;
  EXPECT_THAT(refreshed.text, HasSubstr("is up to date"));
  EXPECT_THAT(refreshed.text, HasSubstr("regression tests: 1 tasks, 1 tests")) << refreshed.text;
  auto show = Crucible("suite show feats --db " + db_);
  EXPECT_THAT(show.text, HasSubstr("regression tests (1, from ")) << show.text;
  EXPECT_THAT(show.text, HasSubstr("f0 again"));
  {
    auto store = storage::Store::Open(dir_.path() + "/db");
    ASSERT_TRUE(store);
    auto tasks = (*store)->ListTasks("feats");
    ASSERT_TRUE(tasks);
    ASSERT_EQ(tasks->size(), 1u);
    EXPECT_EQ((*tasks)[0].id(), Id(merge));
    EXPECT_THAT((*tasks)[0].regression_tests(), ::testing::ElementsAre("f0 again"));
    EXPECT_EQ((*store)->GetSuite("feats")->review().contained_files(), 1);
  }
  // Nothing left to compute: refresh says only that it is up to date.
  auto again = Crucible("suite refresh feats --db " + db_);
  ASSERT_EQ(again.status, 0) << again.text;
  EXPECT_THAT(again.text, ::testing::Not(HasSubstr("regression tests:")));
}

}  // namespace
}  // namespace crucible
