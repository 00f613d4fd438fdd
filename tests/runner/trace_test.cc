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

TEST(ParseTraceLine, TimestampsAndIdsOutOfRangeAreRejectedNotWrapped) {
  const char* out_of_range[] = {
      R"({"kind": "TOOL", "name": "x", "ts": 1e308})",
      R"({"kind": "TOOL", "name": "x", "ts": -1e308})",
      R"({"kind": "TOOL", "name": "x", "ts": 18446744073709551615})",
      R"({"kind": "TOOL", "name": "x", "ts": 9223372036854775808})",
      R"({"kind": "TOOL", "name": "x", "ts": -5})",
      R"({"kind": "TOOL", "name": "x", "ts": "9999-12-31T23:59:59Z"})",
      R"({"kind": "TOOL", "name": "x", "ts": "1900-01-01T00:00:00Z"})",
  };
  for (const char* line : out_of_range) {
    auto ev = ParseTraceLine(line, 0);
    ASSERT_FALSE(ev) << line << " stored as ts " << ev->ts_ns();
    EXPECT_NE(ev.error().message().find("out of range"), std::string::npos)
        << line << " -> " << ev.error().message();
  }
  auto max = ParseTraceLine(R"({"kind": "TOOL", "name": "x", "ts": 9223372036854775807})", 0);
  ASSERT_TRUE(max);
  EXPECT_EQ(max->ts_ns(), INT64_MAX);
  auto ids = ParseTraceLine(
      R"({"kind": "TOOL", "name": "x", "span_id": 18446744073709551615, "parent_id": -3})", 0);
  ASSERT_TRUE(ids) << ids.error().ToString();
  EXPECT_EQ(ids->span_id(), "18446744073709551615");
  EXPECT_EQ(ids->parent_id(), "-3");
}

TEST(TraceTailer, HandsOnLinesWithoutKeepingThem) {
  auto dir = TempDir::Create("crucible-trace-test-");
  ASSERT_TRUE(dir);
  const std::string path = dir->path() + "/trace.jsonl";
  // 4 MiB of empty lines, then a line cut over two reads.
  ASSERT_TRUE(WriteFile(path, std::string(4 << 20, '\n') + "{\"a\""));
  TraceTailer tailer(path);
  size_t lines = 0, empty = 0;
  std::string last;
  auto count = [&](std::string_view line) {
    ++lines;
    if (line.empty()) ++empty;
    last = line;
  };
  tailer.ReadNewLines(false, count);
  EXPECT_EQ(lines, size_t{4} << 20);
  EXPECT_EQ(empty, lines);
  std::ofstream(path, std::ios::app) << ":1}\n";
  tailer.ReadNewLines(false, count);
  EXPECT_EQ(last, "{\"a\":1}");
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
