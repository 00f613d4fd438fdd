#include "vcs/repo.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "base/fs.h"
#include "tests/vcs/git_fixture.h"

namespace crucible::vcs {
namespace {

namespace fs = std::filesystem;
using crucible::testing::GitRepo;
using crucible::testing::ReadOrEmpty;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kBinary("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xfe", 18);

// main: c1 -- c2 ------- M
//          \            /
// feature:  f1 -- f2 --
struct MergeHistory {
  GitRepo repo;
  std::string c1, c2, f1, f2, merge;
  MergeHistory() {
    repo.Write("a.txt", "one\n");
    c1 = repo.Commit("first");
    repo.Git("checkout -q -b feature");
    repo.Write("b.txt", "feature 1\n");
    f1 = repo.Commit("feature step 1");
    repo.Write("b.txt", "feature 2\n");
    f2 = repo.Commit("feature step 2");
    repo.Git("checkout -q main");
    repo.Write("a.txt", "two\n");
    c2 = repo.Commit("second\n\nwith a body");
    merge = repo.Merge("feature", "Merge pull request #7 from dev/feature\n\nAdd b");
  }
};

TEST(FirstParentHistory, ListsTheFirstParentLineNewestFirst) {
  MergeHistory h;
  auto history = FirstParentHistory(h.repo.path());
  ASSERT_TRUE(history) << history.error().ToString();
  ASSERT_EQ(history->size(), 3u);
  const auto& m = (*history)[0];
  EXPECT_EQ(m.commit, h.merge);
  EXPECT_EQ(m.parent, h.c2);
  EXPECT_TRUE(m.is_merge);
  EXPECT_EQ(m.summary, "Merge pull request #7 from dev/feature");
  EXPECT_EQ(m.message, "Merge pull request #7 from dev/feature\n\nAdd b\n");
  EXPECT_EQ(m.time_ms, h.repo.last_time() * 1000);
  EXPECT_EQ((*history)[1].commit, h.c2);
  EXPECT_EQ((*history)[1].summary, "second");
  EXPECT_FALSE((*history)[1].is_merge);
  EXPECT_EQ((*history)[1].parent, h.c1);
  EXPECT_EQ((*history)[2].commit, h.c1);
  EXPECT_EQ((*history)[2].parent, "");
  for (const auto& c : *history) {
    EXPECT_NE(c.commit, h.f1);
    EXPECT_NE(c.commit, h.f2);
  }
}

TEST(FirstParentHistory, HonoursLimitAndRef) {
  MergeHistory h;
  auto limited = FirstParentHistory(h.repo.path(), "HEAD", 2);
  ASSERT_TRUE(limited);
  ASSERT_EQ(limited->size(), 2u);
  EXPECT_EQ((*limited)[1].commit, h.c2);

  auto feature = FirstParentHistory(h.repo.path(), "feature");
  ASSERT_TRUE(feature);
  ASSERT_EQ(feature->size(), 3u);
  EXPECT_EQ((*feature)[0].commit, h.f2);
  EXPECT_EQ((*feature)[1].commit, h.f1);
}

TEST(FirstParentHistory, RejectsADirectoryThatIsNotARepository) {
  auto dir = TempDir::Create("crucible-test-plain-");
  ASSERT_TRUE(dir);
  auto r = FirstParentHistory(dir->path());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kNotFound);
  EXPECT_EQ(r.error().message(), dir->path() + " is not a git repository");

