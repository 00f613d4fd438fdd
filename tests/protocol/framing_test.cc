#include "protocol/framing.h"

#include <gtest/gtest.h>

#include <google/protobuf/arena.h>
#include <zmq.hpp>

#include "tests/support/zmq_socket.h"

namespace crucible::protocol {
namespace {

v1::Envelope SampleLease() {
  v1::Envelope env;
  auto* lease = env.mutable_lease();
  lease->set_lease_id("r1-0-abc");
  lease->mutable_attempt()->set_run_id("r1");
  lease->mutable_attempt()->set_number(7);
  lease->mutable_task()->set_id("t-1234");
  lease->mutable_task()->add_fail_to_pass("tests.test_a::test_b");
  lease->mutable_agent()->set_name("oracle");
  lease->mutable_agent()->set_command("builtin:oracle");
  return env;
}

TEST(Framing, EncodeDecodeRoundTrip) {
  v1::Envelope env = SampleLease();
  auto frames = Encode(env);
  ASSERT_EQ(frames.size(), 2u);
  auto decoded = Decode(frames);
  ASSERT_TRUE(decoded) << decoded.error().ToString();
  EXPECT_EQ(decoded->SerializeAsString(), env.SerializeAsString());
  EXPECT_EQ(BodyName(*decoded), "lease");
}

TEST(Framing, RejectsOtherProtocolVersionNamingBoth) {
  auto frames = Encode(SampleLease(), kProtocolVersion + 6);
  auto decoded = Decode(frames);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().code(), Code::kVersionMismatch);
  EXPECT_NE(decoded.error().message().find("version 7"), std::string::npos)
      << decoded.error().message();
  EXPECT_NE(decoded.error().message().find("speaks 1"), std::string::npos);
}

TEST(Framing, RejectsWrongFrameCount) {
  auto frames = Encode(SampleLease());
  frames.emplace_back("extra", 5);
  auto decoded = Decode(frames);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().code(), Code::kCorruption);
  EXPECT_NE(decoded.error().message().find("got 3"), std::string::npos);
}

TEST(Framing, RejectsForeignHeader) {
  std::vector<zmq::message_t> frames;
  frames.emplace_back("HTTP/1.1", 8);
  frames.emplace_back("x", 1);
  auto decoded = Decode(frames);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().code(), Code::kCorruption);
  EXPECT_NE(decoded.error().message().find("frame 0"), std::string::npos);
}

TEST(Framing, RejectsGarbagePayload) {
  auto frames = Encode(SampleLease());
  frames[1] = zmq::message_t("\xff\xff\xff\xff\xff", 5);
  auto decoded = Decode(frames);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().code(), Code::kCorruption);
}

TEST(Framing, RejectsEnvelopeWithoutBody) {
  auto frames = Encode(v1::Envelope());
  auto decoded = Decode(frames);
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().message().find("no body"), std::string::npos);
}

TEST(Framing, RandomBytesNeverCrashTheDecoder) {
  uint32_t state = 12345;
  auto next = [&] { return state = state * 1103515245u + 12345u; };
  for (int i = 0; i < 5000; ++i) {
    std::vector<zmq::message_t> frames;
    int n = static_cast<int>(next() % 4);
    for (int f = 0; f < n; ++f) {
      std::string bytes(next() % 64, '\0');
      for (auto& c : bytes) c = static_cast<char>(next() >> 16);
      if (f == 0 && next() % 2) bytes.replace(0, std::min<size_t>(4, bytes.size()), "CRCB");
      frames.emplace_back(bytes.data(), bytes.size());
    }
    auto decoded = Decode(frames);
    if (decoded) {
      EXPECT_NE(decoded->body_case(), v1::Envelope::BODY_NOT_SET);
    }
  }
}

// A ROUTER bound at `endpoint` and a DEALER named `id` connected to it.
struct Link {
  Link(zmq::context_t& ctx, const std::string& endpoint, const std::string& id)
      : router(ctx, zmq::socket_type::router), dealer(ctx, zmq::socket_type::dealer) {
    crucible::testing::BoundSocket(router);
    crucible::testing::BoundSocket(dealer);
    router.bind(endpoint);
    dealer.set(zmq::sockopt::routing_id, id);
    dealer.connect(endpoint);
  }
  zmq::socket_t router;
  zmq::socket_t dealer;
};

