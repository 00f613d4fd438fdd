// `crucible review` through the real binary, on a run written with the store
// API into a real RocksDB database: one verdict, imports (good and bad CSV,
// JSONL, RFC 4180 quoting), refusals, and the interactive walk driven through
// a pseudo-terminal.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "storage/store.h"
#include "tests/support/run_command.h"
#include "tests/support/timed_wait.h"

namespace crucible {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::Quote;
using testing::Sh;

class ReviewCommandTest : public ::testing::Test {
 protected:
  // Run r1 of suite s: attempts 0-4 finished (0 with a 250-line diff, 2 with a
  // violation and a failing test), 5 queued, 6 failed for infrastructure
  // reasons.
  void SetUp() override {
    auto tmp = TempDir::Create("crucible-review-test-");
    ASSERT_TRUE(tmp);
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
    db_ = tmp_->path() + "/db";
    auto store = storage::Store::Open(db_);
    ASSERT_TRUE(store) << store.error().ToString();
    v1::Suite suite;
    suite.set_name("s");
    std::vector<v1::GoldenTask> tasks;
    for (int i = 0; i < 7; ++i) {
      v1::GoldenTask t;
      t.set_id("t-" + std::to_string(i));
      t.set_intent("Fix the slug of task " + std::to_string(i) + "\nsecond line of the intent");
      tasks.push_back(t);
    }
    ASSERT_TRUE((*store)->PutSuite(suite, tasks));
    v1::Run run;
    run.set_id("r1");
    run.set_suite("s");
    run.add_agents()->set_name("alpha");
    run.add_agents()->set_name("beta");
    run.set_attempt_count(7);
    std::vector<v1::Attempt> attempts;
    for (int i = 0; i < 7; ++i) {
      v1::Attempt a;
      a.set_run_id("r1");
      a.set_number(i);
      a.set_task_id("t-" + std::to_string(i));
      a.set_agent(i % 2 ? "beta" : "alpha");
      a.set_state(v1::Attempt::QUEUED);
      attempts.push_back(a);
    }
    ASSERT_TRUE((*store)->CreateRun(run, attempts));
    for (int i = 0; i < 5; ++i) {
      v1::Attempt a = attempts[i];
      a.set_state(v1::Attempt::DONE);
      v1::Evidence e;
      std::string diff = "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n";
      const int lines = i == 0 ? 250 : 2;
      for (int l = 0; l < lines; ++l) diff += "+added line " + std::to_string(l) + "\n";
      e.set_final_diff(diff);
      v1::Score s;
      s.set_scoring_version(2);
      s.set_completed(i != 2);
      s.set_strict_completed(i == 0 || i == 4);
      if (i == 2) {
        auto* v = s.add_violations();
        v->set_kind("out_of_scope");
        v->set_file("README.md");
        v->set_line(3);
        v->set_detail("README.md is outside the task's scope");
        auto* t = e.mutable_tests()->add_tests();
        t->set_id("tests.test_slug::test_unicode");
        t->set_status(v1::TestOutcome::FAILED);
        s.add_failure_modes("instruction-drift");
      }
      ASSERT_TRUE((*store)->FinishAttempt(a, e, s));
    }
    v1::Attempt failed = attempts[6];
    failed.set_state(v1::Attempt::FAILED);
    failed.set_error("runner lost");
    ASSERT_TRUE((*store)->UpdateAttempt(failed));
  }

  // The run's stored verdicts, read beside nothing (the binary has exited).
  std::vector<v1::Verdict> Verdicts() {
    auto store = storage::Store::Open(db_);
    EXPECT_TRUE(store) << store.error().ToString();
    if (!store) return {};
    auto got = (*store)->ListVerdicts("r1");
    EXPECT_TRUE(got) << got.error().ToString();
    return got ? *got : std::vector<v1::Verdict>{};
  }