  auto missing = FirstParentHistory(dir->path() + "/nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
  EXPECT_THAT(missing.error().message(), HasSubstr("is not a git repository"));
}

TEST(FirstParentHistory, DoesNotSearchParentDirectories) {
  MergeHistory h;
  fs::create_directories(h.repo.path() + "/sub");
  auto r = FirstParentHistory(h.repo.path() + "/sub");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kNotFound);
}

TEST(FirstParentHistory, OpensARepositoryOwnedByAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown the fixture";
  MergeHistory h;
  crucible::testing::Shell("chown -R 65534:65534 " + crucible::testing::ShellQuote(h.repo.path()));
  auto history = FirstParentHistory(h.repo.path());
  ASSERT_TRUE(history) << history.error().ToString();
  EXPECT_EQ(history->size(), 3u);
  auto dir = TempDir::Create("crucible-test-ws-");
  ASSERT_TRUE(dir);
  auto ws = Workspace::Create(h.repo.path(), h.merge, dir->path() + "/w", dir->path() + "/g");
  ASSERT_TRUE(ws) << ws.error().ToString();
}

TEST(FirstParentHistory, UnknownRefIsNotFound) {
  MergeHistory h;
  auto r = FirstParentHistory(h.repo.path(), "no-such-branch");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kNotFound);
  EXPECT_THAT(r.error().message(), HasSubstr("no-such-branch"));
  EXPECT_THAT(r.error().message(), HasSubstr(h.repo.path()));
}

TEST(FirstParentHistory, EmptyRepositoryIsNotFound) {
  GitRepo repo;
  auto r = FirstParentHistory(repo.path());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kNotFound);
}

TEST(DiffCommits, ReportsRenamesBinariesAndDeletions) {
  GitRepo repo;
  std::string body;
  for (int i = 0; i < 20; ++i) body += "line " + std::to_string(i) + "\n";
  repo.Write("src/old_name.py", body);
  repo.Write("keep.txt", "keep\n");
  repo.Write("gone.txt", "bye\n");
  std::string base = repo.Commit("base");
  repo.Git("mv src/old_name.py src/new_name.py");
  repo.Write("src/new_name.py", body + "one more\n");
  repo.Write("logo.png", kBinary);
  repo.Write("keep.txt", "kept\n");
  repo.Remove("gone.txt");
  std::string head = repo.Commit("change");

  auto files = DiffCommits(repo.path(), base, head);
  ASSERT_TRUE(files) << files.error().ToString();
  ASSERT_EQ(files->size(), 4u);
  std::map<std::string, FilePatch> by_path;
  for (const auto& f : *files) by_path[f.path] = f;

  const FilePatch& renamed = by_path.at("src/new_name.py");
  EXPECT_EQ(renamed.status, 'R');
  EXPECT_EQ(renamed.old_path, "src/old_name.py");
  EXPECT_FALSE(renamed.binary);
  EXPECT_THAT(renamed.patch, HasSubstr("diff --git a/src/old_name.py b/src/new_name.py"));
  EXPECT_THAT(renamed.patch, HasSubstr("rename from src/old_name.py"));
  EXPECT_THAT(renamed.patch, HasSubstr("+one more"));

  const FilePatch& logo = by_path.at("logo.png");
  EXPECT_EQ(logo.status, 'A');
  EXPECT_TRUE(logo.binary);
  EXPECT_THAT(logo.patch, HasSubstr("GIT binary patch"));

  EXPECT_EQ(by_path.at("keep.txt").status, 'M');
  EXPECT_EQ(by_path.at("keep.txt").old_path, "keep.txt");
  EXPECT_THAT(by_path.at("keep.txt").patch, HasSubstr("-keep\n+kept\n"));
  EXPECT_EQ(by_path.at("gone.txt").status, 'D');
  EXPECT_EQ(by_path.at("gone.txt").old_path, "gone.txt");

  // The joined patch takes the parent to the commit.
  auto ws_dir = TempDir::Create("crucible-test-ws-");
  ASSERT_TRUE(ws_dir);
  auto ws = Workspace::Create(repo.path(), base, ws_dir->path() + "/w", ws_dir->path() + "/g");
  ASSERT_TRUE(ws) << ws.error().ToString();
  ASSERT_TRUE((*ws)->Apply(JoinPatches(*files)));
  EXPECT_EQ(ReadOrEmpty(ws_dir->path() + "/w/src/new_name.py"), body + "one more\n");
  EXPECT_EQ(ReadOrEmpty(ws_dir->path() + "/w/logo.png"), kBinary);
  EXPECT_FALSE(fs::exists(ws_dir->path() + "/w/src/old_name.py"));
  EXPECT_FALSE(fs::exists(ws_dir->path() + "/w/gone.txt"));
}

