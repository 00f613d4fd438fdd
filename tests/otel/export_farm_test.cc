// Traces out of a real farm: a coordinator daemon (`crucible coordinator
// --otlp-endpoint`) and a runner daemon of the crucible binary run real
// attempts in sandboxes; an OTLP receiver in the test process gets each
// attempt's spans, which read back through the openinference adapter are the
// stored events; `crucible trace` prints the same trace.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent-runner/adapters.h"
#include "base/fs.h"
#include "otel/otlp.h"
#include "storage/store.h"
#include "tests/farm/farm_support.h"
#include "tests/otel/otlp_receiver.h"
#include "tests/support/free_port.h"
#include "tests/support/run_command.h"

namespace crucible {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::Crucible;
using testing::Daemon;
using testing::Quote;
using testing::Sh;
using Clock = std::chrono::steady_clock;

class OtlpFarm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    auto dir = TempDir::Create("crucible-otlp-farm-");
    ASSERT_TRUE(dir);
    dir_ = new TempDir(std::move(*dir));
    mine_ = new testing::CommandOutput(
        testing::MineFixtureSuite(dir_->path() + "/repo", dir_->path() + "/seed-db", "fx"));
  }
  static void TearDownTestSuite() {
    delete mine_;
    delete dir_;
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "runners need root for the sandbox (CI runs as root)";
    ASSERT_EQ(mine_->status, 0) << mine_->text;
    name_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    logs_ = dir_->path() + "/" + name_;
    ASSERT_TRUE(MakeDirs(logs_));
    // A database of its own per test (a copy of the mined one).
    db_ = logs_ + "/db";
    auto copied = Sh("cp -a " + Quote(dir_->path() + "/seed-db") + " " + Quote(db_));
    ASSERT_EQ(copied.status, 0) << copied.text;
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(testing::FreePort());
    http_ = "127.0.0.1:" + std::to_string(testing::FreePort());
  }

  void StartFarm(const std::string& otlp_url) {
    coordinator_ = std::make_unique<Daemon>(
        std::vector<std::string>{"coordinator", "--listen", endpoint_, "--db", db_, "--http", http_,
                                 "--otlp-endpoint", otlp_url, "--otlp-timeout-ms", "1500",
                                 "--heartbeat-ms", "200"},
        logs_ + "/coordinator.log");
    bool up = false;
    for (int i = 0; i < 100 && !up; ++i) {
      up = Crucible("status --coordinator " + endpoint_).status == 0;
      if (!up) std::this_thread::sleep_for(milliseconds(50));
    }
    ASSERT_TRUE(up) << Log("coordinator.log");
    runner_ = std::make_unique<Daemon>(
        std::vector<std::string>{"runner", "--coordinator", endpoint_, "--workdir",
                                 logs_ + "/runner", "--name", "otlp-runner"},
        logs_ + "/runner.log");
  }

  // Runs the oracle and noop on both tasks; returns the run id.
  std::string RunAndWait() {
    auto out = Crucible(
        "run --suite fx --agent builtin:oracle --agent builtin:noop --detach "
        "--coordinator " +
        endpoint_);
    EXPECT_EQ(out.status, 0) << out.text;
    std::string run = out.text.substr(0, out.text.find('\n'));
    auto waited = Sh("timeout 120 " + std::string(CRUCIBLE_BIN) + " wait -q " + run +
                     " --coordinator " + endpoint_);
    EXPECT_EQ(waited.status, 0) << waited.text << Log("coordinator.log") << Log("runner.log");
    return run;
  }

  // The coordinator's counters from its status page.
  json Counters() {
    httplib::Client client("http://" + http_);
    client.set_connection_timeout(milliseconds(5000));
    client.set_read_timeout(milliseconds(5000));
    auto res = client.Get("/status.json");
    if (!res || res->status != 200) return json::object();
    json j = json::parse(res->body, nullptr, false);
    return j.is_object() && j.contains("counters") ? j["counters"] : json::object();
  }

  void Stop() {
    runner_->Signal(SIGTERM);
    EXPECT_EQ(runner_->Wait(milliseconds(10'000)), 0) << Log("runner.log");
    coordinator_->Signal(SIGTERM);
    EXPECT_EQ(coordinator_->Wait(milliseconds(10'000)), 0) << Log("coordinator.log");
  }

  // The four attempts' spans arrived, one request each, and read back through
  // the openinference adapter they are the stored events.
  void CheckReceived(const std::string& run, const std::vector<testing::ReceivedRequest>& got) {
    ASSERT_EQ(got.size(), 4u);
    auto store = storage::Store::Open(db_, {.read_only = true});
    ASSERT_TRUE(store) << store.error().ToString();
    std::map<std::string, uint64_t> attempt_of_trace;
    for (uint64_t n = 0; n < 4; ++n) attempt_of_trace[otel::TraceIdOf(run, n)] = n;
    std::set<uint64_t> seen;
    for (const auto& req : got) {
      EXPECT_EQ(req.content_type, "application/json");
      auto spans = otel::DecodeExportRequest(req.body);
      ASSERT_TRUE(spans) << spans.error().ToString();
      ASSERT_FALSE(spans->empty());
      auto it = attempt_of_trace.find((*spans)[0].trace_id);
      ASSERT_NE(it, attempt_of_trace.end()) << "a trace id of the run's attempts";
      const uint64_t n = it->second;
      EXPECT_TRUE(seen.insert(n).second) << "attempt " << n << " sent twice";
      EXPECT_EQ((*spans)[0].resource.at("crucible.run_id"), run);

      auto stored = (*store)->ListEvents(run, n);
      ASSERT_TRUE(stored);
      ASSERT_FALSE(stored->empty());
      auto adapter = runner::MakeOpenInferenceAdapter({});
      std::vector<v1::TraceEvent> back;
      auto st = adapter->Line(req.body, 0, back);
      ASSERT_TRUE(st) << st.error().ToString();
      ASSERT_EQ(back.size(), stored->size());
      for (size_t i = 0; i < back.size(); ++i) {
        const auto& want = (*stored)[i];
        EXPECT_EQ(back[i].name(), want.name());
        EXPECT_EQ(back[i].kind(), want.kind() == "RUNNER" ? "CHAIN" : want.kind());
        EXPECT_EQ(back[i].ts_ns(), want.ts_ns());
        EXPECT_EQ(back[i].attrs_json(), want.attrs_json());
      }
      // And `crucible trace` prints the same trace.
      auto otlp = Crucible("trace " + run + "/" + std::to_string(n) + " --format otlp-json --db " +
                           Quote(db_));
      ASSERT_EQ(otlp.status, 0) << otlp.text;
      EXPECT_EQ(otlp.text, req.body + "\n");
    }
  }

  std::string Log(const std::string& name) {
    auto text = ReadFile(logs_ + "/" + name);
    return text ? "\n--- " + name + ":\n" + *text : "";
  }

  static inline TempDir* dir_ = nullptr;
  static inline testing::CommandOutput* mine_ = nullptr;
  std::string name_, logs_, db_, endpoint_, http_;
  std::unique_ptr<Daemon> coordinator_, runner_;
};

TEST_F(OtlpFarm, EachFinishedAttemptIsPushedToTheReceiver) {
  testing::OtlpReceiver receiver;
  ASSERT_GT(receiver.port(), 0);
  StartFarm(receiver.url());
  const std::string run = RunAndWait();
  auto got = receiver.WaitFor(4, std::chrono::seconds(60));
  json c = json::object();
  for (int i = 0; i < 100 && c.value("otlp_exported", 0) < 4; ++i) {
    c = Counters();
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(c.value("otlp_exported", -1), 4) << c.dump();
  EXPECT_EQ(c.value("otlp_failed", -1), 0) << c.dump();
  Stop();
  CheckReceived(run, got);
}

TEST_F(OtlpFarm, ReceiverDownAtFirstThenUpStillGetsEveryAttempt) {
  const int port = testing::FreePort();
  ASSERT_GT(port, 0);
  StartFarm("http://127.0.0.1:" + std::to_string(port) + "/v1/traces");
  const std::string run = RunAndWait();
  // The run finished while nothing listened.
  json c = Counters();
  EXPECT_EQ(c.value("otlp_exported", -1), 0) << c.dump();
  testing::OtlpReceiver receiver(port);
  ASSERT_EQ(receiver.port(), port);
  auto got = receiver.WaitFor(4, std::chrono::seconds(90));
  Stop();
  CheckReceived(run, got);
  EXPECT_NE(Log("coordinator.log").find("pushing finished attempts' spans to"), std::string::npos);
}

TEST_F(OtlpFarm, ReceiverThatNeverAnswersDoesNotHoldUpTheRun) {
  testing::SilentReceiver silent;
  ASSERT_GT(silent.port(), 0);
  StartFarm(silent.url());
  // `crucible wait` returns (RunAndWait fails the test otherwise) although no
  // push ever completes: each one waits out its 1.5 s timeout in the
  // exporter's thread.
  RunAndWait();
  // The status page is published once a second: wait for one that saw the
  // run finish.
  json c = Counters();
  for (int i = 0; i < 100 && c.value("runs_finished", 0) < 1; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
    c = Counters();
  }
  ASSERT_GE(c.value("runs_finished", 0), 1) << c.dump();
  EXPECT_EQ(c.value("otlp_exported", -1), 0) << c.dump();
  EXPECT_GE(c.value("otlp_queued", 0) + c.value("otlp_failed", 0), 1) << c.dump();
  // And the coordinator still stops promptly on SIGTERM (Stop checks within 10 s).
  Stop();
  EXPECT_NE(Log("coordinator.log").find("not exported"), std::string::npos)
      << Log("coordinator.log");
}

TEST(TraceCli, JsonlAndErrorsForUnknownAttempts) {
  if (::geteuid() != 0) GTEST_SKIP() << "runs need root for the sandbox";
  auto dir = TempDir::Create("crucible-trace-cli-");
  ASSERT_TRUE(dir);
  const std::string db = dir->path() + "/db";
  auto mined = testing::MineFixtureSuite(dir->path() + "/repo", db, "fx");
  ASSERT_EQ(mined.status, 0) << mined.text;
  auto ran = Crucible("run --suite fx --agent builtin:oracle --db " + Quote(db));
  ASSERT_EQ(ran.status, 0) << ran.text;
  auto runs = storage::Store::Open(db, {.read_only = true});
  ASSERT_TRUE(runs);
  auto list = (*runs)->ListRuns();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  const std::string run = (*list)[0].id();
  auto stored = (*runs)->ListEvents(run, 1);
  ASSERT_TRUE(stored);
  runs->reset();

  for (const std::string& ref : {run + "/1", run + ":1"}) {
    auto out = Sh(std::string(CRUCIBLE_BIN) + " trace " + ref + " --db " + Quote(db),
                  std::chrono::seconds(60), /*with_stderr=*/false);
    ASSERT_EQ(out.status, 0) << out.text;
    std::vector<json> lines;
    size_t pos = 0;
    while (pos < out.text.size()) {
      size_t nl = out.text.find('\n', pos);
      ASSERT_NE(nl, std::string::npos) << "every line ends with a newline";
      lines.push_back(json::parse(out.text.substr(pos, nl - pos)));
      pos = nl + 1;
    }
    ASSERT_EQ(lines.size(), stored->size());
    bool runner_tests = false;
    for (size_t i = 0; i < lines.size(); ++i) {
      const auto& ev = (*stored)[i];
      EXPECT_EQ(lines[i]["ts"], ev.ts_ns());
      EXPECT_EQ(lines[i]["kind"], ev.kind());
      EXPECT_EQ(lines[i]["name"], ev.name());
      EXPECT_EQ(lines[i]["source"], ev.source());
      EXPECT_EQ(lines[i]["seq"], ev.seq());
      if (!ev.attrs_json().empty()) {
        EXPECT_EQ(lines[i]["attrs"], json::parse(ev.attrs_json()));
      }
      runner_tests = runner_tests || (ev.source() == "runner" && ev.name() == "run_tests");
    }
    EXPECT_TRUE(runner_tests) << out.text;
  }

  struct Bad {
    std::string args;
    std::string message;
  };
  for (const auto& b :
       std::vector<Bad>{{"nonsense", "expected RUN/NUMBER"},
                        {run + "/x", "expected RUN/NUMBER"},
                        {run + "/", "expected RUN/NUMBER"},
                        {"/3", "expected RUN/NUMBER"},
                        {"r-nope/0", "run 'r-nope' not found"},
                        {run + "/7", "has no attempt 7 (its attempts are numbered 0 to 1)"},
                        {run + "/0 --format yaml", "yaml"}}) {
    auto out = Crucible("trace " + b.args + " --db " + Quote(db));
    EXPECT_NE(out.status, 0) << b.args;
    EXPECT_NE(out.text.find(b.message), std::string::npos) << b.args << ": " << out.text;
  }
  auto help = Crucible("trace --help");
  EXPECT_NE(help.text.find("crucible report RUN --by attempt"), std::string::npos) << help.text;
}

}  // namespace
}  // namespace crucible
