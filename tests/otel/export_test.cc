// The OTLP/HTTP exporter (coordinator/otlp_export.h) against receivers in
// the test process, reading a real store.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "base/fs.h"
#include "coordinator/otlp_export.h"
#include "otel/otlp.h"
#include "storage/store.h"
#include "tests/otel/otlp_receiver.h"
#include "tests/support/free_port.h"

namespace crucible {
namespace {

using coordinator::OtlpExporter;
using coordinator::OtlpExportOptions;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

TEST(OtlpUrl, ParsesEndpointsAndNamesWhatIsWrong) {
  auto u = coordinator::ParseOtlpUrl("http://127.0.0.1:4318");
  ASSERT_TRUE(u) << u.error().ToString();
  EXPECT_EQ(u->origin, "http://127.0.0.1:4318");
  EXPECT_EQ(u->path, "/v1/traces");
  u = coordinator::ParseOtlpUrl("http://collector.local:4318/otlp/v1/traces");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->origin, "http://collector.local:4318");
  EXPECT_EQ(u->path, "/otlp/v1/traces");
  u = coordinator::ParseOtlpUrl("https://[::1]:6006/v1/traces");
  ASSERT_TRUE(u) << u.error().ToString();
  EXPECT_EQ(u->origin, "https://[::1]:6006");
  for (const auto& [url, why] : std::vector<std::pair<std::string, std::string>>{
           {"127.0.0.1:4318", "not an http:// or https:// URL"},
           {"grpc://x:4317", "not an http:// or https:// URL"},
           {"http://", "no host"},
           {"http://:4318", "no host"},
           {"http://x:port", "port 'port' is not a number"},
           {"http://x:70000", "port '70000' is not a number"},
           {"http://u:p@x:1", "credentials"},
           {"http://x:1/v1/traces?a=b", "no query"}}) {
    auto bad = coordinator::ParseOtlpUrl(url);
    ASSERT_FALSE(bad) << url;
    EXPECT_NE(bad.error().message().find(why), std::string::npos) << bad.error().message();
    EXPECT_NE(bad.error().message().find(url), std::string::npos) << bad.error().message();
  }
}

class Exporter : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("crucible-otlp-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    auto store = storage::Store::Open(dir_->path() + "/db");
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
  }

  // Stores a small trace for attempt `n` of run r1 and returns the attempt.
  v1::Attempt StoredAttempt(uint64_t n) {
    std::vector<v1::TraceEvent> events(3);
    for (size_t i = 0; i < events.size(); ++i) {
      events[i].set_ts_ns(1'000 + static_cast<int64_t>(i));
      events[i].set_kind(i == 1 ? "TOOL" : "RUNNER");
      events[i].set_name(i == 1 ? "read_file" : "agent_exit");
      events[i].set_source(i == 1 ? "agent" : "runner");
      events[i].set_seq(i);
      events[i].set_attrs_json(R"({"path":"a.py"})");
    }
    EXPECT_TRUE(store_->AppendEvents("r1", n, events));
    v1::Attempt a;
    a.set_run_id("r1");
    a.set_number(n);
    a.set_task_id("t1");
    a.set_agent("oracle");
    a.set_state(v1::Attempt::DONE);
    return a;
  }

  std::unique_ptr<OtlpExporter> Start(const std::string& url, int timeout_ms = 2000,
                                      size_t max_queue = 1000) {
    OtlpExportOptions o;
    o.endpoint = url;
    o.timeout_ms = timeout_ms;
    o.first_backoff_ms = 50;
    o.max_backoff_ms = 400;
    o.max_tries = 100;
    o.max_queue = max_queue;
    auto e = OtlpExporter::Start(*store_, o);
    EXPECT_TRUE(e) << e.error().ToString();
    return e ? std::move(*e) : nullptr;
  }

  // Waits until `done(counters)` holds, at most 30 s.
  bool WaitCounters(OtlpExporter& e,
                    const std::function<bool(const coordinator::OtlpExportCounters&)>& done) {
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline) {
      if (done(e.counters())) return true;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  }

  std::unique_ptr<TempDir> dir_;
  storage::StorePtr store_;
};

TEST_F(Exporter, PostsEachAttemptsSpansAsOtlpJson) {
  testing::OtlpReceiver receiver;
  ASSERT_GT(receiver.port(), 0);
  auto e = Start(receiver.url("/custom/path"));
  ASSERT_TRUE(e);
  e->Enqueue(StoredAttempt(0));
  e->Enqueue(StoredAttempt(1));
  auto got = receiver.WaitFor(2, std::chrono::seconds(30));
  ASSERT_EQ(got.size(), 2u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].path, "/custom/path");
    EXPECT_EQ(got[i].content_type, "application/json");
    auto spans = otel::DecodeExportRequest(got[i].body);
    ASSERT_TRUE(spans) << spans.error().ToString();
    ASSERT_EQ(spans->size(), 4u);  // the root and three events
    EXPECT_EQ((*spans)[0].trace_id, otel::TraceIdOf("r1", i));
    auto events = otel::DecodeOtlpEvents(got[i].body);
    ASSERT_TRUE(events);
    auto stored = store_->ListEvents("r1", i);
    ASSERT_TRUE(stored);
    ASSERT_EQ(events->size(), stored->size());
    for (size_t k = 0; k < events->size(); ++k) {
      EXPECT_EQ((*events)[k].SerializeAsString(), (*stored)[k].SerializeAsString());
    }
  }
  ASSERT_TRUE(WaitCounters(*e, [](const auto& c) { return c.exported == 2; }));
  EXPECT_EQ(e->counters().failed, 0u);
  EXPECT_EQ(e->counters().queued, 0u);
}

