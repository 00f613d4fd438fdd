// The static checks on real git repositories: the diff is what `git diff`
// prints for a change, the final tree is the repository's working tree.
#include "scoring/static_check.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/vcs/git_fixture.h"

namespace crucible::scoring {
namespace {

using crucible::testing::GitRepo;

// The working tree's change against HEAD, parsed.
std::vector<vcs::DiffFile> WorkingDiff(GitRepo& repo) {
  repo.Git("add -A");
  auto files = vcs::ParseDiff(repo.Git("diff --cached"));
  EXPECT_TRUE(files) << files.error().ToString();
  return files ? *files : std::vector<vcs::DiffFile>();
}

std::vector<std::string> Refs(const v1::StaticFacts& f) {
  std::vector<std::string> out;
  for (const auto& r : f.stale_references()) {
    out.push_back(r.symbol() + "@" + r.file() + ":" + std::to_string(r.line()) + "<" +
                  r.defined_in());
  }
  return out;
}

std::vector<std::string> Imports(const v1::StaticFacts& f) {
  std::vector<std::string> out;
  for (const auto& i : f.broken_imports()) {
    out.push_back(i.name() + "@" + i.file() + ":" + std::to_string(i.line()));
  }
  return out;
}

constexpr char kPricing[] =
    "\"\"\"Prices.\"\"\"\n"
    "\n"
    "TAX = 0.2\n"
    "\n"
    "\n"
    "def calc_total(items):\n"
    "    return sum(items) * (1 + TAX)\n";

constexpr char kReport[] =
    "from pricing import calc_total\n"
    "\n"
    "\n"
    "def report(items):\n"
    "    # calc_total is the sum with tax\n"
    "    return \"total: %s\" % calc_total(items)\n";

class StaticCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_.Write("pricing.py", kPricing);
    repo_.Write("report.py", kReport);
    repo_.Commit("base");
  }

  v1::StaticFacts Check() { return CheckStatic(WorkingDiff(repo_), DirectoryTree(repo_.path())); }

  GitRepo repo_;
};

TEST_F(StaticCheckTest, RenameWithAStaleCallSiteIsFoundWithFileAndLine) {
  std::string renamed = kPricing;
  renamed.replace(renamed.find("calc_total"), 10, "compute_order_total");
  repo_.Write("pricing.py", renamed);
  auto facts = Check();
  EXPECT_EQ(facts.error(), "");
  // The comment on line 5 is no reference; the import and the call are.
  EXPECT_EQ(Refs(facts), (std::vector<std::string>{"calc_total@report.py:1<pricing.py",
                                                   "calc_total@report.py:6<pricing.py"}));
  EXPECT_TRUE(facts.broken_imports().empty()) << Imports(facts)[0];
  EXPECT_TRUE(facts.not_checked().empty());
}

TEST_F(StaticCheckTest, CleanRenameWithCallSitesUpdatedHasNoFinding) {
  std::string renamed = kPricing;
  renamed.replace(renamed.find("calc_total"), 10, "compute_order_total");
  repo_.Write("pricing.py", renamed);
  repo_.Write("report.py",
              "from pricing import compute_order_total\n"
              "\n"
              "\n"
              "def report(items):\n"
              "    \"\"\"Was calc_total(items) before.\n"
              "    calc_total is gone.\"\"\"\n"
              "    return 'calc_total: %s' % compute_order_total(items)\n");
  auto facts = Check();
  EXPECT_EQ(facts.error(), "");
  EXPECT_TRUE(facts.stale_references().empty()) << Refs(facts)[0];
  EXPECT_TRUE(facts.broken_imports().empty()) << Imports(facts)[0];
}

TEST_F(StaticCheckTest, RemovedModuleLevelNameAndMethodStillUsed) {
  repo_.Write("cart.py",
              "from pricing import TAX\n"
              "\n"
              "class Cart:\n"
              "    def size(self):\n"
              "        return 0\n"
              "\n"
              "def describe(c):\n"
              "    return c.size(), TAX\n");
  repo_.Commit("cart");
  repo_.Write("pricing.py",
              "\"\"\"Prices.\"\"\"\n\n\ndef calc_total(items):\n    return sum(items) * 1.2\n");
  repo_.Write("cart.py",
              "from pricing import TAX\n"
              "\n"
              "class Cart:\n"
              "    pass\n"
              "\n"
              "def describe(c):\n"
              "    return c.size(), TAX\n");
  auto facts = Check();
  EXPECT_EQ(Refs(facts),
            (std::vector<std::string>{"TAX@cart.py:1<pricing.py", "TAX@cart.py:7<pricing.py",
                                      "size@cart.py:7<cart.py"}));
}

