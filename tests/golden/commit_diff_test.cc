#include "golden/commit_diff.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/vcs/git_fixture.h"
#include "vcs/repo.h"

namespace crucible::golden::internal {
namespace {

using crucible::testing::GitRepo;

std::string Lines(int from, int to, const std::string& tag) {
  std::string s;
  for (int i = from; i < to; ++i) s += tag + " line " + std::to_string(i) + "\n";
  return s;
}

// The miner's differ limits libgit2's diff to the paths whose tree entries
// changed; every kind of change must come out exactly as vcs::DiffCommits
// (the whole-tree diff) reports it.
TEST(CommitDiffer, MatchesTheWholeTreeDiffForEveryKindOfChange) {
  GitRepo repo;
  std::vector<std::string> commits;
  repo.Write("src/a/one.py", Lines(0, 40, "one"));
  repo.Write("src/a/two.py", Lines(0, 40, "two"));
  repo.Write("src/b/three.py", Lines(0, 40, "three"));
  repo.Write("docs/readme.md", "hello\n");
  repo.Write("x", "a file that becomes a directory\n");
  repo.Write("tool.sh", "echo hi\n");
  commits.push_back(repo.Commit("root"));
  repo.Write("src/a/one.py", Lines(0, 41, "one"));  // a nested edit
  commits.push_back(repo.Commit("edit"));
  repo.Remove("src/a/two.py");  // a rename across directories
  repo.Write("src/c/deep/two.py", Lines(0, 40, "two"));
  commits.push_back(repo.Commit("rename"));
  repo.Remove("src/b/three.py");  // a rename with an edit, and a new file
  repo.Write("src/b/four.py", Lines(0, 39, "three") + "changed\n");
  repo.Write("src/b/new.py", "new\n");
  commits.push_back(repo.Commit("rename with edit"));
  repo.Write("assets/logo.bin", std::string("\x00\x01\x02\xff binary", 12));
  repo.Git("rm -rq docs");  // a deleted directory
  commits.push_back(repo.Commit("binary, deleted directory"));
  repo.Remove("x");  // a file becomes a directory
  repo.Write("x/inner.txt", "inside\n");
  repo.Git("update-index --chmod=+x tool.sh");
  commits.push_back(repo.Commit("typechange and mode"));
  repo.Git("update-index --add --cacheinfo 160000," + commits[0] + ",vendor/sub");
  repo.Git("commit -q -m submodule");
  commits.push_back(repo.Head());
  commits.push_back(repo.Commit("empty"));

  auto differ = CommitDiffer::Open(repo.path());
  ASSERT_TRUE(differ) << differ.error().ToString();
  for (size_t i = 1; i < commits.size(); ++i) {
    SCOPED_TRACE("commit " + std::to_string(i));
    auto want = vcs::DiffCommits(repo.path(), commits[i - 1], commits[i]);
    auto got = differ->Diff(commits[i - 1], commits[i]);
    ASSERT_TRUE(want) << want.error().ToString();
    ASSERT_TRUE(got) << got.error().ToString();
    ASSERT_EQ(got->size(), want->size());
    if (i < commits.size() - 1) {
      EXPECT_FALSE(got->empty());
    }
    for (size_t f = 0; f < want->size(); ++f) {
      const vcs::FilePatch& w = (*want)[f];
      const vcs::FilePatch& g = (*got)[f];
      EXPECT_EQ(g.path, w.path);
      EXPECT_EQ(g.old_path, w.old_path);
      EXPECT_EQ(g.status, w.status) << w.path;
      EXPECT_EQ(g.binary, w.binary) << w.path;
      EXPECT_EQ(g.submodule, w.submodule) << w.path;
      EXPECT_EQ(g.patch, w.patch);
    }
  }
  // The rename is found although only the changed paths are diffed.
  auto renamed = differ->Diff(commits[1], commits[2]);
  ASSERT_TRUE(renamed);
  ASSERT_EQ(renamed->size(), 1u);
  EXPECT_EQ((*renamed)[0].status, 'R');
  EXPECT_EQ((*renamed)[0].old_path, "src/a/two.py");
  EXPECT_EQ((*renamed)[0].path, "src/c/deep/two.py");
  // Across several commits too, and by an abbreviated id.
  auto span = differ->Diff(commits[0].substr(0, 12), commits[6]);
  auto whole = vcs::DiffCommits(repo.path(), commits[0], commits[6]);
  ASSERT_TRUE(span && whole);
  ASSERT_EQ(span->size(), whole->size());
  for (size_t f = 0; f < whole->size(); ++f) EXPECT_EQ((*span)[f].patch, (*whole)[f].patch);

  EXPECT_FALSE(differ->Diff(commits[0], std::string(40, 'f')));
  EXPECT_FALSE(CommitDiffer::Open(repo.path() + "/src"));
}

}  // namespace
}  // namespace crucible::golden::internal