TEST_F(Exporter, ReceiverDownAtFirstThenUpStillGetsTheSpans) {
  const int port = testing::FreePort();
  ASSERT_GT(port, 0);
  auto e = Start("http://127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(e);
  e->Enqueue(StoredAttempt(0));
  ASSERT_TRUE(WaitCounters(*e, [](const auto& c) { return c.retries >= 2; }))
      << "the exporter retries while nothing listens";
  testing::OtlpReceiver receiver(port);
  ASSERT_EQ(receiver.port(), port);
  auto got = receiver.WaitFor(1, std::chrono::seconds(30));
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(WaitCounters(*e, [](const auto& c) { return c.exported == 1; }));
  EXPECT_EQ(e->counters().failed, 0u);
}

TEST_F(Exporter, RefusedRequestsAreCountedAsFailedWithoutRetrying) {
  testing::OtlpReceiver receiver(0, 400);
  ASSERT_GT(receiver.port(), 0);
  auto e = Start(receiver.url());
  ASSERT_TRUE(e);
  e->Enqueue(StoredAttempt(0));
  ASSERT_TRUE(WaitCounters(*e, [](const auto& c) { return c.failed == 1; }));
  EXPECT_EQ(e->counters().retries, 0u);
  EXPECT_EQ(receiver.WaitFor(1, milliseconds(10)).size(), 1u);
}

TEST_F(Exporter, SilentReceiverNeitherBlocksEnqueueNorShutdownAndAFullQueueDropsTheOldest) {
  testing::SilentReceiver silent;
  ASSERT_GT(silent.port(), 0);
  const int timeout_ms = 3000;
  auto e = Start(silent.url(), timeout_ms, /*max_queue=*/2);
  ASSERT_TRUE(e);
  std::vector<v1::Attempt> attempts;
  for (uint64_t n = 0; n < 6; ++n) attempts.push_back(StoredAttempt(n));
  e->Enqueue(attempts[0]);
  // The first attempt is on its way (its POST waits for an answer that never comes).
  ASSERT_TRUE(WaitCounters(*e, [](const auto& c) { return c.queued == 1; }));
  std::this_thread::sleep_for(milliseconds(100));
  auto before = Clock::now();
  for (size_t n = 1; n < attempts.size(); ++n) e->Enqueue(attempts[n]);
  // Each POST takes the whole timeout; queueing waits for none of them.
  EXPECT_LT(Clock::now() - before, milliseconds(timeout_ms));
  auto c = e->counters();
  EXPECT_EQ(c.dropped, 3u) << "five queued behind one in flight, two kept";
  EXPECT_EQ(c.queued, 3u);
  EXPECT_EQ(c.exported, 0u);
  // Stopping ends the POST under way within its timeout and drops the rest.
  before = Clock::now();
  e.reset();
  EXPECT_LT(Clock::now() - before, milliseconds(4 * timeout_ms));
}

}  // namespace
}  // namespace crucible
