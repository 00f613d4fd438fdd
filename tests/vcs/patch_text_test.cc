#include "vcs/patch_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "base/fs.h"

namespace crucible::vcs::internal {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

FileReader MapReader(std::map<std::string, std::string> files) {
  return [files = std::move(files)](const std::string& path) -> std::optional<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return std::nullopt;
    return it->second;
  };
}

const char kPatch[] =
    "diff --git a/f.py b/f.py\n"
    "--- a/f.py\n"
    "+++ b/f.py\n"
    "@@ -2,3 +2,3 @@ def f():\n"
    " b\n"
    "-c\n"
    "+C\n"
    " d\n"
    "@@ -8,2 +8,3 @@\n"
    " h\n"
    "+h2\n"
    " i\n";

const char kOriginal[] = "a\nb\nc\nd\ne\nf\ng\nh\ni\n";

TEST(RelocateHunks, LeavesAPatchThatFitsUnchanged) {
  EXPECT_EQ(RelocateHunks(kPatch, MapReader({{"f.py", kOriginal}})), kPatch);
}

TEST(RelocateHunks, MovesHunksToWhereTheirContextIsNow) {
  // Two lines inserted at the top: both hunks move down by two.
  std::string moved =
      RelocateHunks(kPatch, MapReader({{"f.py", std::string("x\ny\n") + kOriginal}}));
  EXPECT_THAT(moved, HasSubstr("@@ -4,3 +4,3 @@ def f():\n b\n-c\n+C\n d\n"));
  EXPECT_THAT(moved, HasSubstr("@@ -10,2 +10,3 @@\n h\n+h2\n i\n"));

  // One line removed above the second hunk only.
  moved = RelocateHunks(kPatch, MapReader({{"f.py", "a\nb\nc\nd\ne\ng\nh\ni\n"}}));
  EXPECT_THAT(moved, HasSubstr("@@ -2,3 +2,3 @@ def f():\n"));
  EXPECT_THAT(moved, HasSubstr("@@ -7,2 +7,3 @@\n"));
}

TEST(RelocateHunks, LeavesHunksItCannotPlace) {
  EXPECT_EQ(RelocateHunks(kPatch, MapReader({{"f.py", "nothing alike\n"}})), kPatch);
  EXPECT_EQ(RelocateHunks(kPatch, MapReader({})), kPatch);
}

TEST(RelocateHunks, PassesNewFilesAndBinaryPatchesThrough) {
  const std::string patch =
      "diff --git a/new.txt b/new.txt\n"
      "new file mode 100644\n"
      "--- /dev/null\n"
      "+++ b/new.txt\n"
      "@@ -0,0 +1 @@\n"
      "+hello\n"
      "diff --git a/b.bin b/b.bin\n"
      "new file mode 100644\n"
      "GIT binary patch\n"
      "literal 3\n"
      "KcmZQzXaE2J00IC2\n"
      "\n"
      "literal 0\n"
      "HcmV?d00001\n";
  EXPECT_EQ(RelocateHunks(patch, MapReader({})), patch);
}

TEST(RelocateHunks, HandlesMissingFinalNewline) {
  const std::string patch =
      "diff --git a/f b/f\n"
      "--- a/f\n"
      "+++ b/f\n"
      "@@ -1,2 +1,2 @@\n"
      " one\n"
      "-two\n"
      "\\ No newline at end of file\n"
      "+TWO\n"
      "\\ No newline at end of file\n";
  std::string moved = RelocateHunks(patch, MapReader({{"f", "zero\none\ntwo"}}));
  EXPECT_THAT(moved, HasSubstr("@@ -2,2 +2,2 @@\n one\n-two\n\\ No newline at end of file\n"));
}

TEST(RelocateHunks, SurvivesMangledPatches) {
  const std::string patch = kPatch;
  const FileReader reader = MapReader({{"f.py", std::string("x\n") + kOriginal}});
  uint32_t state = 12345;
  auto next = [&] { return state = state * 1103515245u + 12345u; };
  for (int round = 0; round < 3000; ++round) {
    std::string mangled = patch.substr(0, next() % (patch.size() + 1));
    for (int k = next() % 4; k > 0 && !mangled.empty(); --k) {
      mangled[next() % mangled.size()] = "@-+ \n,0123456789\\"[next() % 17];
    }
    (void)RelocateHunks(mangled, reader);
  }
  (void)RelocateHunks("@@ -99999999999999999999,1 +1 @@\n-x\n", reader);
  (void)RelocateHunks("--- a/f.py\n@@ -1099511627776,1 +1099511627776,1 @@\n-x\n+y\n", reader);
}

TEST(CheckPathInside, RejectsEscapesAndSymlinks) {
  auto dir = TempDir::Create("crucible-test-paths-");
  ASSERT_TRUE(dir);
  auto outside = TempDir::Create("crucible-test-outside-");
  ASSERT_TRUE(outside);
  fs::create_directories(dir->path() + "/real");
  std::ofstream(dir->path() + "/real/file") << "x";
  fs::create_directory_symlink(outside->path(), dir->path() + "/sneaky");
  fs::create_symlink("/etc/hostname", dir->path() + "/real/link");

  EXPECT_TRUE(CheckPathInside(dir->path(), "real/file", false));
  EXPECT_TRUE(CheckPathInside(dir->path(), "real/new/deeper", false));
  EXPECT_TRUE(CheckPathInside(dir->path(), "real/link", true));

  for (const char* bad : {"", "/etc/passwd", "../x", "real/../../x", "real//file", "./real"}) {
    auto s = CheckPathInside(dir->path(), bad, false);
    EXPECT_FALSE(s) << bad;
    if (!s) {
      EXPECT_EQ(s.error().code(), Code::kInvalidArgument);
    }
  }
  auto through = CheckPathInside(dir->path(), "sneaky/evil.py", false);
  ASSERT_FALSE(through);
  EXPECT_THAT(through.error().message(), HasSubstr("sneaky/evil.py"));
  EXPECT_THAT(through.error().message(), HasSubstr("symbolic link"));
  EXPECT_FALSE(CheckPathInside(dir->path(), "real/link", false));
}

}  // namespace
}  // namespace crucible::vcs::internal