TEST(Framing, RouterAndDealerTalkOverRealSockets) {
  zmq::context_t ctx;
  Link link(ctx, "inproc://framing-test", "runner-a");
  auto& [router, dealer] = link;

  v1::Envelope hello;
  hello.mutable_hello()->set_runner_name("runner-a");
  hello.mutable_hello()->set_slots(3);
  ASSERT_TRUE(Send(dealer, hello));
  auto got = Receive(router, /*router=*/true, 5000);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->peer, "runner-a");
  ASSERT_TRUE(got->envelope);
  EXPECT_EQ(got->envelope->hello().slots(), 3);

  ASSERT_TRUE(SendTo(router, got->peer, SampleLease()));
  auto back = Receive(dealer, /*router=*/false, 5000);
  ASSERT_TRUE(back.has_value());
  ASSERT_TRUE(back->envelope);
  EXPECT_EQ(back->envelope->lease().attempt().number(), 7u);

  // A peer speaking another version gets decoded into an error, not a crash.
  auto frames = Encode(hello, 2);
  dealer.send(frames[0], zmq::send_flags::sndmore);
  dealer.send(frames[1], zmq::send_flags::none);
  auto bad = Receive(router, true, 5000);
  ASSERT_TRUE(bad.has_value());
  ASSERT_FALSE(bad->envelope);
  EXPECT_EQ(bad->envelope.error().code(), Code::kVersionMismatch);
}

// The coordinator's receive path: raw frames, decoded onto an arena that is
// reset between messages; a bad message leaves the next one unaffected.
TEST(Framing, RawReceiveDecodesOntoAnArena) {
  zmq::context_t ctx;
  Link link(ctx, "inproc://framing-raw", "runner-b");
  auto& [router, dealer] = link;

  // Nothing queued: a zero wait returns at once.
  EXPECT_FALSE(ReceiveRaw(router, true, 0).has_value());

  v1::Envelope batch;
  batch.mutable_trace()->set_lease_id("l-1");
  for (uint64_t seq = 0; seq < 300; ++seq) {
    auto* ev = batch.mutable_trace()->add_events();
    ev->set_seq(seq);
    ev->set_name("read_file");
    ev->set_attrs_json(R"({"path":"src/a/rather/long/path/name.py"})");
  }
  ASSERT_TRUE(Send(dealer, batch));
  std::vector<zmq::message_t> garbage;
  garbage.emplace_back("junk", 4);
  ASSERT_TRUE(dealer.send(garbage[0], zmq::send_flags::none));
  ASSERT_TRUE(Send(dealer, SampleLease()));

  google::protobuf::Arena arena;
  auto first = ReceiveRaw(router, true, 5000);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->peer, "runner-b");
  auto* env = google::protobuf::Arena::CreateMessage<v1::Envelope>(&arena);
  ASSERT_TRUE(DecodeInto(first->frames, env));
  EXPECT_EQ(env->GetArena(), &arena);
  ASSERT_EQ(env->trace().events_size(), 300);
  EXPECT_EQ(env->trace().events(299).seq(), 299u);
  EXPECT_EQ(env->SerializeAsString(), batch.SerializeAsString());
  arena.Reset();

  // Already queued: taken with a zero wait.
  auto second = ReceiveRaw(router, true, 0);
  ASSERT_TRUE(second.has_value());
  env = google::protobuf::Arena::CreateMessage<v1::Envelope>(&arena);
  auto bad = DecodeInto(second->frames, env);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Code::kCorruption);
  arena.Reset();

  auto third = ReceiveRaw(router, true, 5000);
  ASSERT_TRUE(third.has_value());
  env = google::protobuf::Arena::CreateMessage<v1::Envelope>(&arena);
  ASSERT_TRUE(DecodeInto(third->frames, env));
  EXPECT_EQ(env->lease().attempt().number(), 7u);
}

TEST(Framing, ReceiveTimesOutWithNothing) {
  zmq::context_t ctx;
  zmq::socket_t router(ctx, zmq::socket_type::router);
  crucible::testing::BoundSocket(router);
  router.bind("inproc://framing-idle");
  EXPECT_FALSE(Receive(router, true, 50).has_value());
}

}  // namespace
}  // namespace crucible::protocol