TEST(DiffCommits, RootCommitDiffsAgainstTheEmptyTree) {
  GitRepo repo;
  repo.Write("a.txt", "a\n");
  std::string root = repo.Commit("root");
  auto files = DiffCommits(repo.path(), "", root);
  ASSERT_TRUE(files);
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].status, 'A');
}

TEST(DiffCommits, UnknownCommitIsNotFound) {
  GitRepo repo;
  repo.Write("a.txt", "a\n");
  std::string root = repo.Commit("root");
  auto r = DiffCommits(repo.path(), root, "0123456789012345678901234567890123456789");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kNotFound);
  EXPECT_THAT(r.error().message(), HasSubstr("0123456789012345678901234567890123456789"));
}

TEST(JoinPatches, ConcatenatesWithNewlines) {
  std::vector<FilePatch> files(2);
  files[0].patch = "first";
  files[1].patch = "second\n";
  EXPECT_EQ(JoinPatches(files), "first\nsecond\n");
  EXPECT_EQ(JoinPatches({}), "");
}

class WorkspaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_.Write("README.md", "# demo\n");
    repo_.Write("src/util.py", "def add(a, b):\n    return a - b\n");
    repo_.Write("src/other.py", "X = 1\n");
    repo_.Write("img/logo.png", kBinary);
    base_ = repo_.Commit("base");
    repo_.Write("README.md", "# demo\n\nlater history\n");
    later_ = repo_.Commit("later");
    auto dir = TempDir::Create("crucible-test-ws-");
    ASSERT_TRUE(dir);
    dir_ = std::move(*dir);
  }

  WorkspacePtr Make(const std::string& name) {
    auto ws = Workspace::Create(repo_.path(), base_, dir_.path() + "/" + name + "/work",
                                dir_.path() + "/" + name + "/git");
    EXPECT_TRUE(ws) << ws.error().ToString();
    return ws ? std::move(*ws) : nullptr;
  }

  std::string Work(const std::string& name) { return dir_.path() + "/" + name + "/work"; }

  GitRepo repo_;
  std::string base_, later_;
  TempDir dir_ = *TempDir::Create("crucible-test-unused-");
};

TEST_F(WorkspaceTest, ChecksOutTheCommitWithoutGitMetadata) {
  WorkspacePtr ws = Make("a");
  ASSERT_NE(ws, nullptr);
  EXPECT_EQ(ws->workdir(), Work("a"));
  EXPECT_EQ(ReadOrEmpty(Work("a") + "/README.md"), "# demo\n");
  EXPECT_EQ(ReadOrEmpty(Work("a") + "/src/util.py"), "def add(a, b):\n    return a - b\n");
  EXPECT_EQ(ReadOrEmpty(Work("a") + "/img/logo.png"), kBinary);
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(Work("a"))) {
    entries.push_back(e.path().filename().string());
  }
  std::sort(entries.begin(), entries.end());
  EXPECT_THAT(entries, ElementsAre("README.md", "img", "src"));
  // The gitdir borrows objects: no copies of the source's objects.
  EXPECT_TRUE(fs::exists(dir_.path() + "/a/git/objects/info/alternates"));

  auto diff = ws->Diff();
  ASSERT_TRUE(diff);
  EXPECT_EQ(*diff, "");
  auto changed = ws->ChangedFiles();
  ASSERT_TRUE(changed);
  EXPECT_TRUE(changed->empty());
}

TEST_F(WorkspaceTest, RefusesANonEmptyWorkdir) {
  fs::create_directories(Work("busy"));
  std::ofstream(Work("busy") + "/x") << "x";
  auto ws = Workspace::Create(repo_.path(), base_, Work("busy"), dir_.path() + "/busy/git");
  ASSERT_FALSE(ws);
  EXPECT_EQ(ws.error().code(), Code::kFailedPrecondition);
  EXPECT_THAT(ws.error().message(), HasSubstr(Work("busy")));
}