  void StoreVerdict(uint64_t attempt, const std::string& verdict) {
    auto store = storage::Store::Open(db_);
    ASSERT_TRUE(store) << store.error().ToString();
    v1::Verdict v;
    v.set_run_id("r1");
    v.set_attempt(attempt);
    v.set_verdict(verdict);
    v.set_reviewer("earlier");
    ASSERT_TRUE((*store)->AddVerdicts({v}));
  }

  testing::CommandOutput Review(const std::string& args, const std::string& env = "") {
    return Sh("env -u CRUCIBLE_REVIEWER USER=tester " + env + " " + std::string(CRUCIBLE_BIN) +
              " review " + args + " --db " + Quote(db_));
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = tmp_->path() + "/" + name;
    EXPECT_TRUE(WriteFile(path, text));
    return path;
  }

  std::unique_ptr<TempDir> tmp_;
  std::string db_;
};

TEST_F(ReviewCommandTest, AVerdictIsStoredAndTheLatestCountsInTheReport) {
  auto first = Review(
      "r1 2 --verdict reject --tag scope-creep --tag=-instruction-drift --note "
      "'touches README' --reviewer ana");
  ASSERT_EQ(first.status, 0) << first.text;
  EXPECT_THAT(first.text, HasSubstr("stored reject for attempt 2 of run 'r1' by ana"));
  // RUN/NUMBER works too; the reviewer comes from the environment.
  auto second = Review("r1 r1/2 --verdict accept", "CRUCIBLE_REVIEWER=bo");
  ASSERT_EQ(second.status, 0) << second.text;
  auto third = Review("r1 4 --verdict needs-changes");
  ASSERT_EQ(third.status, 0) << third.text;

  auto stored = Verdicts();
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_EQ(stored[0].verdict(), "reject");
  EXPECT_THAT(stored[0].tags(), ElementsAre("scope-creep", "-instruction-drift"));
  EXPECT_EQ(stored[0].note(), "touches README");
  EXPECT_EQ(stored[0].reviewer(), "ana");
  EXPECT_EQ(stored[0].source(), "cli");
  EXPECT_GT(stored[0].at_ms(), 0);
  EXPECT_EQ(stored[1].reviewer(), "bo");
  EXPECT_EQ(stored[2].reviewer(), "tester");  // $USER

  auto by_attempt = testing::Crucible("report r1 --by attempt --format json --db " + Quote(db_));
  ASSERT_EQ(by_attempt.status, 0) << by_attempt.text;
  auto json = nlohmann::json::parse(by_attempt.text);
  EXPECT_EQ(json[2]["verdict"], "accept");  // the latest of two
  EXPECT_EQ(json[2]["verdict_reviewer"], "bo");
  EXPECT_EQ(json[4]["verdict"], "needs-changes");
  EXPECT_TRUE(json[0]["verdict"].is_null());
  auto table = testing::Crucible("report r1 --db " + Quote(db_));
  ASSERT_EQ(table.status, 0) << table.text;
  EXPECT_THAT(table.text, HasSubstr("review-bar gap"));
}

TEST_F(ReviewCommandTest, RefusalsAreOneClearLineAndStoreNothing) {
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {"r1 99 --verdict accept", "run 'r1' has no attempt 99 (its attempts are numbered 0 to 6)"},
      {"nope 1 --verdict accept", "run 'nope' not found"},
      {"r1 5 --verdict accept", "attempt 5 of run 'r1' is queued: it has not finished yet"},
      {"r1 6 --verdict reject", "attempt 6 of run 'r1' failed for infrastructure reasons"},
      {"r1 1 --verdict maybe", "verdict 'maybe' is not accept, reject or needs-changes"},
      {"r1 1 --verdict accept --tag Scope_Creep", "tag 'Scope_Creep' is neither a failure mode"},
      {"r1 other/1 --verdict accept", "attempt 'other/1' is of run 'other', not of run 'r1'"},
      {"r1 x --verdict accept", "attempt 'x' is not a number or RUN/NUMBER"},
      {"r1 1", "--verdict accept|reject|needs-changes is missing"},
      {"r1 1 --verdict accept --import v.csv", "do not go together"},
      {"r1 --import v.csv --next", "do not go together"},
      {"r1", "say what to do"},
  };
  for (const auto& c : cases) {
    auto out = Review(c.args);
    EXPECT_EQ(out.status, 1) << c.args << "\n" << out.text;
    EXPECT_THAT(out.text, HasSubstr(c.message)) << c.args;
    EXPECT_THAT(out.text, HasSubstr("crucible: error: ")) << c.args;
  }
  EXPECT_TRUE(Verdicts().empty());
}

