// The status page and Prometheus metrics over real HTTP, fed by a real
// coordinator (ROUTER socket, RocksDB) that a runner played by the test
// talks to over a real DEALER socket.
#include "coordinator/http_status.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <map>
#include <sstream>

#include <zmq.hpp>

#include "base/fs.h"
#include "protocol/framing.h"
#include "storage/store.h"
#include "tests/support/zmq_socket.h"

namespace crucible::coordinator {
namespace {

// Parses the Prometheus text format into "name{labels}" -> value, checking
// that every sample belongs to a family announced by # HELP and # TYPE.
std::map<std::string, double> ParseMetrics(const std::string& text) {
  std::map<std::string, double> out;
  std::set<std::string> families;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.starts_with("# TYPE ")) {
      std::istringstream f(line.substr(7));
      std::string name, type;
      f >> name >> type;
      EXPECT_TRUE(type == "gauge" || type == "counter") << line;
      families.insert(name);
      continue;
    }
    if (line.starts_with("# HELP ")) continue;
    EXPECT_FALSE(line.starts_with("#")) << line;
    auto space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    std::string key = line.substr(0, space);
    std::string name = key.substr(0, key.find('{'));
    EXPECT_TRUE(families.count(name)) << "sample without # TYPE: " << line;
    out[key] = std::stod(line.substr(space + 1));
  }
  return out;
}

class HttpStatusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("crucible-http-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    auto store = storage::Store::Open(dir_->path() + "/db");
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    v1::Suite suite;
    suite.set_name("s");
    suite.set_task_count(3);
    std::vector<v1::GoldenTask> tasks(3);
    for (int i = 0; i < 3; ++i) {
      tasks[i].set_suite("s");
      tasks[i].set_id("t" + std::to_string(i));
      tasks[i].add_fail_to_pass("test_" + std::to_string(i));
    }
    ASSERT_TRUE(store_->PutSuite(suite, tasks));
    CoordinatorOptions options;
    options.listen = "ipc://" + dir_->path() + "/c.sock";
    auto c = Coordinator::Create(*store_, options);
    ASSERT_TRUE(c) << c.error().ToString();
    coord_ = std::move(*c);
    auto server = StatusServer::Start("127.0.0.1:0", store_.get());
    ASSERT_TRUE(server) << server.error().ToString();
    server_ = std::move(*server);
  }

  void Publish() {
    StatusPage page;
    auto snapshot = coord_->Snapshot();
    ASSERT_TRUE(snapshot) << snapshot.error().ToString();
    page.status = *snapshot;
    page.counters = coord_->counters();
    page.listen = "ipc://test";
    ReadProcessUsage(page);
    server_->Publish(std::move(page));
  }

  httplib::Result Get(const std::string& path) {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_connection_timeout(10);
    client.set_read_timeout(10);
    client.set_write_timeout(10);
    return client.Get(path.c_str());
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<Coordinator> coord_;
  std::unique_ptr<StatusServer> server_;
};