TEST_F(WorkspaceTest, UnknownCommitIsNotFound) {
  auto ws = Workspace::Create(repo_.path(), "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef", Work("x"),
                              dir_.path() + "/x/git");
  ASSERT_FALSE(ws);
  EXPECT_EQ(ws.error().code(), Code::kNotFound);
}

TEST_F(WorkspaceTest, NotARepositoryIsNotFound) {
  auto ws = Workspace::Create(dir_.path(), base_, Work("x"), dir_.path() + "/x/git");
  ASSERT_FALSE(ws);
  EXPECT_EQ(ws.error().code(), Code::kNotFound);
  EXPECT_EQ(ws.error().message(), dir_.path() + " is not a git repository");
}

TEST_F(WorkspaceTest, AppliesAGoodPatch) {
  WorkspacePtr ws = Make("a");
  ASSERT_NE(ws, nullptr);
  const std::string patch =
      "diff --git a/src/util.py b/src/util.py\n"
      "--- a/src/util.py\n"
      "+++ b/src/util.py\n"
      "@@ -1,2 +1,2 @@\n"
      " def add(a, b):\n"
      "-    return a - b\n"
      "+    return a + b\n"
      "diff --git a/src/new.py b/src/new.py\n"
      "new file mode 100644\n"
      "--- /dev/null\n"
      "+++ b/src/new.py\n"
      "@@ -0,0 +1 @@\n"
      "+NEW = True\n";
  auto status = ws->Apply(patch);
  ASSERT_TRUE(status) << status.error().ToString();
  EXPECT_EQ(ReadOrEmpty(Work("a") + "/src/util.py"), "def add(a, b):\n    return a + b\n");
  EXPECT_EQ(ReadOrEmpty(Work("a") + "/src/new.py"), "NEW = True\n");
  auto changed = ws->ChangedFiles();
  ASSERT_TRUE(changed);
  EXPECT_THAT(*changed, ElementsAre("src/new.py", "src/util.py"));
  EXPECT_TRUE(ws->Apply(""));
}

TEST_F(WorkspaceTest, ABadPatchNamesTheFileAndChangesNothing) {
  WorkspacePtr ws = Make("a");
  ASSERT_NE(ws, nullptr);
  // The first file applies, the second does not.
  const std::string patch =
      "diff --git a/src/util.py b/src/util.py\n"
      "--- a/src/util.py\n"
      "+++ b/src/util.py\n"
      "@@ -1,2 +1,2 @@\n"
      " def add(a, b):\n"
      "-    return a - b\n"
      "+    return a + b\n"
      "diff --git a/src/other.py b/src/other.py\n"
      "--- a/src/other.py\n"
      "+++ b/src/other.py\n"
      "@@ -1 +1 @@\n"
      "-X = 42\n"
      "+X = 43\n";
  auto status = ws->Apply(patch);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(status.error().message(), HasSubstr("src/other.py"));
  std::cerr << status.error().ToString() << "\n";
  EXPECT_EQ(ReadOrEmpty(Work("a") + "/src/util.py"), "def add(a, b):\n    return a - b\n");
  EXPECT_EQ(ReadOrEmpty(Work("a") + "/src/other.py"), "X = 1\n");
  auto diff = ws->Diff();
  ASSERT_TRUE(diff);
  EXPECT_EQ(*diff, "");

  auto missing = ws->Apply(
      "diff --git a/nope.py b/nope.py\n--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-a\n+b\n");
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message(), HasSubstr("nope.py"));

  auto garbage = ws->Apply("this is not a patch\n");
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code(), Code::kInvalidArgument);
}

TEST_F(WorkspaceTest, AppliesOnTopOfLocalEdits) {
  WorkspacePtr ws = Make("a");
  ASSERT_NE(ws, nullptr);
  std::ofstream(Work("a") + "/src/util.py")
      << "# edited by the agent\ndef add(a, b):\n    return a - b\n";
  std::ofstream(Work("a") + "/src/other.py") << "X = 2\n";
  const std::string patch =
      "diff --git a/src/util.py b/src/util.py\n"
      "--- a/src/util.py\n"
      "+++ b/src/util.py\n"
      "@@ -1,2 +1,2 @@\n"
      " def add(a, b):\n"
      "-    return a - b\n"
      "+    return a + b\n";
  auto status = ws->Apply(patch);
  ASSERT_TRUE(status) << status.error().ToString();
  EXPECT_EQ(ReadOrEmpty(Work("a") + "/src/util.py"),
            "# edited by the agent\ndef add(a, b):\n    return a + b\n");
  EXPECT_EQ(ReadOrEmpty(Work("a") + "/src/other.py"), "X = 2\n");
}