TEST_F(ReviewCommandTest, ACsvImportKeepsQuotedCommasQuotesAndNewlines) {
  const std::string csv =
      "attempt,verdict,tags,note,reviewer,at\r\n"
      "0,accept,,plain,,2026-11-30T10:15:00Z\r\n"
      "2,reject,scope-creep;context-blindness,\"comma, \"\"quotes\"\"\nand a newline\",cy,"
      "1700000000000\r\n"
      "r1/4,needs-changes,my-teams-tag,\"\",,2026-11-30T11:15:00.250+01:00\r\n";
  const std::string file = Write("verdicts.csv", csv);
  auto out = Review("r1 --import " + Quote(file) + " --reviewer dee");
  ASSERT_EQ(out.status, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("stored 3 verdicts from " + file));
  auto stored = Verdicts();
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_EQ(stored[0].attempt(), 0u);
  EXPECT_EQ(stored[0].note(), "plain");
  EXPECT_EQ(stored[0].reviewer(), "dee");
  EXPECT_EQ(stored[0].at_ms(), 1796033700000);  // 2026-11-30T10:15:00Z
  EXPECT_EQ(stored[0].source(), "import " + file + ":2");
  EXPECT_EQ(stored[1].attempt(), 2u);
  EXPECT_EQ(stored[1].note(), "comma, \"quotes\"\nand a newline");
  EXPECT_THAT(stored[1].tags(), ElementsAre("scope-creep", "context-blindness"));
  EXPECT_EQ(stored[1].reviewer(), "cy");
  EXPECT_EQ(stored[1].at_ms(), 1700000000000);
  EXPECT_EQ(stored[2].attempt(), 4u);
  EXPECT_EQ(stored[2].verdict(), "needs-changes");
  EXPECT_EQ(stored[2].at_ms(), 1796033700250);             // 11:15:00.250 at +01:00
  EXPECT_EQ(stored[2].source(), "import " + file + ":5");  // the quoted newline is line 4
}

TEST_F(ReviewCommandTest, AJsonlImportTakesListsOrStringsOfTags) {
  const std::string file =
      Write("verdicts.jsonl",
            "{\"attempt\": 1, \"verdict\": \"accept\", \"tags\": [\"silent-regression\"]}\n"
            "\n"
            "{\"attempt\": \"3\", \"verdict\": \"reject\", \"tags\": \"scope-creep; "
            "hallucinated-api\", \"note\": \"a, b\", \"at\": 5000}\n");
  auto out = Review("r1 --import " + Quote(file));
  ASSERT_EQ(out.status, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("stored 2 verdicts from"));
  auto stored = Verdicts();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_THAT(stored[0].tags(), ElementsAre("silent-regression"));
  EXPECT_EQ(stored[0].reviewer(), "tester");
  EXPECT_EQ(stored[1].attempt(), 3u);
  EXPECT_THAT(stored[1].tags(), ElementsAre("scope-creep", "hallucinated-api"));
  EXPECT_EQ(stored[1].note(), "a, b");
  EXPECT_EQ(stored[1].at_ms(), 5000);
  EXPECT_EQ(stored[1].source(), "import " + file + ":3");
}

