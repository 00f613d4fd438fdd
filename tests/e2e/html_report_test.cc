// The HTML report as a person would use it: `crucible demo` runs the sample
// repository's demo and writes its page, `crucible report RUN --html FILE`
// writes the same run's page, and html_report.mjs opens that in headless
// Chromium (Debian's chromium, driven by the pinned playwright-core) to check
// it against report/html.h's DOM contract: no console error, no network
// request, the headline, every agent's row, a task's diff beside the golden
// one, and a grid cell that leads to its attempt. The screenshot is left in
// the build tree (CRUCIBLE_HTML_SCREENSHOT) for docs/images/report.png.
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>

#include "base/fs.h"
#include "storage/store.h"
#include "tests/support/run_command.h"

namespace crucible {
namespace {

using testing::Crucible;
using testing::Quote;
using testing::Sh;
using Output = testing::CommandOutput;

// The demo mines the sample repository in the sandbox and runs three agents:
// minutes on a loaded machine.
constexpr std::chrono::seconds kDemoLimit{600};
// The browser's own deadline (html_report.mjs --deadline-s) and, later, the
// test's: whatever hangs, the node process group is killed.
constexpr int kBrowserDeadlineS = 150;
constexpr std::chrono::seconds kBrowserLimit{kBrowserDeadlineS + 30};

// The text between "run " and ':' of the line `crucible run` and the demo
// print when the run starts ("run r-...: 27 attempts ..."); "" without one.
std::string RunIdOf(const std::string& text) {
  auto pos = text.find("\nrun r");
  if (pos == std::string::npos) return "";
  pos += 5;
  auto colon = text.find(':', pos);
  return colon == std::string::npos ? "" : text.substr(pos, colon - pos);
}

// A line the diff adds, without its '+' and surrounding spaces: text the page
// must show for that diff. "" when the diff adds no line of substance.
std::string AddedLine(const std::string& diff) {
  size_t start = 0;
  while (start < diff.size()) {
    size_t end = diff.find('\n', start);
    if (end == std::string::npos) end = diff.size();
    std::string line = diff.substr(start, end - start);
    start = end + 1;
    if (line.size() < 2 || line[0] != '+' || line.starts_with("+++")) continue;
    auto first = line.find_first_not_of(" \t", 1);
    auto last = line.find_last_not_of(" \t\r");
    if (first == std::string::npos || last - first < 8) continue;
    return line.substr(first, last - first + 1);
  }
  return "";
}

// One test, as the demo takes minutes: `crucible demo` from a temporary
// directory (its page goes to the default ./crucible-demo-report.html), then
// `crucible report RUN --html` of its run opened in Chromium.
TEST(HtmlReportInBrowser, DemoRunsReportPageWorksInHeadlessChromium) {
  if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
  auto dir = TempDir::Create("crucible-html-e2e-");
  ASSERT_TRUE(dir);
  const std::string db = dir->path() + "/db";
  auto demo = Sh("cd " + Quote(dir->path()) + " && " + std::string(CRUCIBLE_BIN) +
                     " demo --runners 2 --db " + Quote(db),
                 kDemoLimit);
  ASSERT_EQ(demo.status, 0) << demo.text;

  // The demo wrote its page and ends by printing its path.
  const std::string demo_page =
      std::filesystem::canonical(dir->path()).string() + "/crucible-demo-report.html";
  auto html = ReadFile(demo_page);
  ASSERT_TRUE(html) << html.error().ToString() << "\n" << demo.text;
  EXPECT_TRUE(html->starts_with("<!DOCTYPE html>")) << html->substr(0, 200);
  std::string text = demo.text;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  EXPECT_EQ(text.substr(text.rfind('\n') + 1), "HTML report: " + demo_page) << demo.text;

  const std::string node = CRUCIBLE_NODE;
  const std::string chromium = CRUCIBLE_CHROMIUM;
  ASSERT_EQ(::access(chromium.c_str(), X_OK), 0)
      << "no Chromium at " << chromium << ": `make deps` installs Debian's chromium";
  // playwright-core 1.61 needs Node.js 18 or later.
  auto version = Sh(Quote(node) +
                        " -e 'process.exit(+process.versions.node.split(\".\")[0] >= 18 "
                        "? 0 : 1)'",
                    std::chrono::seconds(30));
  ASSERT_EQ(version.status, 0) << "the browser test needs Node.js 18 or later (" << node
                               << "): " << version.text;

  const std::string run_id = RunIdOf(demo.text);
  ASSERT_FALSE(run_id.empty()) << demo.text;
  // The run's agents, and a line of the oracle's diff: the oracle's attempt
  // section must show it in its diff and in the golden diff.
  std::set<std::string> agents;
  std::string diff_line;
  {
    auto store = storage::Store::Open(db, {.create_if_missing = false, .read_only = true});
    ASSERT_TRUE(store) << store.error().ToString();
    auto attempts = (*store)->ListAttempts(run_id);
    ASSERT_TRUE(attempts) << attempts.error().ToString();
    for (const auto& a : *attempts) {
      agents.insert(a.agent());
      if (a.agent() != "oracle" || !diff_line.empty()) continue;
      auto evidence = (*store)->GetEvidence(run_id, a.number());
      ASSERT_TRUE(evidence) << evidence.error().ToString();
      diff_line = AddedLine(evidence->final_diff());
    }
  }
  ASSERT_EQ(agents, (std::set<std::string>{"noop", "oracle", "rule-agent"}));
  ASSERT_FALSE(diff_line.empty()) << "the oracle's first attempt adds no line";
  std::string agent_list;
  for (const auto& a : agents) agent_list += (agent_list.empty() ? "" : ",") + a;

  const std::string page = dir->path() + "/report.html";
  auto report = Crucible("report " + run_id + " --html " + Quote(page) + " --db " + Quote(db));
  ASSERT_EQ(report.status, 0) << report.text;

  std::filesystem::remove(CRUCIBLE_HTML_SCREENSHOT);
  auto browser = Sh(
      Quote(node) + " " + Quote(std::string(CRUCIBLE_SOURCE_DIR) + "/tests/e2e/html_report.mjs") +
          " --npm-dir " + Quote(CRUCIBLE_NPM_DIR) + " --chromium " + Quote(chromium) + " --page " +
          Quote(page) + " --screenshot " + Quote(CRUCIBLE_HTML_SCREENSHOT) + " --agents " +
          Quote(agent_list) + " --agent-for-diff oracle --diff-line " + Quote(diff_line) +
          " --deadline-s " + std::to_string(kBrowserDeadlineS),
      kBrowserLimit);
  EXPECT_EQ(browser.status, 0) << browser.text;
  EXPECT_TRUE(std::filesystem::exists(CRUCIBLE_HTML_SCREENSHOT)) << browser.text;
  std::printf("%s", browser.text.c_str());
}

}  // namespace
}  // namespace crucible