TEST_F(WorkspaceTest, NeverWritesThroughASymlinkInTheWorkdir) {
  WorkspacePtr ws = Make("a");
  ASSERT_NE(ws, nullptr);
  auto outside = TempDir::Create("crucible-test-outside-");
  ASSERT_TRUE(outside);
  std::ofstream(outside->path() + "/util.py") << "def add(a, b):\n    return a - b\n";
  fs::remove_all(Work("a") + "/src");
  fs::create_directory_symlink(outside->path(), Work("a") + "/src");

  auto modify = ws->Apply(
      "diff --git a/src/util.py b/src/util.py\n--- a/src/util.py\n+++ b/src/util.py\n"
      "@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n");
  ASSERT_FALSE(modify);
  EXPECT_EQ(modify.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(modify.error().message(), HasSubstr("src/util.py"));
  EXPECT_EQ(ReadOrEmpty(outside->path() + "/util.py"), "def add(a, b):\n    return a - b\n");

  auto create = ws->Apply(
      "diff --git a/src/evil.py b/src/evil.py\nnew file mode 100644\n--- /dev/null\n"
      "+++ b/src/evil.py\n@@ -0,0 +1 @@\n+EVIL = 1\n");
  ASSERT_FALSE(create);
  EXPECT_FALSE(fs::exists(outside->path() + "/evil.py"));
}

TEST_F(WorkspaceTest, DiffShowsEditsDeletionsAndNewFiles) {
  WorkspacePtr ws = Make("a");
  ASSERT_NE(ws, nullptr);
  std::ofstream(Work("a") + "/src/util.py") << "def add(a, b):\n    return a + b\n";
  fs::remove(Work("a") + "/src/other.py");
  fs::create_directories(Work("a") + "/pkg/deep");
  std::ofstream(Work("a") + "/pkg/deep/fresh.py") << "FRESH = 1\n";
  std::ofstream(Work("a") + "/data.bin", std::ios::binary) << kBinary;
  fs::create_directories(Work("a") + "/src/__pycache__");
  std::ofstream(Work("a") + "/src/__pycache__/util.cpython-311.pyc") << "junk";
  fs::create_directories(Work("a") + "/.pytest_cache");
  std::ofstream(Work("a") + "/.pytest_cache/README.md") << "junk";

  auto changed = ws->ChangedFiles();
  ASSERT_TRUE(changed) << changed.error().ToString();
  EXPECT_THAT(*changed,
              ElementsAre("data.bin", "pkg/deep/fresh.py", "src/other.py", "src/util.py"));

  auto diff = ws->Diff();
  ASSERT_TRUE(diff) << diff.error().ToString();
  EXPECT_THAT(*diff, HasSubstr("diff --git a/src/util.py b/src/util.py"));
  EXPECT_THAT(*diff, HasSubstr("+    return a + b"));
  EXPECT_THAT(*diff, HasSubstr("deleted file mode 100644"));
  EXPECT_THAT(*diff, HasSubstr("-X = 1"));
  EXPECT_THAT(*diff, HasSubstr("new file mode 100644"));
  EXPECT_THAT(*diff, HasSubstr("+FRESH = 1"));
  EXPECT_THAT(*diff, HasSubstr("GIT binary patch"));
  EXPECT_THAT(*diff, Not(HasSubstr("__pycache__")));
  EXPECT_THAT(*diff, Not(HasSubstr(".pytest_cache")));

  // The diff re-creates the same tree in a fresh workspace.
  WorkspacePtr other = Make("b");
  ASSERT_NE(other, nullptr);
  auto applied = other->Apply(*diff);
  ASSERT_TRUE(applied) << applied.error().ToString();
  EXPECT_EQ(ReadOrEmpty(Work("b") + "/src/util.py"), "def add(a, b):\n    return a + b\n");
  EXPECT_EQ(ReadOrEmpty(Work("b") + "/pkg/deep/fresh.py"), "FRESH = 1\n");
  EXPECT_EQ(ReadOrEmpty(Work("b") + "/data.bin"), kBinary);
  EXPECT_FALSE(fs::exists(Work("b") + "/src/other.py"));
  auto other_diff = other->Diff();
  ASSERT_TRUE(other_diff);
  EXPECT_EQ(*other_diff, *diff);
}

TEST_F(WorkspaceTest, RespectsTheRepositoryGitignore) {
  repo_.Write(".gitignore", "build/\n");
  std::string with_ignore = repo_.Commit("ignore build");
  auto ws = Workspace::Create(repo_.path(), with_ignore, Work("g"), dir_.path() + "/g/git");
  ASSERT_TRUE(ws);
  fs::create_directories(Work("g") + "/build");
  std::ofstream(Work("g") + "/build/out.o") << "obj";
  auto changed = (*ws)->ChangedFiles();
  ASSERT_TRUE(changed);
  EXPECT_TRUE(changed->empty());
}

TEST_F(WorkspaceTest, SkipsSpecialFiles) {
  WorkspacePtr ws = Make("a");
  ASSERT_NE(ws, nullptr);
  ASSERT_EQ(::mkfifo((Work("a") + "/pipe").c_str(), 0600), 0);
  auto changed = ws->ChangedFiles();
  ASSERT_TRUE(changed) << changed.error().ToString();
  EXPECT_TRUE(changed->empty());
}

}  // namespace
}  // namespace crucible::vcs