TEST_F(ReviewCommandTest, ACsvWithBadRowsStoresNothingAndNamesEveryRow) {
  StoreVerdict(1, "accept");  // what is stored already stays
  const std::string csv =
      "attempt,verdict,note,tags\n"
      "0,accept,fine,\n"
      "1,maybe,\"two\nlines\",\n"  // line 3
      "99,reject,,\n"              // line 5
      "5,accept,,\n"               // line 6: queued
      "2,accept,,Bad_Tag\n"        // line 7
      "3,accept\n"                 // line 8: too few fields
      "4,reject,,scope-creep\n";
  const std::string file = Write("verdicts.csv", csv);
  auto out = Review("r1 --import " + Quote(file));
  EXPECT_EQ(out.status, 1) << out.text;
  EXPECT_THAT(out.text,
              HasSubstr(file + ":3: verdict 'maybe' is not accept, reject or needs-changes"));
  EXPECT_THAT(out.text, HasSubstr(file + ":5: run 'r1' has no attempt 99"));
  EXPECT_THAT(out.text, HasSubstr(file + ":6: attempt 5 of run 'r1' is queued"));
  EXPECT_THAT(out.text, HasSubstr(file + ":7: tag 'Bad_Tag' is neither"));
  EXPECT_THAT(out.text, HasSubstr(file + ":8: 2 fields, the header row has 4"));
  EXPECT_THAT(out.text, Not(HasSubstr(file + ":2:")));
  EXPECT_THAT(out.text, HasSubstr(file + ": 5 of 7 rows are bad; nothing stored"));
  auto stored = Verdicts();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].reviewer(), "earlier");

  // Many bad rows: the first 20, then how many more.
  std::string many = "attempt,verdict\n";
  for (int i = 0; i < 25; ++i) many += "0,nope\n";
  const std::string many_file = Write("many.csv", many);
  auto listed = Review("r1 --import " + Quote(many_file));
  EXPECT_EQ(listed.status, 1);
  EXPECT_THAT(listed.text, HasSubstr(many_file + ":21: verdict 'nope'"));
  EXPECT_THAT(listed.text, Not(HasSubstr(many_file + ":22:")));
  EXPECT_THAT(listed.text, HasSubstr("... and 5 more"));

  // A file that cannot be read as CSV at all, and one without the columns.
  auto open_quote =
      Review("r1 --import " + Quote(Write("open.csv", "attempt,verdict\n0,\"accept\n1,reject\n")));
  EXPECT_EQ(open_quote.status, 1);
  EXPECT_THAT(open_quote.text, HasSubstr("open.csv:2: a quoted field is never closed"));
  auto no_header = Review("r1 --import " + Quote(Write("nohead.csv", "0,accept\n")));
  EXPECT_EQ(no_header.status, 1);
  EXPECT_THAT(no_header.text, HasSubstr("nohead.csv:1: unknown column '0' in the header row"));
  auto bad_json = Review("r1 --import " + Quote(Write("v.jsonl", "{\"attempt\": 0}\nnot json\n")));
  EXPECT_EQ(bad_json.status, 1);
  EXPECT_THAT(bad_json.text, HasSubstr("v.jsonl:1: no verdict"));
  EXPECT_THAT(bad_json.text, HasSubstr("v.jsonl:2: not a JSON object"));
  EXPECT_EQ(Verdicts().size(), 1u);
}

TEST_F(ReviewCommandTest, NextWithoutATerminalSaysWhatToUseInstead) {
  auto out = Review("r1 --next");  // stdin is /dev/null
  EXPECT_EQ(out.status, 1);
  EXPECT_THAT(out.text, HasSubstr("--next needs a terminal; use --verdict or --import"));
}

