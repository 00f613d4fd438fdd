// Calibration end to end: the sample repository mined with the sandbox,
// `crucible calibrate` running the oracle, the noop and every mutant through
// the embedded coordinator and runners, the matrix, the tasks' status in
// `suite show`, and a switched-off check named by the mutant that escapes it.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "base/fs.h"
#include "tests/support/run_command.h"
#include "tests/support/timed_wait.h"

namespace crucible {
namespace {

using nlohmann::json;
using testing::Crucible;
using ::testing::HasSubstr;
using testing::Quote;
using testing::Sh;

constexpr char kTestCmd[] = "python3 -m pytest -q -p no:cacheprovider --junitxml={junit}";
// The sample suite has 10 tasks, all testable: calibration takes every one.
constexpr int kTasks = 10;
constexpr std::chrono::seconds kCalibrateLimit{780};

// A crucible daemon (coordinator or runner) with its output in `log`; stopped
// with SIGTERM, and killed when it does not end within the test wait limit.
class Daemon {
 public:
  Daemon(const std::vector<std::string>& args, const std::string& log) {
    std::vector<std::string> argv = {CRUCIBLE_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> c;
    for (auto& a : argv) c.push_back(a.data());
    c.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                       0644);
    ::posix_spawn_file_actions_adddup2(&actions, 1, 2);
    if (::posix_spawn(&pid_, argv[0].c_str(), &actions, nullptr, c.data(), environ) != 0) {
      pid_ = -1;
    }
    ::posix_spawn_file_actions_destroy(&actions);
  }
  ~Daemon() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    testing::WaitPid(pid_, nullptr);
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  bool started() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

class CalibrateEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    auto dir = TempDir::Create("crucible-calibrate-e2e-");
    ASSERT_TRUE(dir);
    dir_ = new TempDir(std::move(*dir));
    const std::string repo = dir_->path() + "/sample-repo";
    db_ = dir_->path() + "/db";
    auto made = testing::MakeSampleRepo(repo);
    ASSERT_EQ(made.status, 0) << made.text;
    auto mined = Crucible("mine --repo " + Quote(repo) + " --suite sample --test-cmd " +
                          Quote(kTestCmd) + " --db " + Quote(db_));
    ASSERT_EQ(mined.status, 0) << mined.text;
    // stdout alone: the JSON (progress goes to stderr, the test's own).
    calibrate_ = new testing::CommandOutput(
        Sh(std::string(CRUCIBLE_BIN) + " calibrate --suite sample --format json --runners 2 --db " +
               Quote(db_),
           kCalibrateLimit, /*with_stderr=*/false));
  }
  static void TearDownTestSuite() {
    delete calibrate_;
    delete dir_;
  }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (CI runs as root)";
    ASSERT_NE(calibrate_, nullptr) << "the sample suite could not be mined";
  }