TEST_F(StaticCheckTest, AddedPythonImportsThatDoNotResolve) {
  repo_.Write("requirements.txt", "PyYAML>=6\nrequests-toolbelt==1.0\n");
  repo_.Write("shop/__init__.py", "");
  repo_.Write("shop/util.py", "def helper():\n    return 1\n");
  repo_.Write("shop/orders.py", "X = 1\n");
  repo_.Commit("package");
  repo_.Write("shop/orders.py",
              "import json\n"                              // stdlib
              "import yaml\n"                              // PyYAML in requirements.txt
              "import requests_toolbelt.multipart\n"       // named in requirements.txt
              "import leftpad_nowhere\n"                   // 4: in no manifest
              "from pricing import calc_total, no_such\n"  // 5: no_such is not in pricing
              "import shop.missing\n"                      // 6: no such module
              "from .util import helper\n"                 // relative, resolves
              "from . import util, nothing_here\n"         // 8: nothing_here missing
              "from .gone import thing\n"                  // 9: no shop/gone.py
              "from shop.util import (\n"                  // 10
              "    helper,\n"                              //
              "    unhelpful,\n"                           // 12: not in shop/util.py
              ")\n"                                        //
              "try:\n"                                     //
              "    import ujson\n"                         // guarded: not checked
              "except ImportError:\n"                      //
              "    ujson = None\n"                         //
              "X = '''import not_code'''\n");              // a string, not an import
  auto facts = Check();
  EXPECT_EQ(facts.error(), "");
  EXPECT_EQ(Imports(facts),
            (std::vector<std::string>{
                "leftpad_nowhere@shop/orders.py:4", "pricing.no_such@shop/orders.py:5",
                "shop.missing@shop/orders.py:6", ".nothing_here@shop/orders.py:8",
                ".gone@shop/orders.py:9", "shop.util.unhelpful@shop/orders.py:12"}));
  for (const auto& i : facts.broken_imports()) EXPECT_FALSE(i.detail().empty()) << i.name();
  EXPECT_TRUE(facts.stale_references().empty()) << Refs(facts)[0];
}

TEST_F(StaticCheckTest, CRenameMacroRemovalAndBrokenIncludes) {
  repo_.Write("src/calc.h",
              "#pragma once\n#define MAX_ITEMS 10\nint calc_total(const int* items, int n);\n");
  repo_.Write("src/calc.c",
              "#include \"calc.h\"\n"
              "\n"
              "int calc_total(const int* items, int n) {\n"
              "  int t = 0;\n"
              "  for (int i = 0; i < n && i < MAX_ITEMS; ++i) t += items[i];\n"
              "  return t;\n"
              "}\n");
  repo_.Write("app/main.c",
              "#include <stdio.h>\n"
              "#include \"calc.h\"\n"
              "\n"
              "int main(void) {\n"
              "  int items[2] = {1, 2};\n"
              "  /* calc_total sums them */\n"
              "  printf(\"calc_total=%d\\n\", calc_total(items, 2));\n"
              "  return MAX_ITEMS;\n"
              "}\n");
  repo_.Commit("c");
  repo_.Write("src/calc.h", "#pragma once\nint compute_total(const int* items, int n);\n");
  repo_.Write("src/calc.c",
              "#include \"calc.h\"\n"
              "#include \"../src/calc.h\"\n"
              "#include \"nothere.h\"\n"
              "#include <also_nothere.h>\n"
              "\n"
              "int compute_total(const int* items, int n) {\n"
              "  int t = 0;\n"
              "  for (int i = 0; i < n; ++i) t += items[i];\n"
              "  return t;\n"
              "}\n");
  auto facts = Check();
  EXPECT_EQ(facts.error(), "");
  EXPECT_EQ(Refs(facts), (std::vector<std::string>{"MAX_ITEMS@app/main.c:8<src/calc.h",
                                                   "calc_total@app/main.c:7<src/calc.c"}));
  EXPECT_EQ(Imports(facts), (std::vector<std::string>{"nothere.h@src/calc.c:3"}));
}

TEST_F(StaticCheckTest, OtherLanguagesAreNotCheckedNotGuessed) {
  repo_.Write("main.go", "package main\n\nfunc calcTotal() int { return 1 }\n");
  repo_.Write("README.md", "calc_total\n");
  repo_.Commit("go");
  repo_.Write("main.go",
              "package main\n\nimport \"nowhere/pkg\"\n\nfunc other() int { return 1 }\n");
  repo_.Write("README.md", "compute\n");
  auto facts = Check();
  EXPECT_EQ(std::vector<std::string>(facts.not_checked().begin(), facts.not_checked().end()),
            (std::vector<std::string>{"README.md", "main.go"}));
  EXPECT_TRUE(facts.stale_references().empty());
  EXPECT_TRUE(facts.broken_imports().empty());
  EXPECT_EQ(facts.error(), "");
}

