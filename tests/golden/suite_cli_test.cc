// `crucible mine --config` and the `crucible suite` commands, through the
// real binary.
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

#include "base/fs.h"
#include "tests/support/run_command.h"
#include "tests/vcs/git_fixture.h"

namespace crucible {
namespace {

using crucible::testing::GitRepo;
using crucible::testing::ShellQuote;
using ::testing::HasSubstr;

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

}  // namespace
}  // namespace crucible