TEST_F(HttpStatusTest, HealthzSaysStartingUntilTheFirstSnapshot) {
  auto res = Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  Publish();
  res = Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(HttpStatusTest, MetricsFollowARunThroughARealRunner) {
  v1::AgentSpec agent;
  agent.set_name("a");
  agent.set_command("builtin:noop");
  auto run = coord_->SubmitRun("s", {agent}, 1);
  ASSERT_TRUE(run) << run.error().ToString();

  zmq::context_t ctx;
  zmq::socket_t runner(ctx, zmq::socket_type::dealer);
  runner.set(zmq::sockopt::routing_id, "r1");
  testing::BoundSocket(runner);
  runner.connect("ipc://" + dir_->path() + "/c.sock");
  v1::Envelope hello;
  hello.mutable_hello()->set_runner_name("r1");
  hello.mutable_hello()->set_slots(1);
  hello.mutable_hello()->add_labels("gpu=none");
  ASSERT_TRUE(protocol::Send(runner, hello));

  // Serve until the runner holds a lease; finish one attempt with a trace.
  std::string lease_id;
  for (int i = 0; i < 200 && lease_id.empty(); ++i) {
    ASSERT_TRUE(coord_->Serve([] { return true; }));
    while (auto msg = protocol::Receive(runner, false, 10)) {
      ASSERT_TRUE(msg->envelope);
      if (msg->envelope->has_lease()) lease_id = msg->envelope->lease().lease_id();
    }
  }
  ASSERT_FALSE(lease_id.empty());
  v1::Envelope trace;
  trace.mutable_trace()->set_lease_id(lease_id);
  for (int i = 0; i < 5; ++i) {
    auto* ev = trace.mutable_trace()->add_events();
    ev->set_seq(i);
  }
  ASSERT_TRUE(protocol::Send(runner, trace));
  v1::Envelope result;
  result.mutable_result()->set_lease_id(lease_id);
  ASSERT_TRUE(protocol::Send(runner, result));
  // Garbage counts as malformed and does not stop the coordinator.
  ASSERT_TRUE(runner.send(zmq::buffer(std::string("junk")), zmq::send_flags::none));
  for (int i = 0; i < 200 && coord_->counters().malformed_messages == 0; ++i) {
    ASSERT_TRUE(coord_->Serve([] { return true; }));
  }
  Publish();

  auto res = Get("/metrics");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_NE(res->get_header_value("Content-Type").find("version=0.0.4"), std::string::npos);
  auto m = ParseMetrics(res->body);
  EXPECT_EQ(m["crucible_runs_active"], 1);
  EXPECT_EQ(m["crucible_runners"], 1);
  EXPECT_EQ(m["crucible_slots"], 1);
  EXPECT_EQ(m["crucible_attempts{state=\"done\"}"], 1);
  EXPECT_EQ(m["crucible_attempts{state=\"leased\"}"], 1);  // the next task, leased at once
  EXPECT_EQ(m["crucible_attempts{state=\"queued\"}"], 1);
  EXPECT_EQ(m["crucible_run_attempts{run=\"" + run->id() + "\",state=\"done\"}"], 1);
  EXPECT_EQ(m["crucible_runner_busy{runner=\"r1\"}"], 1);
  EXPECT_EQ(m["crucible_leases_granted_total"], 2);
  EXPECT_EQ(m["crucible_results_accepted_total"], 1);
  EXPECT_EQ(m["crucible_trace_events_stored_total"], 5);
  EXPECT_EQ(m["crucible_malformed_messages_total"], 1);
  EXPECT_EQ(m["crucible_runs_submitted_total"], 1);
  EXPECT_GT(m["process_resident_memory_bytes"], 1e6);

  res = Get("/status.json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("\"id\": \"" + run->id() + "\""), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("\"leases_granted\": 2"), std::string::npos) << res->body;

  res = Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find(run->id()), std::string::npos);
  EXPECT_NE(res->body.find("gpu=none"), std::string::npos);

  res = Get("/nothing-here");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST_F(HttpStatusTest, EachRunLinksToItsHtmlReportReadFromTheStore) {
  v1::AgentSpec agent;
  agent.set_name("a");
  agent.set_command("builtin:noop");
  auto run = coord_->SubmitRun("s", {agent}, 1);
  ASSERT_TRUE(run) << run.error().ToString();
  // One attempt finished (as a runner's result would store it), two queued.
  auto attempt = store_->GetAttempt(run->id(), 0);
  ASSERT_TRUE(attempt) << attempt.error().ToString();
  attempt->set_state(v1::Attempt::DONE);
  v1::Evidence evidence;
  evidence.set_final_diff("--- a/x\n+++ b/x\n+marker-of-the-agent-diff\n");
  v1::Score score;
  score.set_scoring_version(2);
  score.set_completed(true);
  score.set_strict_completed(true);
  ASSERT_TRUE(store_->FinishAttempt(*attempt, evidence, score));
  Publish();

  auto res = Get("/");
  ASSERT_TRUE(res);
  const std::string link = "/runs/" + run->id() + "/report.html";
  EXPECT_NE(res->body.find("<a href=\"" + link + "\">" + run->id() + "</a>"), std::string::npos)
      << res->body;
  res = Get(link);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(res->body.find("id=\"headline\""), std::string::npos);
  EXPECT_NE(res->body.find("Run in progress: 1 of 3 attempts are finished"), std::string::npos);
  EXPECT_NE(res->body.find("marker-of-the-agent-diff"), std::string::npos);
  EXPECT_NE(res->body.find("href=\"#attempt-0\""), std::string::npos);

  res = Get("/runs/no-such-run/report.html");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(res->body, "run 'no-such-run' not found\n");

  // A server without a database says so instead of serving a page.
  auto bare = StatusServer::Start("127.0.0.1:0");
  ASSERT_TRUE(bare) << bare.error().ToString();
  httplib::Client client("127.0.0.1", (*bare)->port());
  client.set_connection_timeout(10);
  client.set_read_timeout(10);
  client.set_write_timeout(10);
  res = client.Get(link.c_str());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_NE(res->body.find("no database"), std::string::npos);
}

TEST(StatusFormatTest, RunLinksAreEncoded) {
  StatusPage page;
  page.status.add_runs()->mutable_run()->set_id("r 1/<x>&\"");
  std::string html = StatusHtml(page);
  EXPECT_NE(html.find("href=\"/runs/r%201%2F%3Cx%3E%26%22/report.html\""), std::string::npos)
      << html;
  EXPECT_NE(html.find(">r 1/&lt;x&gt;&amp;&quot;</a>"), std::string::npos) << html;
}

TEST(StatusFormatTest, LabelValuesAndHtmlAreEscaped) {
  StatusPage page;
  auto* r = page.status.add_runners();
  r->set_name("evil\"runner\\\n<b>");
  r->set_slots(2);
  std::string text = PrometheusText(page);
  EXPECT_NE(text.find("crucible_runner_slots{runner=\"evil\\\"runner\\\\\\n<b>\"} 2"),
            std::string::npos)
      << text;
  std::string html = StatusHtml(page);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;"), std::string::npos);
}

TEST(StatusFormatTest, ControlBytesAndBadUtf8BecomeReplacementCharacters) {
  // A runner names itself; the page must stay well-formed XHTML whatever the
  // name holds, as the run reports do.
  StatusPage page;
  page.status.add_runners()->set_name(std::string("r\x01x\xff\xfey"));
  std::string html = StatusHtml(page);
  EXPECT_NE(html.find("r\xEF\xBF\xBDx\xEF\xBF\xBD\xEF\xBF\xBDy"), std::string::npos) << html;
  EXPECT_EQ(html.find('\x01'), std::string::npos);
  EXPECT_EQ(html.find('\xff'), std::string::npos);
}

TEST(StatusServerTest, BadAddressesAreClearErrors) {
  auto s = StatusServer::Start("7401");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("HOST:PORT"), std::string::npos);
  s = StatusServer::Start("127.0.0.1:http");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("port"), std::string::npos);
  auto first = StatusServer::Start("127.0.0.1:0");
  ASSERT_TRUE(first);
  s = StatusServer::Start("127.0.0.1:" + std::to_string((*first)->port()));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace crucible::coordinator
