// The farm secured with CurveZMQ, through the real crucible binary on
// tcp://127.0.0.1: `crucible keygen`, a coordinator with --curve-secret and
// --authorized-keys, an authorized runner that completes a run, a runner
// with an unknown key that is refused (and told so) while the coordinator
// keeps serving, clients with and without keys, and the start-up errors.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "base/fs.h"
#include "tests/farm/farm_support.h"
#include "tests/support/free_port.h"
#include "tests/support/run_command.h"

namespace crucible {
namespace {

using std::chrono::milliseconds;
using testing::Crucible;
using testing::Daemon;
using testing::Quote;
using testing::Sh;

using testing::FreePort;

class CurveCli : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("crucible-curve-farm-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    ASSERT_TRUE(MakeDirs(Path("authorized")));
  }
  std::string Path(const std::string& name) { return dir_->path() + "/" + name; }
  // `crucible keygen --out PATH`, checked.
  void Keygen(const std::string& name) {
    auto out = Crucible("keygen --out " + Quote(Path(name)));
    ASSERT_EQ(out.status, 0) << out.text;
  }
  std::string ReadLog(const std::string& name) {
    auto text = ReadFile(Path(name));
    return text ? "\n--- " + name + ":\n" + *text : "";
  }
  std::unique_ptr<TempDir> dir_;
};

TEST_F(CurveCli, KeygenWritesAPrivateKeyPairAndRefusesToOverwrite) {
  Keygen("runner-1");
  struct stat st {};
  ASSERT_EQ(::stat(Path("runner-1.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(Path("runner-1.pub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  auto key = ReadFile(Path("runner-1.key"));
  auto pub = ReadFile(Path("runner-1.pub"));
  ASSERT_TRUE(key && pub);
  EXPECT_NE(key->find("secret-key = \""), std::string::npos) << *key;
  EXPECT_NE(key->find("public-key = \""), std::string::npos) << *key;
  EXPECT_EQ(pub->find("secret-key"), std::string::npos) << *pub;
  EXPECT_NE(pub->find("public-key = \""), std::string::npos) << *pub;

  auto again = Crucible("keygen --out " + Quote(Path("runner-1")));
  EXPECT_NE(again.status, 0);
  EXPECT_NE(again.text.find("runner-1.key exists"), std::string::npos) << again.text;
  EXPECT_NE(again.text.find("--force"), std::string::npos) << again.text;
  EXPECT_EQ(*ReadFile(Path("runner-1.key")), *key) << "the old key was overwritten";

  auto forced = Crucible("keygen --force --out " + Quote(Path("runner-1")));
  EXPECT_EQ(forced.status, 0) << forced.text;
  EXPECT_NE(*ReadFile(Path("runner-1.key")), *key);
}

TEST_F(CurveCli, BadKeySetUpsAreStartUpErrors) {
  Keygen("coordinator");
  Keygen("authorized/runner-1");
  std::string listen =
      " --listen tcp://127.0.0.1:" + std::to_string(FreePort()) + " --db " + Quote(Path("db"));
  // A malformed .pub among the authorized keys names the file.
  ASSERT_TRUE(WriteFile(Path("authorized/broken.pub"), "public-key = \"not a key\"\n"));
  auto out = Crucible("coordinator" + listen + " --curve-secret " + Quote(Path("coordinator.key")) +
                      " --authorized-keys " + Quote(Path("authorized")));
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.text.find("broken.pub"), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("not a Z85 key"), std::string::npos) << out.text;

  // One without the other.
  out = Crucible("coordinator" + listen + " --curve-secret " + Quote(Path("coordinator.key")));
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.text.find("--curve-secret and --authorized-keys go together"), std::string::npos)
      << out.text;
  out = Crucible("coordinator" + listen + " --authorized-keys " + Quote(Path("authorized")));
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.text.find("go together"), std::string::npos) << out.text;

  // The public key is not a key pair.
  ASSERT_TRUE(RemoveAll(Path("authorized/broken.pub")));
  out = Crucible("coordinator" + listen + " --curve-secret " + Quote(Path("coordinator.pub")) +
                 " --authorized-keys " + Quote(Path("authorized")));
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.text.find("coordinator.pub: no secret-key"), std::string::npos) << out.text;

  // A client with half its keys.
  out = Crucible("status --timeout-ms 500 --coordinator tcp://127.0.0.1:1 --curve-secret " +
                 Quote(Path("coordinator.key")));
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.text.find("CurveZMQ needs both"), std::string::npos) << out.text;
}

TEST_F(CurveCli, NonLoopbackListenWithoutKeysNeedsInsecure) {
  auto out = Crucible("coordinator --listen tcp://0.0.0.0:" + std::to_string(FreePort()) +
                      " --db " + Quote(Path("db")));
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.text.find("refusing to listen"), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("--curve-secret"), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("--insecure"), std::string::npos) << out.text;
}

