#include "agent-runner/trace.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "base/fs.h"

namespace crucible::runner {
namespace {

TEST(ParseTraceLine, AcceptsTheContractExample) {
  auto ev = ParseTraceLine(
      R"({"ts": 1700000000000000000, "kind": "TOOL", "name": "edit_file", "span_id": "s2",)"
      R"( "parent_id": 1, "attrs": {"path": "pkg/a.py", "files": ["pkg/a.py"]}})",
      5);
  ASSERT_TRUE(ev) << ev.error().ToString();
  EXPECT_EQ(ev->ts_ns(), 1700000000000000000);
  EXPECT_EQ(ev->kind(), "TOOL");
  EXPECT_EQ(ev->name(), "edit_file");
  EXPECT_EQ(ev->span_id(), "s2");
  EXPECT_EQ(ev->parent_id(), "1");
  EXPECT_EQ(ev->source(), "agent");
  auto attrs = nlohmann::json::parse(ev->attrs_json());
  EXPECT_EQ(attrs["path"], "pkg/a.py");
}

TEST(ParseTraceLine, TimestampDefaultsToNowAndAcceptsRfc3339) {
  auto ev = ParseTraceLine(R"({"kind": "agent", "name": "plan"})", 42);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->ts_ns(), 42);
  EXPECT_EQ(ev->kind(), "AGENT");
  auto rfc =
      ParseTraceLine(R"({"ts": "2026-11-21T18:05:53.5Z", "kind": "LLM", "name": "llm_call"})", 0);
  ASSERT_TRUE(rfc) << rfc.error().ToString();
  EXPECT_EQ(rfc->ts_ns(), 1795284353500000000);
  auto offset = ParseRfc3339("2026-11-21T20:05:53.5+02:00");
  ASSERT_TRUE(offset);
  EXPECT_EQ(*offset, 1795284353500000000);
}

TEST(ParseTraceLine, GarbageIsRejectedWithTheReason) {
  struct Case {
    const char* line;
    const char* reason;
  } cases[] = {
      {"hello world", "not JSON"},
      {"[1,2]", "not a JSON object"},
      {R"({"name": "plan"})", "kind"},
      {R"({"kind": "HACK", "name": "plan"})", "not one of"},
      {R"({"kind": "TOOL"})", "name"},
      {R"({"kind": "TOOL", "name": "x", "ts": "yesterday"})", "RFC 3339"},
      {R"({"kind": "TOOL", "name": "x", "attrs": [1]})", "attrs"},
      {R"({"kind": "TOOL", "name": "x", "span_id": {"a": 1}})", "span_id"},
  };
  for (const auto& c : cases) {
    auto ev = ParseTraceLine(c.line, 0);
    ASSERT_FALSE(ev) << c.line;
    EXPECT_NE(ev.error().message().find(c.reason), std::string::npos)
        << c.line << " -> " << ev.error().message();
  }
  std::string huge = R"({"kind": "TOOL", "name": ")" + std::string(kMaxTraceLineBytes, 'x') + "\"}";
  EXPECT_FALSE(ParseTraceLine(huge, 0));
}

TEST(TraceTailer, ReturnsOnlyCompleteNewLines) {
  auto dir = TempDir::Create("crucible-trace-test-");
  ASSERT_TRUE(dir);
  std::string path = dir->path() + "/trace.jsonl";
  TraceTailer tailer(path);
  EXPECT_TRUE(tailer.ReadNewLines().empty());  // not created yet

  std::ofstream out(path);
  out << "one\ntw" << std::flush;
  auto lines = tailer.ReadNewLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "one");
  out << "o\nthree" << std::flush;
  lines = tailer.ReadNewLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "two");
  lines = tailer.ReadNewLines(/*final=*/true);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "three");
}

TEST(TraceTailer, OverlongLineIsCutAndTheNextLineSurvives) {
  auto dir = TempDir::Create("crucible-trace-test-");
  ASSERT_TRUE(dir);
  std::string path = dir->path() + "/trace.jsonl";
  {
    std::ofstream out(path);
    out << std::string(3 * kMaxTraceLineBytes, 'x') << "\nafter\n";
  }
  TraceTailer tailer(path);
  auto lines = tailer.ReadNewLines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_GT(lines[0].size(), kMaxTraceLineBytes);
  EXPECT_FALSE(ParseTraceLine(lines[0], 0));
  EXPECT_EQ(lines[1], "after");
}

TEST(TraceTailer, RefusesSymlinksAndFifos) {
  auto dir = TempDir::Create("crucible-trace-test-");
  ASSERT_TRUE(dir);
  std::string secret = dir->path() + "/secret";
  ASSERT_TRUE(WriteFile(secret, "host secret\n"));
  std::string link = dir->path() + "/trace.jsonl";
  ASSERT_EQ(::symlink(secret.c_str(), link.c_str()), 0);
  EXPECT_TRUE(TraceTailer(link).ReadNewLines(true).empty());

  std::string fifo = dir->path() + "/fifo.jsonl";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_TRUE(TraceTailer(fifo).ReadNewLines(true).empty());  // and does not block
}

}  // namespace
}  // namespace crucible::runner