// `crucible review --next` on a pseudo-terminal: the test writes keys and
// reads the screen, every read bounded by a poll timeout; the child is
// killed when the test fails.
class Pty {
 public:
  ~Pty() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      testing::WaitPid(pid_, nullptr, std::chrono::seconds(10));
    }
    if (master_ >= 0) ::close(master_);
    if (slave_ >= 0) ::close(slave_);
  }

  bool Open() {
    if (::openpty(&master_, &slave_, nullptr, nullptr, nullptr) != 0) return false;
    return ::tcgetattr(slave_, &before_) == 0;
  }

  // Starts `argv` on the terminal, as its controlling terminal.
  bool Start(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    pid_ = ::fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      ::setsid();
      ::ioctl(slave_, TIOCSCTTY, 0);
      ::dup2(slave_, 0);
      ::dup2(slave_, 1);
      ::dup2(slave_, 2);
      ::close(master_);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      std::vector<char*> envp;
      for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
      envp.push_back(nullptr);
      ::execve(args[0], args.data(), envp.data());
      ::_exit(127);
    }
    return true;
  }

  // Reads until `text` appears after what earlier calls consumed; false
  // when it does not within `limit`.
  bool Expect(const std::string& text, std::chrono::seconds limit = std::chrono::seconds(60)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      size_t at = screen_.find(text, consumed_);
      if (at != std::string::npos) {
        consumed_ = at + text.size();
        return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{master_, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 500)));
      if (r <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(master_, buf, sizeof buf);
      if (n > 0) screen_.append(buf, static_cast<size_t>(n));
      if (n < 0 && errno != EINTR && errno != EAGAIN) return false;
    }
  }

  void Type(const std::string& keys) {
    ASSERT_EQ(::write(master_, keys.data(), keys.size()), static_cast<ssize_t>(keys.size()));
  }

  // Waits for the child's exit status (bounded).
  int Wait() {
    int st = 0;
    if (!testing::WaitPid(pid_, &st, std::chrono::seconds(60))) {
      pid_ = -1;
      return -1;
    }
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }

  pid_t pid() const { return pid_; }
  int slave() const { return slave_; }
  const termios& before() const { return before_; }
  const std::string& screen() const { return screen_; }

 private:
  int master_ = -1;
  int slave_ = -1;
  pid_t pid_ = -1;
  termios before_{};
  std::string screen_;
  size_t consumed_ = 0;
};

bool SameModes(const termios& a, const termios& b) {
  return a.c_iflag == b.c_iflag && a.c_oflag == b.c_oflag && a.c_lflag == b.c_lflag &&
         a.c_cc[VMIN] == b.c_cc[VMIN] && a.c_cc[VTIME] == b.c_cc[VTIME];
}