// Root: the runner performs attempts in the sandbox.
class CurveFarm : public CurveCli {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "runners need root for the sandbox (CI runs as root)";
    CurveCli::SetUp();
    auto mined = testing::MineFixtureSuite(Path("repo"), Path("db"), "fx");
    ASSERT_EQ(mined.status, 0) << mined.text;
    Keygen("coordinator");
    Keygen("authorized/runner-1");
    Keygen("authorized/client");
    Keygen("stranger");  // not in authorized/
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(FreePort());
  }

  // --curve-secret and --coordinator-key for the key pair `name`.
  std::string Keys(const std::string& name) {
    return " --curve-secret " + Quote(Path(name + ".key")) + " --coordinator-key " +
           Quote(Path("coordinator.pub"));
  }

  std::string endpoint_;
};

TEST_F(CurveFarm, AuthorizedRunnerCompletesARunAndUnknownKeysAreRefused) {
  Daemon coordinator(
      {"coordinator", "--listen", endpoint_, "--db", Path("db"), "--curve-secret",
       Path("coordinator.key"), "--authorized-keys", Path("authorized"), "--heartbeat-ms", "200"},
      Path("coordinator.log"));
  // Up when an authorized client gets an answer.
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    up = Crucible("status --timeout-ms 500 --coordinator " + endpoint_ + Keys("authorized/client"))
             .status == 0;
  }
  ASSERT_TRUE(up) << ReadLog("coordinator.log");

  // A runner whose key is not authorized is refused and says so.
  auto stranger =
      Crucible("runner --coordinator " + endpoint_ + " --workdir " + Quote(Path("w-stranger")) +
               " --name stranger --connect-timeout-ms " + "1500" + Keys("stranger"));
  EXPECT_NE(stranger.status, 0);
  EXPECT_NE(stranger.text.find("refused our key"), std::string::npos) << stranger.text;
  // Another one keeps trying all along the run below, in vain.
  Daemon intruder(
      {"runner", "--coordinator", endpoint_, "--workdir", Path("w-intruder"), "--name", "intruder",
       "--curve-secret", Path("stranger.key"), "--coordinator-key", Path("coordinator.pub")},
      Path("intruder.log"));

  // A client without keys gets nothing, and a clear error.
  auto plain = Crucible("status --timeout-ms 1000 --coordinator " + endpoint_);
  EXPECT_NE(plain.status, 0);
  EXPECT_NE(plain.text.find("no answer from a coordinator"), std::string::npos) << plain.text;
  EXPECT_NE(plain.text.find("--curve-secret"), std::string::npos) << plain.text;

  // The authorized runner does the work; the client's keys come from the
  // environment this time.
  Daemon runner({"runner", "--coordinator", endpoint_, "--workdir", Path("w-1"), "--name",
                 "runner-1", "--curve-secret", Path("authorized/runner-1.key"), "--coordinator-key",
                 Path("coordinator.pub")},
                Path("runner-1.log"));
  auto run = Sh("CRUCIBLE_CURVE_SECRET=" + Quote(Path("authorized/client.key")) +
                " CRUCIBLE_COORDINATOR_KEY=" + Quote(Path("coordinator.pub")) + " timeout 60 " +
                CRUCIBLE_BIN + " run --suite fx --agent builtin:oracle --samples 2 --coordinator " +
                endpoint_);
  EXPECT_EQ(run.status, 0) << run.text << ReadLog("coordinator.log") << ReadLog("runner-1.log");
  EXPECT_NE(run.text.find("finished: done 4, infra-failed 0 of 4"), std::string::npos) << run.text;

  auto log = ReadLog("coordinator.log");
  EXPECT_NE(log.find("is not authorized (#2)"), std::string::npos) << log;
  EXPECT_NE(log.find("refused a connection from 127.0.0.1"), std::string::npos) << log;
  EXPECT_NE(ReadLog("intruder.log").find("refused our key"), std::string::npos)
      << ReadLog("intruder.log");
  auto status = Crucible("status --coordinator " + endpoint_ + Keys("authorized/client"));
  EXPECT_EQ(status.status, 0) << status.text;
  EXPECT_NE(status.text.find("runner-1"), std::string::npos) << status.text;
  EXPECT_EQ(status.text.find("intruder"), std::string::npos) << status.text;

  // SIGHUP reads the authorized keys again: the stranger's key now works.
  auto stranger_status = "status --timeout-ms 1000 --coordinator " + endpoint_ + Keys("stranger");
  auto refused = Crucible(stranger_status);
  EXPECT_NE(refused.status, 0);
  EXPECT_NE(refused.text.find("refused our key"), std::string::npos) << refused.text;
  ASSERT_TRUE(WriteFile(Path("authorized/stranger.pub"), *ReadFile(Path("stranger.pub"))));
  coordinator.Signal(SIGHUP);
  bool in = false;
  for (int i = 0; i < 50 && !in; ++i) {
    in = Crucible(stranger_status).status == 0;
    if (!in) std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(in) << ReadLog("coordinator.log");
  EXPECT_NE(ReadLog("coordinator.log").find("SIGHUP: 3 authorized keys"), std::string::npos)
      << ReadLog("coordinator.log");
  runner.Signal(SIGTERM);
  EXPECT_EQ(runner.Wait(milliseconds(10'000)), 0) << ReadLog("runner-1.log");
  coordinator.Signal(SIGTERM);
  EXPECT_EQ(coordinator.Wait(milliseconds(10'000)), 0) << ReadLog("coordinator.log");
}

}  // namespace
}  // namespace crucible