TEST_F(StaticCheckTest, SymlinksToHostFilesAreNeitherListedNorRead) {
  // A host file and directory outside the tree that would be findings if read.
  auto outside = TempDir::Create("crucible-static-outside-");
  ASSERT_TRUE(outside);
  const std::string host_file = outside->path() + "/host.py";
  ASSERT_TRUE(WriteFile(host_file, "from pricing import calc_total\ncalc_total([])\n"));
  ASSERT_TRUE(MakeDirs(outside->path() + "/pkg"));
  ASSERT_TRUE(WriteFile(outside->path() + "/pkg/inner.py", "calc_total([])\n"));
  std::filesystem::create_symlink(host_file, repo_.path() + "/leak.py");
  std::filesystem::create_directory_symlink(outside->path() + "/pkg", repo_.path() + "/pkg");
  Tree tree = DirectoryTree(repo_.path());
  EXPECT_EQ(tree.list(), (std::vector<std::string>{"pricing.py", "report.py"}));
  EXPECT_FALSE(tree.read("leak.py"));
  EXPECT_FALSE(tree.read("pkg/inner.py"));
  EXPECT_FALSE(
      tree.read("../" + std::filesystem::path(repo_.path()).filename().string() + "/pricing.py"));
  EXPECT_FALSE(tree.read("/etc/passwd"));
  EXPECT_TRUE(tree.read("pricing.py"));

  std::string renamed = kPricing;
  renamed.replace(renamed.find("calc_total"), 10, "compute_order_total");
  repo_.Write("pricing.py", renamed);
  repo_.Write("report.py", "def report(items):\n    return 0\n");
  auto files = WorkingDiff(repo_);  // git stages the symlinks as links
  auto facts = CheckStatic(files, DirectoryTree(repo_.path()));
  EXPECT_TRUE(facts.stale_references().empty()) << Refs(facts)[0];
}

TEST_F(StaticCheckTest, HugeLinesBinaryFilesAndUnterminatedStringsDoNotBreakIt) {
  std::string huge = "x = '" + std::string(900 * 1024, 'a') + " calc_total\n";
  repo_.Write("huge.py", huge);  // an unterminated string over one huge line
  repo_.Write("blob.py", std::string("calc_total\0\xff\xfe", 14) + std::string(4096, '\0'));
  repo_.Write("open.c", "/* never closed calc_total\n");
  repo_.Write("big.py", std::string(2 << 20, '#') + "\ncalc_total()\n");  // over 1 MiB
  repo_.Commit("odd files");
  std::string renamed = kPricing;
  renamed.replace(renamed.find("calc_total"), 10, "compute_order_total");
  repo_.Write("pricing.py", renamed);
  auto facts = Check();
  EXPECT_EQ(facts.error(), "");
  // Only report.py refers to it in code that can be read.
  EXPECT_EQ(Refs(facts), (std::vector<std::string>{"calc_total@report.py:1<pricing.py",
                                                   "calc_total@report.py:6<pricing.py"}));
  EXPECT_GE(facts.wall_us(), 0);
}

TEST_F(StaticCheckTest, ATreeOverTheFileCapIsAnError) {
  for (int i = 0; i < 5; ++i) repo_.Write("more/m" + std::to_string(i) + ".py", "y = 1\n");
  repo_.Commit("more");
  std::string renamed = kPricing;
  renamed.replace(renamed.find("calc_total"), 10, "compute_order_total");
  repo_.Write("pricing.py", renamed);
  auto facts = CheckStatic(WorkingDiff(repo_), DirectoryTree(repo_.path(), {.max_files = 3}));
  EXPECT_NE(facts.error().find("more than 3 files"), std::string::npos) << facts.error();
}

// Not a test: measures the checks on a large tree (docs/scoring.md). Run
// build/tests/scoring/static_check_test with CRUCIBLE_STATIC_BENCH_TREE=DIR,
// --gtest_also_run_disabled_tests and --gtest_filter='*Measure*'.
// It removes the definition of `names` (comma-separated, default "join") from
// the first Python file defining it, as a diff, and checks the tree.
TEST(StaticCheckBench, DISABLED_MeasureOnATree) {
  const char* dir = std::getenv("CRUCIBLE_STATIC_BENCH_TREE");
  if (dir == nullptr) GTEST_SKIP() << "CRUCIBLE_STATIC_BENCH_TREE is not set";
  const char* names_env = std::getenv("CRUCIBLE_STATIC_BENCH_NAMES");
  std::string names = names_env != nullptr ? names_env : "join";
  vcs::DiffFile file;
  file.path = file.old_path = "bench.py";
  vcs::DiffHunk hunk;
  size_t start = 0;
  int line = 0;
  while (start <= names.size()) {
    size_t comma = std::min(names.find(',', start), names.size());
    hunk.lines.push_back({.origin = '-',
                          .old_line = ++line,
                          .text = "def " + names.substr(start, comma - start) + "(a):"});
    start = comma + 1;
  }
  file.hunks.push_back(hunk);
  for (int round = 0; round < 3; ++round) {
    auto begin = std::chrono::steady_clock::now();
    Tree tree = DirectoryTree(dir);
    size_t listed = tree.list().size();
    auto facts = CheckStatic({file}, tree);
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - begin)
                  .count();
    std::printf("files %zu, references %d, wall_us %lld (check), %lld (list + check), %s\n", listed,
                facts.stale_references_size(), static_cast<long long>(facts.wall_us()),
                static_cast<long long>(us), facts.error().c_str());
  }
}

}  // namespace
}  // namespace crucible::scoring
