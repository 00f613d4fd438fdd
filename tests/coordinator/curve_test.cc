// CurveZMQ on the coordinator's ROUTER over real tcp://127.0.0.1 sockets: key
// files, the authorized keys directory, and the ZAP handler letting in only
// authorized keys while it keeps serving everyone else.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <zmq.hpp>

#include "base/fs.h"
#include "coordinator/coordinator.h"
#include "protocol/curve.h"
#include "protocol/framing.h"
#include "tests/support/free_port.h"
#include "tests/support/zmq_socket.h"

namespace crucible::coordinator {
namespace {

using protocol::HandshakeMonitor;

using testing::FreePort;

mode_t Mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

class CurveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!protocol::CurveAvailable()) GTEST_SKIP() << "libzmq without CURVE";
    auto dir = TempDir::Create("crucible-curve-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
  }
  std::string Path(const std::string& name) { return dir_->path() + "/" + name; }

  std::unique_ptr<TempDir> dir_;
};

TEST_F(CurveTest, KeyFilesRoundTripWithPrivateModeAndNoOverwrite) {
  auto keys = protocol::GenerateKeyPair();
  ASSERT_TRUE(keys) << keys.error().ToString();
  ASSERT_TRUE(protocol::WriteKeyFiles(Path("runner"), *keys, false));
  EXPECT_EQ(Mode(Path("runner.key")), 0600u);
  EXPECT_EQ(Mode(Path("runner.pub")), 0644u);

  auto pair = protocol::ReadKeyFile(Path("runner.key"), true);
  ASSERT_TRUE(pair) << pair.error().ToString();
  EXPECT_EQ(pair->public_key, keys->public_key);
  EXPECT_EQ(pair->secret_key, keys->secret_key);
  auto pub = protocol::ReadKeyFile(Path("runner.pub"), false);
  ASSERT_TRUE(pub) << pub.error().ToString();
  EXPECT_EQ(pub->public_key, keys->public_key);
  EXPECT_TRUE(pub->secret_key.empty());
  auto pub_text = ReadFile(Path("runner.pub"));
  ASSERT_TRUE(pub_text);
  EXPECT_EQ(pub_text->find(keys->secret_key), std::string::npos) << "secret in the .pub file";

  // The .pub is no key pair.
  auto wrong = protocol::ReadKeyFile(Path("runner.pub"), true);
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message().find("no secret-key"), std::string::npos);

  // Existing files are kept unless forced.
  auto other = protocol::GenerateKeyPair();
  ASSERT_TRUE(other);
  auto again = protocol::WriteKeyFiles(Path("runner"), *other, false);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Code::kAlreadyExists);
  EXPECT_NE(again.error().message().find("runner.key exists"), std::string::npos)
      << again.error().message();
  EXPECT_EQ(protocol::ReadKeyFile(Path("runner.key"), true)->public_key, keys->public_key);
  ASSERT_TRUE(::chmod(Path("runner.key").c_str(), 0644) == 0);
  ASSERT_TRUE(protocol::WriteKeyFiles(Path("runner"), *other, true));
  EXPECT_EQ(protocol::ReadKeyFile(Path("runner.key"), true)->public_key, other->public_key);
  EXPECT_EQ(Mode(Path("runner.key")), 0600u) << "--force keeps the secret private";
}