namespace crucible::vcs {
namespace {

TEST_F(WorkspaceTest, RestorePutsBaseFilesBackSoTheHiddenPatchApplies) {
  WorkspacePtr ws = Make("r");
  ASSERT_NE(ws, nullptr);
  // The hidden test patch edits src/other.py and adds src/test_new.py...
  const std::string hidden =
      "diff --git a/src/other.py b/src/other.py\n"
      "--- a/src/other.py\n"
      "+++ b/src/other.py\n"
      "@@ -1 +1 @@\n"
      "-X = 1\n"
      "+X = 2\n"
      "diff --git a/src/test_new.py b/src/test_new.py\n"
      "new file mode 100644\n"
      "--- /dev/null\n"
      "+++ b/src/test_new.py\n"
      "@@ -0,0 +1 @@\n"
      "+def test_x(): pass\n";
  // ...but the agent rewrote the one and wrote its own version of the other.
  std::ofstream(Work("r") + "/src/other.py") << "X = 'agent'\n";
  std::ofstream(Work("r") + "/src/test_new.py") << "agent's test\n";
  ASSERT_FALSE(ws->Apply(hidden));

  auto paths = PatchPaths(hidden);
  ASSERT_TRUE(paths) << paths.error().ToString();
  EXPECT_THAT(*paths, ElementsAre("src/other.py", "src/test_new.py"));
  ASSERT_TRUE(ws->Restore(*paths));
  EXPECT_EQ(ReadOrEmpty(Work("r") + "/src/other.py"), "X = 1\n");
  EXPECT_FALSE(fs::exists(Work("r") + "/src/test_new.py"));
  auto applied = ws->Apply(hidden);
  ASSERT_TRUE(applied) << applied.error().ToString();
  EXPECT_EQ(ReadOrEmpty(Work("r") + "/src/other.py"), "X = 2\n");
}

TEST_F(WorkspaceTest, RestoreNeverWritesThroughAPlantedSymlink) {
  WorkspacePtr ws = Make("s");
  ASSERT_NE(ws, nullptr);
  auto outside = TempDir::Create("crucible-test-outside-");
  ASSERT_TRUE(outside);
  // The agent replaces src/ with a link to a host directory.
  fs::remove_all(Work("s") + "/src");
  fs::create_directory_symlink(outside->path(), Work("s") + "/src");
  auto st = ws->Restore({"src/other.py"});
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr("src/other.py"));
  EXPECT_FALSE(fs::exists(outside->path() + "/other.py"));
  // A link at the path itself is replaced by the base file, not followed.
  fs::remove(Work("s") + "/src");
  fs::create_directory(Work("s") + "/src");
  std::string target = outside->path() + "/victim";
  std::ofstream(target) << "host data\n";
  fs::create_symlink(target, Work("s") + "/src/other.py");
  ASSERT_TRUE(ws->Restore({"src/other.py"}));
  EXPECT_EQ(ReadOrEmpty(target), "host data\n");
  EXPECT_FALSE(fs::is_symlink(Work("s") + "/src/other.py"));
  EXPECT_EQ(ReadOrEmpty(Work("s") + "/src/other.py"), "X = 1\n");
}

// The agent (root in the sandbox) plants links at every name the runner
// writes after it: the restored file, any temporary name next to it, and the
// hidden tests. A host file they point at keeps its content and mode.
TEST_F(WorkspaceTest, RestoreAndApplyNeverFollowPlantedLinksToAHostFile) {
  WorkspacePtr ws = Make("t");
  ASSERT_NE(ws, nullptr);
  auto outside = TempDir::Create("crucible-test-outside-");
  ASSERT_TRUE(outside);
  const std::string victim = outside->path() + "/victim";
  std::ofstream(victim) << "host secret\n";
  ASSERT_EQ(::chmod(victim.c_str(), 0600), 0);

  const std::string src = Work("t") + "/src";
  auto plant = [&](const std::string& path) {
    fs::remove(path);
    ASSERT_EQ(::symlink(victim.c_str(), path.c_str()), 0) << path;
  };
  plant(src + "/other.py");
  plant(src + "/test_hidden.py");
  // Temporary names a writer might pick: ".tmp.<pid>" over the usual pid
  // range, and this process's own pid whatever it is.
  for (int pid = 1; pid <= 32768; ++pid) {
    ASSERT_EQ(::symlink(victim.c_str(), (src + "/other.py.tmp." + std::to_string(pid)).c_str()), 0);
  }
  const std::string own = src + "/other.py.tmp." + std::to_string(::getpid());
  if (::getpid() > 32768) plant(own);

  const std::string hidden =
      "diff --git a/src/other.py b/src/other.py\n"
      "--- a/src/other.py\n"
      "+++ b/src/other.py\n"
      "@@ -1 +1 @@\n"
      "-X = 1\n"
      "+X = 2\n"
      "diff --git a/src/test_hidden.py b/src/test_hidden.py\n"
      "new file mode 100644\n"
      "--- /dev/null\n"
      "+++ b/src/test_hidden.py\n"
      "@@ -0,0 +1 @@\n"
      "+def test_hidden(): pass\n";
  auto unchanged = [&] {
    EXPECT_EQ(ReadOrEmpty(victim), "host secret\n");
    struct stat st;
    ASSERT_EQ(::stat(victim.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
  };
  // Applied over the links, the patch is refused.
  EXPECT_FALSE(ws->Apply(hidden));
  unchanged();

  auto paths = PatchPaths(hidden);
  ASSERT_TRUE(paths) << paths.error().ToString();
  auto restored = ws->Restore(*paths);
  ASSERT_TRUE(restored) << restored.error().ToString();
  unchanged();
  EXPECT_FALSE(fs::is_symlink(src + "/other.py"));
  EXPECT_EQ(ReadOrEmpty(src + "/other.py"), "X = 1\n");
  struct stat st;
  ASSERT_EQ(::lstat((src + "/other.py").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);

  auto applied = ws->Apply(hidden);
  ASSERT_TRUE(applied) << applied.error().ToString();
  unchanged();
  EXPECT_EQ(ReadOrEmpty(src + "/other.py"), "X = 2\n");
  EXPECT_EQ(ReadOrEmpty(src + "/test_hidden.py"), "def test_hidden(): pass\n");
}

}  // namespace
}  // namespace crucible::vcs