TEST_F(ReviewCommandTest, NextWalksTheUnreviewedAttemptsOneKeyEach) {
  StoreVerdict(1, "reject");  // already reviewed: not shown
  Pty pty;
  ASSERT_TRUE(pty.Open());
  ASSERT_TRUE(pty.Start({CRUCIBLE_BIN, "review", "r1", "--next", "--reviewer", "eve", "--db", db_},
                        {"PATH=/usr/bin:/bin", "TERM=xterm"}));
  const std::string prompt = "[a]ccept [r]eject [n]eeds-changes [t]ags [s]kip [q]uit";

  // Attempt 0: its header, intent and a diff cut at 200 lines.
  ASSERT_TRUE(pty.Expect("[1/4] attempt 0  agent alpha  task t-0")) << pty.screen();
  ASSERT_TRUE(pty.Expect("Fix the slug of task 0")) << pty.screen();
  ASSERT_TRUE(pty.Expect("added line 195")) << pty.screen();
  ASSERT_TRUE(pty.Expect("... 54 more lines")) << pty.screen();
  ASSERT_TRUE(pty.Expect(prompt)) << pty.screen();
  termios raw{};
  ASSERT_EQ(::tcgetattr(pty.slave(), &raw), 0);
  EXPECT_EQ(raw.c_lflag & (ICANON | ECHO), 0u) << "keys are read raw";
  pty.Type("x");  // not a key of the prompt: a hint, and the prompt again
  ASSERT_TRUE(pty.Expect("key 'x' does nothing here")) << pty.screen();
  ASSERT_TRUE(pty.Expect(prompt)) << pty.screen();
  pty.Type("a");
  ASSERT_TRUE(pty.Expect("stored accept for attempt 0")) << pty.screen();

  // Attempt 2: violations and failing tests shown; tags, then reject.
  ASSERT_TRUE(pty.Expect("[2/4] attempt 2")) << pty.screen();
  ASSERT_TRUE(pty.Expect("README.md:3 README.md is outside the task's scope")) << pty.screen();
  ASSERT_TRUE(pty.Expect("tests.test_slug::test_unicode")) << pty.screen();
  ASSERT_TRUE(pty.Expect(prompt)) << pty.screen();
  pty.Type("t");
  ASSERT_TRUE(pty.Expect("tags (")) << pty.screen();
  pty.Type("scope-creep -instruction-drift\n");
  ASSERT_TRUE(pty.Expect("tags scope-creep -instruction-drift  [a]ccept")) << pty.screen();
  pty.Type("r");
  ASSERT_TRUE(pty.Expect("stored reject for attempt 2")) << pty.screen();

  // Attempt 3: skipped; attempt 4: quit.
  ASSERT_TRUE(pty.Expect("[3/4] attempt 3")) << pty.screen();
  ASSERT_TRUE(pty.Expect(prompt)) << pty.screen();
  pty.Type("s");
  ASSERT_TRUE(pty.Expect("[4/4] attempt 4")) << pty.screen();
  ASSERT_TRUE(pty.Expect(prompt)) << pty.screen();
  pty.Type("q");
  ASSERT_TRUE(pty.Expect("reviewed 2, skipped 1, 1 left")) << pty.screen();
  EXPECT_EQ(pty.Wait(), 0) << pty.screen();
  // Colour on a terminal without NO_COLOR.
  EXPECT_THAT(pty.screen(), HasSubstr("\033[32m+added line 0"));

  termios after{};
  ASSERT_EQ(::tcgetattr(pty.slave(), &after), 0);
  EXPECT_TRUE(SameModes(pty.before(), after)) << "the terminal's modes are restored";

  auto stored = Verdicts();
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_EQ(stored[0].attempt(), 0u);
  EXPECT_EQ(stored[0].verdict(), "accept");
  EXPECT_EQ(stored[0].reviewer(), "eve");
  EXPECT_EQ(stored[0].source(), "interactive");
  EXPECT_EQ(stored[1].attempt(), 1u);  // the earlier one
  EXPECT_EQ(stored[2].attempt(), 2u);
  EXPECT_EQ(stored[2].verdict(), "reject");
  EXPECT_THAT(stored[2].tags(), ElementsAre("scope-creep", "-instruction-drift"));
}

TEST_F(ReviewCommandTest, NextRestoresTheTerminalOnSigtermAndKeepsWhatWasDecided) {
  Pty pty;
  ASSERT_TRUE(pty.Open());
  ASSERT_TRUE(pty.Start({CRUCIBLE_BIN, "review", "r1", "--next", "--agent", "alpha", "--db", db_},
                        {"PATH=/usr/bin:/bin", "NO_COLOR=1", "USER=fay"}));
  const std::string prompt = "[s]kip [q]uit";
  ASSERT_TRUE(pty.Expect("[1/3] attempt 0  agent alpha")) << pty.screen();
  ASSERT_TRUE(pty.Expect(prompt)) << pty.screen();
  pty.Type("n");
  ASSERT_TRUE(pty.Expect("[2/3] attempt 2")) << pty.screen();
  ASSERT_TRUE(pty.Expect(prompt)) << pty.screen();
  termios raw{};
  ASSERT_EQ(::tcgetattr(pty.slave(), &raw), 0);
  EXPECT_EQ(raw.c_lflag & ICANON, 0u);
  ASSERT_EQ(::kill(pty.pid(), SIGTERM), 0);
  EXPECT_EQ(pty.Wait(), 143) << pty.screen();
  EXPECT_THAT(pty.screen(), Not(HasSubstr("\033[")));  // NO_COLOR
  termios after{};
  ASSERT_EQ(::tcgetattr(pty.slave(), &after), 0);
  EXPECT_TRUE(SameModes(pty.before(), after)) << "the terminal's modes are restored";
  auto stored = Verdicts();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].verdict(), "needs-changes");
  EXPECT_EQ(stored[0].reviewer(), "fay");
}

}  // namespace
}  // namespace crucible