TEST_F(CurveTest, AuthorizedKeysNameTheMalformedFile) {
  ASSERT_TRUE(MakeDirs(Path("keys")));
  auto keys = protocol::GenerateKeyPair();
  ASSERT_TRUE(keys);
  ASSERT_TRUE(protocol::WriteKeyFiles(Path("keys/good"), *keys, false));
  ASSERT_TRUE(RemoveAll(Path("keys/good.key")));
  ASSERT_TRUE(WriteFile(Path("keys/notes.txt"), "not a key, and not a .pub\n"));
  auto loaded = protocol::LoadAuthorizedKeys(Path("keys"));
  ASSERT_TRUE(loaded) << loaded.error().ToString();
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ((*loaded)[0].public_key, keys->public_key);

  ASSERT_TRUE(WriteFile(Path("keys/bad.pub"), "public-key = \"tooshort\"\n"));
  auto bad = protocol::LoadAuthorizedKeys(Path("keys"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("bad.pub"), std::string::npos) << bad.error().message();
  EXPECT_NE(bad.error().message().find("not a Z85 key"), std::string::npos)
      << bad.error().message();

  ASSERT_TRUE(WriteFile(Path("keys/bad.pub"), "garbage\n"));
  bad = protocol::LoadAuthorizedKeys(Path("keys"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("bad.pub line 1"), std::string::npos)
      << bad.error().message();

  ASSERT_TRUE(MakeDirs(Path("empty")));
  EXPECT_FALSE(protocol::LoadAuthorizedKeys(Path("empty")));
  EXPECT_FALSE(protocol::LoadAuthorizedKeys(Path("missing")));
}

// A client DEALER with optional CURVE keys and a handshake monitor. With
// `immediate`, the socket queues messages only on a connection whose handshake
// succeeded.
struct Client {
  Client(zmq::context_t& ctx, const std::string& endpoint,
         const std::optional<protocol::CurveClientKeys>& keys, bool immediate = false)
      : socket(ctx, zmq::socket_type::dealer) {
    // A DEALER with no pipe (a refused CURVE handshake can end the only one)
    // blocks a send until a pipe appears, which may be never: bounded, the
    // send fails instead.
    testing::BoundSocket(socket, 2000);
    socket.set(zmq::sockopt::immediate, immediate);
    socket.set(zmq::sockopt::reconnect_ivl, 100);
    if (keys) {
      EXPECT_TRUE(protocol::ConfigureCurveClient(socket, *keys));
      auto m = HandshakeMonitor::Attach(ctx, socket);
      EXPECT_TRUE(m);
      if (m) monitor = std::move(*m);
    }
    socket.connect(endpoint);
  }
  ~Client() { monitor.reset(); }
  // Asks for the status; true when a StatusReply came within `ms`, false
  // also when the request could not even be queued.
  bool Ask(int ms) {
    v1::Envelope req;
    req.mutable_status_request();
    if (!protocol::Send(socket, req)) return false;
    auto msg = protocol::Receive(socket, false, ms);
    return msg && msg->envelope && msg->envelope->has_status_reply();
  }
  zmq::socket_t socket;
  std::unique_ptr<HandshakeMonitor> monitor;
};

TEST_F(CurveTest, OnlyAuthorizedKeysGetInAndRefusalsAreCounted) {
  auto server = protocol::GenerateKeyPair();
  auto good = protocol::GenerateKeyPair();
  auto stranger = protocol::GenerateKeyPair();
  ASSERT_TRUE(server && good && stranger);
  auto store = storage::Store::Open(Path("db"));
  ASSERT_TRUE(store) << store.error().ToString();

  CoordinatorOptions options;
  options.listen = "tcp://127.0.0.1:" + std::to_string(FreePort());
  options.curve = *server;
  options.authorized_keys = {{.public_key = good->public_key, .file = "good.pub"}};
  auto created = Coordinator::Create(**store, options);
  ASSERT_TRUE(created) << created.error().ToString();
  auto& c = *created;
  std::atomic<bool> stop{false};
  std::thread serving([&] { EXPECT_TRUE(c->Serve([&] { return stop.load(); })); });

  zmq::context_t ctx;
  {
    // Immediate: the intruder never has a pipe, as happens at random when its
    // refused connection is dropped; asking must still come back.
    Client intruder(
        ctx, options.listen,
        protocol::CurveClientKeys{.own = *stranger, .server_public_key = server->public_key},
        /*immediate=*/true);
    EXPECT_EQ(intruder.monitor->Poll(5000), HandshakeMonitor::Event::kRefused);
    EXPECT_EQ(intruder.monitor->last_failure_value(), 400);

    // No keys at all: nothing gets through.
    Client plain(ctx, options.listen, std::nullopt);
    EXPECT_FALSE(plain.Ask(1000));

    // The authorized client is served all along.
    Client friendly(
        ctx, options.listen,
        protocol::CurveClientKeys{.own = *good, .server_public_key = server->public_key});
    EXPECT_TRUE(friendly.Ask(5000));
    EXPECT_FALSE(intruder.Ask(300));
    EXPECT_TRUE(friendly.Ask(5000));
  }
  stop = true;
  serving.join();
  EXPECT_GE(c->refused_connections(), 1u);
  EXPECT_EQ(c->malformed_messages(), 0u);
}

TEST_F(CurveTest, CurveNeedsAuthorizedKeysAndTheOtherWayRound) {
  auto server = protocol::GenerateKeyPair();
  ASSERT_TRUE(server);
  auto store = storage::Store::Open(Path("db"));
  ASSERT_TRUE(store);
  CoordinatorOptions options;
  options.listen = "tcp://127.0.0.1:" + std::to_string(FreePort());
  options.curve = *server;
  EXPECT_FALSE(Coordinator::Create(**store, options));
  options.curve.reset();
  options.authorized_keys = {{.public_key = server->public_key, .file = "x.pub"}};
  EXPECT_FALSE(Coordinator::Create(**store, options));
}

}  // namespace
}  // namespace crucible::coordinator
