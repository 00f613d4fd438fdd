// Packfiles between two real repositories: one built by git in the test, one
// bare cache that only ever receives packs (or a fetch from a file:// URL).
#include "vcs/pack.h"

#include <gtest/gtest.h>

#include "base/fs.h"
#include "tests/vcs/git_fixture.h"
#include "vcs/repo.h"

namespace crucible::vcs {
namespace {

using crucible::testing::GitRepo;

class PackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("crucible-pack-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    cache_ = dir_->path() + "/cache.git";
    ASSERT_TRUE(InitBareRepository(cache_));
  }

  GitRepo repo_;
  std::unique_ptr<TempDir> dir_;
  std::string cache_;
};

TEST_F(PackTest, IncrementalPacksCarryOnlyNewObjects) {
  repo_.Write("a.txt", "one\n");
  repo_.Write("src/b.txt", "two\n");
  std::string first = repo_.Commit("first");
  EXPECT_FALSE(*HasCommit(cache_, first));

  auto pack = BuildPack(repo_.path(), {first}, {});
  ASSERT_TRUE(pack) << pack.error().ToString();
  // commit, root tree, src tree, two blobs
  EXPECT_EQ(pack->objects, 5u);
  ASSERT_TRUE(IndexPack(cache_, pack->data));
  EXPECT_TRUE(*HasCommit(cache_, first));
  ASSERT_TRUE(MarkHeld(cache_, {first}));

  repo_.Write("a.txt", "one, changed\n");
  std::string second = repo_.Commit("second");
  auto held = HeldCommits(cache_);
  ASSERT_TRUE(held);
  EXPECT_EQ(*held, std::vector<std::string>{first});
  auto delta = BuildPack(repo_.path(), {second}, *held);
  ASSERT_TRUE(delta) << delta.error().ToString();
  // The new commit, its root tree and the changed blob; src/ is unchanged.
  EXPECT_EQ(delta->objects, 3u);
  EXPECT_LT(delta->data.size(), pack->data.size());
  ASSERT_TRUE(IndexPack(cache_, delta->data));
  EXPECT_TRUE(*HasCommit(cache_, second));

  // A workspace checked out from the cache alone has the new content.
  auto ws = Workspace::Create(cache_, second, dir_->path() + "/ws", dir_->path() + "/git");
  ASSERT_TRUE(ws) << ws.error().ToString();
  EXPECT_EQ(*ReadFile(dir_->path() + "/ws/a.txt"), "one, changed\n");
  EXPECT_EQ(*ReadFile(dir_->path() + "/ws/src/b.txt"), "two\n");
}

TEST_F(PackTest, UnknownHavesAreIgnoredAndUnknownWantsNamed) {
  repo_.Write("a.txt", "one\n");
  std::string first = repo_.Commit("first");
  auto pack = BuildPack(repo_.path(), {first}, {std::string(40, 'a')});
  ASSERT_TRUE(pack) << pack.error().ToString();
  EXPECT_EQ(pack->objects, 3u);
  auto missing = BuildPack(repo_.path(), {std::string(40, 'b')}, {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
  EXPECT_NE(missing.error().message().find(std::string(40, 'b')), std::string::npos)
      << missing.error().message();
  // The coordinator's widened request leaves out what it does not have.
  auto skipped = BuildPack(repo_.path(), {first, std::string(40, 'b')}, {}, /*skip_missing=*/true);
  ASSERT_TRUE(skipped) << skipped.error().ToString();
  EXPECT_EQ(skipped->objects, 3u);
  EXPECT_FALSE(BuildPack(repo_.path(), {std::string(40, 'b')}, {}, /*skip_missing=*/true));
}

TEST_F(PackTest, GarbageIsNotAPack) {
  auto st = IndexPack(cache_, "PACK but not really a packfile at all");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Code::kInvalidArgument);
  EXPECT_FALSE(IndexPack(cache_, "hello"));
}

TEST_F(PackTest, FetchFromAFileUrl) {
  repo_.Write("a.txt", "one\n");
  std::string first = repo_.Commit("first");
  ASSERT_TRUE(FetchFromUrl(cache_, "file://" + repo_.path()));
  EXPECT_TRUE(*HasCommit(cache_, first));
  auto bad = FetchFromUrl(cache_, "file://" + dir_->path() + "/no-such-repo");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("no-such-repo"), std::string::npos);
}

TEST(RepoIdTest, StableReadableAndPathSafe) {
  EXPECT_EQ(RepoId("/srv/repos/my app.git"), RepoId("/srv/repos/my app.git/"));
  EXPECT_TRUE(RepoId("/srv/repos/my app.git").starts_with("my_app-"));
  EXPECT_NE(RepoId("/a/app"), RepoId("/b/app"));
  EXPECT_EQ(RepoId("/a/app").find('/'), std::string::npos);
}

}  // namespace
}  // namespace crucible::vcs