  static json Matrix() {
    json j = json::parse(calibrate_->text, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON:\n" << calibrate_->text;
    return j;
  }

  static void EveryMutantIsCaughtByItsScoresWhereverItApplies();
  static void SuiteShowPrintsTheTasksStatus();
  static void ASwitchedOffCheckFailsCalibrationNamingTheEscapedMutant();
  static void BadInputIsAClearError();
  static void ThroughACoordinatorDaemon();
  static std::string ReadLog(const std::string& path) {
    auto text = ReadFile(path);
    return text ? "\n" + *text : "";
  }

  static inline TempDir* dir_ = nullptr;
  static inline std::string db_;
  static inline testing::CommandOutput* calibrate_ = nullptr;
};

void CalibrateEndToEnd::EveryMutantIsCaughtByItsScoresWhereverItApplies() {
  json j = Matrix();
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(calibrate_->status, 0) << j.dump(2);
  EXPECT_EQ(j["ok"], true) << j["failures"].dump(2) << j["incomplete"].dump(2);
  EXPECT_EQ(j["tasks"].size(), static_cast<size_t>(kTasks));
  EXPECT_TRUE(j["failures"].empty()) << j["failures"].dump(2);
  EXPECT_TRUE(j["incomplete"].empty()) << j["incomplete"].dump(2);
  // On the sample suite no score catches a mutant it is not meant for, beyond
  // what docs/scoring.md allows (its matrix is documented there).
  EXPECT_TRUE(j["crossed"].empty()) << j["crossed"].dump(2);
  ASSERT_EQ(j["rows"].size(), 12u);
  for (const auto& row : j["rows"]) {
    const std::string agent = row["agent"];
    if (agent == "oracle") {
      for (const auto& [column, cell] : row["cells"].items()) {
        EXPECT_EQ(cell["caught"], 0) << "the oracle was flagged by " << column;
      }
      continue;
    }
    // Every mutant has a place on some task of the sample suite; an n/a
    // everywhere would be a pass that proves nothing.
    EXPECT_GE(row["applicable"].get<int>(), 1)
        << agent << " applies nowhere: " << row["not_applicable"].dump(2);
    for (const auto& column : row["meant"]) {
      const auto& cell = row["cells"][column.get<std::string>()];
      EXPECT_EQ(cell["measured"], row["applicable"]) << agent << " " << column;
      EXPECT_EQ(cell["caught"], row["applicable"]) << agent << " " << column;
    }
  }
}

void CalibrateEndToEnd::SuiteShowPrintsTheTasksStatus() {
  json j = Matrix();
  ASSERT_TRUE(j.is_object());
  auto show = Crucible("suite show sample --db " + Quote(db_));
  ASSERT_EQ(show.status, 0) << show.text;
  const std::string run = j["run"];
  EXPECT_THAT(show.text, HasSubstr("calibration: calibrated (run " + run + ")")) << show.text;
  EXPECT_THAT(show.text, ::testing::Not(HasSubstr("calibration: escapes"))) << show.text;
}

void CalibrateEndToEnd::ASwitchedOffCheckFailsCalibrationNamingTheEscapedMutant() {
  json j = Matrix();
  ASSERT_TRUE(j.is_object());
  const std::string run = j["run"];
  auto out = Crucible("calibrate --run " + run + " --switch-off reformat --db " + Quote(db_));
  EXPECT_EQ(out.status, 3) << out.text;
  EXPECT_THAT(out.text, HasSubstr("mutant-reformat escaped reformat on tasks"));
  EXPECT_THAT(out.text, HasSubstr("calibration FAILED"));
  // A what-if: the stored status is not touched.
  auto show = Crucible("suite show sample --db " + Quote(db_));
  EXPECT_THAT(show.text, ::testing::Not(HasSubstr("calibration: escapes"))) << show.text;
  // Read again without it: passes, the stored run unchanged.
  auto again = Crucible("calibrate --run " + run + " --db " + Quote(db_));
  EXPECT_EQ(again.status, 0) << again.text;
  EXPECT_THAT(again.text, HasSubstr("calibration passed"));
}

void CalibrateEndToEnd::BadInputIsAClearError() {
  auto suite = Crucible("calibrate --suite nosuch --db " + Quote(db_));
  EXPECT_EQ(suite.status, 1) << suite.text;
  EXPECT_THAT(suite.text, HasSubstr("nosuch"));
  auto tasks = Crucible("calibrate --suite sample --tasks 0 --db " + Quote(db_));
  EXPECT_EQ(tasks.status, 1) << tasks.text;
  EXPECT_THAT(tasks.text, HasSubstr("--tasks 0"));
  auto run = Crucible("calibrate --run nosuch --db " + Quote(db_));
  EXPECT_EQ(run.status, 1) << run.text;
  EXPECT_THAT(run.text, HasSubstr("nosuch"));
  auto off = Crucible("calibrate --run nosuch --switch-off spelling --db " + Quote(db_));
  EXPECT_EQ(off.status, 1) << off.text;
  EXPECT_THAT(off.text, HasSubstr("'spelling'"));
}

// `--coordinator`: the same agents submitted to a coordinator daemon (on the
// test's database, after the parts above: the daemon holds it) and followed;
// the matrix is read from the database the daemon writes.
void CalibrateEndToEnd::ThroughACoordinatorDaemon() {
  const std::string endpoint = "ipc://" + dir_->path() + "/coordinator.sock";
  const std::string log = dir_->path() + "/daemons.log";
  Daemon coordinator({"coordinator", "--listen", endpoint, "--db", db_}, log);
  ASSERT_TRUE(coordinator.started());
  Daemon runner(
      {"runner", "--coordinator", endpoint, "--slots", "2", "--workdir", dir_->path() + "/runner"},
      log);
  ASSERT_TRUE(runner.started());
  auto out = Crucible(
      "calibrate --coordinator " + Quote(endpoint) + " --suite sample --tasks 1 --db " + Quote(db_),
      kCalibrateLimit);
  EXPECT_EQ(out.status, 0) << out.text << ReadLog(log);
  EXPECT_THAT(out.text, HasSubstr("12 attempts (suite sample, 12 agents"));
  EXPECT_THAT(out.text, HasSubstr("calibration of run"));
  EXPECT_THAT(out.text, HasSubstr("calibration passed"));
}

// One test: the calibration run is made once (SetUpTestSuite runs per test
// process under ctest).
TEST_F(CalibrateEndToEnd, OnTheSampleSuite) {
  {
    SCOPED_TRACE("EveryMutantIsCaughtByItsScoresWhereverItApplies");
    EveryMutantIsCaughtByItsScoresWhereverItApplies();
  }
  {
    SCOPED_TRACE("SuiteShowPrintsTheTasksStatus");
    SuiteShowPrintsTheTasksStatus();
  }
  {
    SCOPED_TRACE("ASwitchedOffCheckFailsCalibrationNamingTheEscapedMutant");
    ASwitchedOffCheckFailsCalibrationNamingTheEscapedMutant();
  }
  {
    SCOPED_TRACE("BadInputIsAClearError");
    BadInputIsAClearError();
  }
  {
    SCOPED_TRACE("ThroughACoordinatorDaemon");
    ThroughACoordinatorDaemon();
  }
}

}  // namespace
}  // namespace crucible
