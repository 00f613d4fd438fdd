// The farm: `crucible coordinator` (the daemon), and the clients that talk to
// it: `crucible status`, `crucible cancel`, `crucible wait` (and `crucible run
// --coordinator`, in run_command.cc, through FollowRun).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "coordinator/coordinator.h"
#include "coordinator/http_status.h"
#include "protocol/curve.h"
#include "protocol/framing.h"
#include "protocol/run_state.h"

namespace crucible::cli {

namespace {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

std::atomic<bool> g_stop{false};

void OnStopSignal(int) { g_stop = true; }

std::atomic<bool> g_reload_keys{false};

void OnReloadSignal(int) { g_reload_keys = true; }

// SIGHUP: the coordinator reads its --authorized-keys directory again; a
// broken directory keeps the keys it had.
void ReloadAuthorizedKeys(coordinator::Coordinator& coord, const std::string& dir) {
  auto keys = protocol::LoadAuthorizedKeys(dir);
  Status st = keys ? coord.SetAuthorizedKeys(*keys) : Status(Fail(keys.error()));
  if (!st) {
    spdlog::error("SIGHUP: keeping the authorized keys: {}", st.error().ToString());
    return;
  }
  spdlog::info("SIGHUP: {} authorized keys in {}", keys->size(), dir);
}

std::string ClientId() {
  static std::mt19937_64 rng(std::random_device{}());
  return fmt::format("client-{}-{:08x}", ::getpid(), rng() & 0xffffffffu);
}

zmq::context_t& ClientContext() {
  static zmq::context_t* ctx = new zmq::context_t();  // lives until exit
  return *ctx;
}

// --curve-secret and --coordinator-key of the client command being run (one
// a process).
std::string g_curve_secret_flag;
std::string g_coordinator_key_flag;

// CurveZMQ keys of this client process, from the flags or the environment;
// loaded once by LoadClientCurve().
std::optional<protocol::CurveClientKeys>& ClientCurve() {
  static std::optional<protocol::CurveClientKeys> keys;
  return keys;
}

Status LoadClientCurve() {
  static bool loaded = false;
  if (loaded) return {};
  auto flag_or_env = [](const std::string& flag, const char* env) {
    if (!flag.empty()) return flag;
    const char* v = std::getenv(env);
    return std::string(v != nullptr ? v : "");
  };
  CRUCIBLE_ASSIGN_OR_RETURN(
      ClientCurve(),
      LoadCurveClientKeys(flag_or_env(g_curve_secret_flag, "CRUCIBLE_CURVE_SECRET"),
                          flag_or_env(g_coordinator_key_flag, "CRUCIBLE_COORDINATOR_KEY")));
  loaded = true;
  return {};
}

// A client's socket, and with CurveZMQ the monitor that tells when the
// coordinator refused our key.
struct ClientConnection {
  std::unique_ptr<zmq::socket_t> socket;
  std::unique_ptr<protocol::HandshakeMonitor> monitor;  // declared after: ends first

  // An error when the coordinator refused our key.
  Status CheckRefused(const std::string& endpoint) {
    if (!monitor || monitor->Poll(0) != protocol::HandshakeMonitor::Event::kRefused) return {};
    return Fail(
        Code::kFailedPrecondition,
        fmt::format("coordinator at {} refused our key {} (status {}): its "
                    "--authorized-keys directory must hold our .pub file",
                    endpoint, ClientCurve()->own.public_key, monitor->last_failure_value()));
  }
};

Result<ClientConnection> ClientSocket(const std::string& endpoint) {
  CRUCIBLE_RETURN_IF_ERROR(LoadClientCurve());
  ClientConnection c;
  try {
    c.socket = std::make_unique<zmq::socket_t>(ClientContext(), zmq::socket_type::dealer);
    auto* s = c.socket.get();
    s->set(zmq::sockopt::linger, 200);
    s->set(zmq::sockopt::routing_id, ClientId());
    s->set(zmq::sockopt::reconnect_ivl, 100);
    s->set(zmq::sockopt::reconnect_ivl_max, 2000);
    // libzmq gives up a connection whose handshake failed (wrong or no keys),
    // and a DEALER without any would block sending.
    s->set(zmq::sockopt::sndtimeo, 1000);
    if (ClientCurve()) {
      CRUCIBLE_RETURN_IF_ERROR(protocol::ConfigureCurveClient(*s, *ClientCurve()));
      CRUCIBLE_ASSIGN_OR_RETURN(c.monitor, protocol::HandshakeMonitor::Attach(ClientContext(), *s));
    }
    s->connect(endpoint);
  } catch (const zmq::error_t& e) {
    return Fail(Code::kInvalidArgument,
                fmt::format("cannot connect to coordinator {}: {}", endpoint, e.what()));
  }
  return c;
}

// The hint added to "no answer" errors.
std::string NoAnswerHint() {
  return ClientCurve() ? " (is `crucible coordinator` running there, and is --coordinator-key "
                         "its public key?)"
                       : " (is `crucible coordinator` running there? A coordinator with "
                         "CurveZMQ keys answers only clients with --curve-secret and "
                         "--coordinator-key)";
}

// ------------------------------------------------------------ coordinator --

struct CoordinatorArgs {
  coordinator::CoordinatorOptions options;
  std::string db;
  bool insecure_bind = false;
  std::string curve_secret;     // --curve-secret: the coordinator's .key file
  std::string authorized_keys;  // --authorized-keys: directory of client .pub files
  std::string http;             // HOST:PORT of the status page; empty: none
};

int ServeCoordinator(CoordinatorArgs& args) {
  if (spdlog::get_level() > spdlog::level::info) spdlog::set_level(spdlog::level::info);
  const std::string& listen = args.options.listen;
  if (args.curve_secret.empty() != args.authorized_keys.empty()) {
    return ReportError(Error(Code::kInvalidArgument,
                             "--curve-secret and --authorized-keys go together: the coordinator's "
                             "key pair, and the directory of the public keys it lets in"));
  }
  if (!args.curve_secret.empty()) {
    auto keys = protocol::ReadKeyFile(args.curve_secret, /*need_secret=*/true);
    if (!keys) return ReportError(keys.error().Wrap("--curve-secret"));
    auto allowed = protocol::LoadAuthorizedKeys(args.authorized_keys);
    if (!allowed) return ReportError(allowed.error().Wrap("--authorized-keys"));
    args.options.curve = *keys;
    args.options.authorized_keys = *allowed;
    std::fprintf(stderr,
                 "crucible coordinator: CurveZMQ on: public key %s, %zu authorized keys in %s\n",
                 keys->public_key.c_str(), allowed->size(), args.authorized_keys.c_str());
  } else if (!coordinator::IsLocalEndpoint(listen)) {
    if (!args.insecure_bind) {
      return ReportError(Error(
          Code::kInvalidArgument,
          fmt::format("refusing to listen on {} without CurveZMQ keys: anyone who can reach it "
                      "could submit runs or pose as a runner. Give --curve-secret and "
                      "--authorized-keys (see `crucible keygen`), listen on a loopback address "
                      "(tcp://127.0.0.1:PORT), or pass --insecure (--insecure-bind) on a "
                      "trusted network",
                      listen)));
    }
    std::fprintf(stderr,
                 "crucible: warning: listening on %s WITHOUT encryption or authentication "
                 "(--insecure; CurveZMQ is not configured)\n",
                 listen.c_str());
  }
  auto store = OpenDb(args.db, /*create=*/true);
  if (!store) return ReportError(store.error());
  auto coord = coordinator::Coordinator::Create(**store, args.options);
  if (!coord) return ReportError(coord.error());
  auto resumed = (*coord)->ResumeAllRuns();
  if (!resumed) return ReportError(resumed.error().Wrap("resuming runs"));
  std::fprintf(stderr, "crucible coordinator listening on %s (database %s); %zu runs resumed\n",
               listen.c_str(), ResolveDbDir(args.db).c_str(), *resumed);
  if (!args.options.otlp.endpoint.empty()) {
    std::fprintf(stderr, "crucible coordinator: pushing finished attempts' spans to %s\n",
                 args.options.otlp.endpoint.c_str());
  }
  std::fflush(stderr);

  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  if (args.options.curve) {
    struct sigaction hup {};
    hup.sa_handler = OnReloadSignal;
    ::sigemptyset(&hup.sa_mask);
    ::sigaction(SIGHUP, &hup, nullptr);
  }
  std::unique_ptr<coordinator::StatusServer> http;
  if (!args.http.empty()) {
    auto server = coordinator::StatusServer::Start(args.http, store->get());
    if (!server) return ReportError(server.error());
    http = std::move(*server);
    std::fprintf(stderr, "crucible coordinator: status page on http://%s/ (metrics at /metrics)\n",
                 args.http.c_str());
  }
  const int64_t started_at_ms =
      std::chrono::duration_cast<Ms>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto last_publish = std::chrono::steady_clock::time_point{};
  // Serve calls this on the coordinator's thread about every 100 ms.
  auto st = (*coord)->Serve([&] {
    if (g_reload_keys.exchange(false)) ReloadAuthorizedKeys(**coord, args.authorized_keys);
    if (http && std::chrono::steady_clock::now() - last_publish >= std::chrono::seconds(1)) {
      last_publish = std::chrono::steady_clock::now();
      coordinator::StatusPage page;
      if (auto snapshot = (*coord)->Snapshot(); snapshot) page.status = std::move(*snapshot);
      page.counters = (*coord)->counters();
      page.started_at_ms = started_at_ms;
      page.listen = args.options.listen;
      coordinator::ReadProcessUsage(page);
      http->Publish(std::move(page));
    }
    return g_stop.load();
  });
  if (!st) return ReportError(st.error());
  std::fprintf(stderr,
               "crucible coordinator stopped; unfinished runs resume when it starts again\n");
  return 0;
}

// ----------------------------------------------------------------- status --

std::string Ago(int64_t wall_ms) {
  if (wall_ms <= 0) return "never";
  auto now =
      std::chrono::duration_cast<Ms>(std::chrono::system_clock::now().time_since_epoch()).count();
  return fmt::format("{:.1f}s ago", static_cast<double>(now - wall_ms) / 1000.0);
}

int Status(const std::string& endpoint, const std::string& run_id, int timeout_ms) {
  v1::Envelope req;
  req.mutable_status_request()->set_run_id(run_id);
  auto reply = AskCoordinator(endpoint, req, timeout_ms);
  if (!reply) return ReportError(reply.error());
  if (!reply->has_status_reply()) {
    return ReportError(
        Error(Code::kCorruption, "unexpected answer: " + protocol::BodyName(*reply)));
  }
  const auto& s = reply->status_reply();
  std::printf("coordinator %s\n", endpoint.c_str());
  std::printf("runs: %d%s\n", s.runs_size(), run_id.empty() ? " active" : "");
  for (const auto& r : s.runs()) {
    std::printf("  %s  suite %s  %s  total %d  done %d  failed %d  running %d  queued %d\n",
                r.run().id().c_str(), r.run().suite().c_str(), v1::RunStateName(r.run().state()),
                r.run().attempt_count(), r.done(), r.failed(), r.leased(), r.queued());
  }
  std::printf("runners: %d\n", s.runners_size());
  for (const auto& r : s.runners()) {
    std::string labels;
    for (const auto& l : r.labels()) labels += (labels.empty() ? "" : ",") + l;
    std::string repos;
    for (const auto& id : r.repos()) repos += (repos.empty() ? "" : ",") + id;
    std::printf("  %s  slots %d  busy %d  last heartbeat %s%s%s%s%s\n", r.name().c_str(), r.slots(),
                r.busy(), Ago(r.last_heartbeat_ms()).c_str(), labels.empty() ? "" : "  labels ",
                labels.c_str(), repos.empty() ? "" : "  repos ", repos.c_str());
  }
  std::printf("queue: %d attempts\n", s.queue_length());
  if (s.waiting_for_labels() > 0) {
    std::printf("waiting for labels: %d attempts (no connected runner has every --require label)\n",
                s.waiting_for_labels());
  }
  return 0;
}

int Cancel(const std::string& endpoint, const std::string& run_id, int timeout_ms) {
  v1::Envelope req;
  req.mutable_cancel_run()->set_run_id(run_id);
  auto reply = AskCoordinator(endpoint, req, timeout_ms);
  if (!reply) return ReportError(reply.error());
  const auto& s = reply->run_update().status();
  std::printf("run %s %s: done %d, failed %d, not run %d\n", run_id.c_str(),
              v1::RunStateName(s.run().state()), s.done(), s.failed(),
              s.run().attempt_count() - s.done() - s.failed());
  return 0;
}

}  // namespace

Result<std::optional<protocol::CurveClientKeys>> LoadCurveClientKeys(
    const std::string& secret_file, const std::string& coordinator_key_file) {
  if (secret_file.empty() && coordinator_key_file.empty()) return std::nullopt;
  if (secret_file.empty() || coordinator_key_file.empty()) {
    return Fail(Code::kInvalidArgument,
                fmt::format("CurveZMQ needs both our key pair (--curve-secret or "
                            "$CRUCIBLE_CURVE_SECRET) and the coordinator's public key "
                            "(--coordinator-key or $CRUCIBLE_COORDINATOR_KEY); only {} is set",
                            secret_file.empty() ? "the coordinator key" : "our key pair"));
  }
  protocol::CurveClientKeys keys;
  auto own = protocol::ReadKeyFile(secret_file, /*need_secret=*/true);
  if (!own) return Fail(own.error().Wrap("--curve-secret"));
  keys.own = *own;
  auto server = protocol::ReadKeyFile(coordinator_key_file, /*need_secret=*/false);
  if (!server) return Fail(server.error().Wrap("--coordinator-key"));
  keys.server_public_key = server->public_key;
  return keys;
}

void AddClientCurveOptions(CLI::App* cmd) {
  cmd->add_option("--curve-secret", g_curve_secret_flag,
                  "CurveZMQ: our key pair, a .key file from `crucible keygen` (default "
                  "$CRUCIBLE_CURVE_SECRET)");
  cmd->add_option("--coordinator-key", g_coordinator_key_flag,
                  "CurveZMQ: the coordinator's public key, its .pub file (default "
                  "$CRUCIBLE_COORDINATOR_KEY)");
}

std::string ResolveCoordinator(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("CRUCIBLE_COORDINATOR");
  if (env != nullptr && *env != '\0') return env;
  return "tcp://127.0.0.1:7400";
}

Result<v1::Envelope> AskCoordinator(const std::string& endpoint, const v1::Envelope& request,
                                    int timeout_ms) {
  CRUCIBLE_ASSIGN_OR_RETURN(auto conn, ClientSocket(endpoint));
  auto& socket = conn.socket;
  CRUCIBLE_RETURN_IF_ERROR(protocol::Send(*socket, request));
  auto deadline = Clock::now() + Ms(timeout_ms);
  while (Clock::now() < deadline) {
    auto msg = protocol::Receive(*socket, false, 100);
    CRUCIBLE_RETURN_IF_ERROR(conn.CheckRefused(endpoint));
    if (!msg) continue;
    if (!msg->envelope) return Fail(msg->envelope.error().Wrap("coordinator's answer"));
    if (msg->envelope->has_error()) {
      return Fail(Code::kFailedPrecondition,
                  "coordinator says: " + msg->envelope->error().message());
    }
    return *msg->envelope;
  }
  return Fail(Code::kUnavailable, fmt::format("no answer from a coordinator at {} within {} ms{}",
                                              endpoint, timeout_ms, NoAnswerHint()));
}

Result<v1::RunStatus> FollowRun(const std::string& endpoint, const std::string& run_id,
                                bool quiet) {
  CRUCIBLE_ASSIGN_OR_RETURN(auto conn, ClientSocket(endpoint));
  auto& socket = conn.socket;
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  auto start = Clock::now();
  auto last_heard = Clock::now();
  auto last_watch = Clock::now() - Ms(10'000);
  bool warned = false;
  int32_t last_done = -1, last_failed = -1, last_leased = -1, last_runners = -1;
  while (!g_stop) {
    // Watching is idempotent; asking again now and then survives a restart
    // of the coordinator (the new one knows nothing of this client).
    if (Clock::now() - last_watch > Ms(2000)) {
      v1::Envelope watch;
      watch.mutable_watch_run()->set_run_id(run_id);
      (void)protocol::Send(*socket, watch);
      last_watch = Clock::now();
    }
    if (!warned && Clock::now() - last_heard > Ms(10'000)) {
      std::fprintf(stderr,
                   "\ncrucible: no word from the coordinator at %s for 10 s; still "
                   "waiting (Ctrl-C stops waiting, not the run)\n",
                   endpoint.c_str());
      warned = true;
    }
    auto msg = protocol::Receive(*socket, false, 200);
    CRUCIBLE_RETURN_IF_ERROR(conn.CheckRefused(endpoint));
    if (!msg || !msg->envelope) continue;
    last_heard = Clock::now();
    warned = false;
    const v1::Envelope& env = *msg->envelope;
    if (env.has_error()) {
      return Fail(Code::kFailedPrecondition, "coordinator says: " + env.error().message());
    }
    if (!env.has_run_update()) continue;
    const auto& u = env.run_update();
    const auto& s = u.status();
    if (!quiet && (u.finished() || s.done() != last_done || s.failed() != last_failed ||
                   s.leased() != last_leased || u.runners() != last_runners)) {
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start).count();
      PrintProgress(ProgressLine(s.run().attempt_count(), s.done(), s.failed(), s.leased(),
                                 u.runners(), secs),
                    u.finished());
      last_done = s.done();
      last_failed = s.failed();
      last_leased = s.leased();
      last_runners = u.runners();
    }
    if (u.finished()) return s;
  }
  return Fail(Code::kUnavailable, "stopped waiting for run " + run_id + "; it goes on");
}

void AddCoordinatorCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<CoordinatorArgs>();
  args->options.listen = "tcp://127.0.0.1:7400";
  auto* cmd = app.add_subcommand(
      "coordinator",
      "Coordinator daemon: queue the attempts of every run, lease them to runners, store their "
      "evidence. Serves any number of runs; resumes unfinished ones on start.");
  cmd->add_option("--listen", args->options.listen, "ZeroMQ endpoint to bind")
      ->capture_default_str();
  cmd->add_option("--db", args->db, "database directory (default $CRUCIBLE_DB or ./.crucible)");
  cmd->add_option("--http", args->http,
                  "serve a status page, /status.json and Prometheus /metrics on HOST:PORT "
                  "(e.g. 127.0.0.1:7401)");
  cmd->add_flag("--insecure,--insecure-bind", args->insecure_bind,
                "allow a non-loopback --listen address without CurveZMQ keys");
  cmd->add_option("--curve-secret", args->curve_secret,
                  "CurveZMQ: the coordinator's key pair (a .key file from `crucible keygen`); "
                  "traffic is encrypted and only authorized keys get in");
  cmd->add_option("--authorized-keys", args->authorized_keys,
                  "CurveZMQ: directory whose *.pub files are the runner and client keys let in "
                  "(with --curve-secret)");
  cmd->add_option("--heartbeat-ms", args->options.heartbeat_ms, "heartbeat interval")
      ->capture_default_str();
  cmd->add_option("--liveness", args->options.liveness,
                  "heartbeats a runner may miss before it is taken as gone")
      ->capture_default_str();
  cmd->add_option("--grace-ms", args->options.grace_ms,
                  "then its leases go back to the queue after this")
      ->capture_default_str();
  cmd->add_option("--lease-ms", args->options.lease_ms, "lease deadline, renewed by heartbeats")
      ->capture_default_str();
  cmd->add_option("--max-tries", args->options.max_tries,
                  "tries of an attempt before it fails as an infrastructure error")
      ->capture_default_str();
  cmd->add_option("--agent-event-budget", args->options.agent_event_budget,
                  "agent trace events kept per attempt; the excess is counted and dropped "
                  "(0: no limit)")
      ->capture_default_str();
  cmd->add_option("--max-unacked-batches", args->options.max_unacked_batches,
                  "trace batches a runner may have unacknowledged")
      ->capture_default_str();
  cmd->add_option("--otlp-endpoint", args->options.otlp.endpoint,
                  "push each finished attempt's trace as OTLP/HTTP JSON spans to this URL, "
                  "http://HOST:PORT[/PATH] (path default /v1/traces): an OpenTelemetry "
                  "collector, Phoenix, Jaeger");
  cmd->add_option("--otlp-timeout-ms", args->options.otlp.timeout_ms,
                  "connect, send and receive timeout of each OTLP push (retried with backoff)")
      ->capture_default_str();
  cmd->callback([args, exit_code] { *exit_code = ServeCoordinator(*args); });
}

namespace {

// --coordinator of the client commands.
void AddCoordinatorOption(CLI::App* cmd, std::string* endpoint) {
  cmd->add_option("--coordinator", *endpoint,
                  "coordinator endpoint (default $CRUCIBLE_COORDINATOR or tcp://127.0.0.1:7400)");
  AddClientCurveOptions(cmd);
}

// --timeout-ms of the client commands that wait for one answer.
void AddTimeoutOption(CLI::App* cmd, int* timeout_ms) {
  cmd->add_option("--timeout-ms", *timeout_ms, "how long to wait for an answer")
      ->capture_default_str();
}

}  // namespace

void AddStatusCommand(CLI::App& app, int* exit_code) {
  auto run_id = std::make_shared<std::string>();
  auto endpoint = std::make_shared<std::string>();
  auto timeout = std::make_shared<int>(10'000);
  auto* cmd =
      app.add_subcommand("status", "Show the runs, runners and queue of a coordinator daemon.");
  cmd->add_option("run", *run_id, "only this run (finished ones too)");
  AddCoordinatorOption(cmd, endpoint.get());
  AddTimeoutOption(cmd, timeout.get());
  cmd->callback([=] { *exit_code = Status(ResolveCoordinator(*endpoint), *run_id, *timeout); });
}

void AddCancelCommand(CLI::App& app, int* exit_code) {
  auto run_id = std::make_shared<std::string>();
  auto endpoint = std::make_shared<std::string>();
  auto timeout = std::make_shared<int>(10'000);
  auto* cmd = app.add_subcommand(
      "cancel", "Cancel a run on a coordinator daemon: nothing more of it is handed out.");
  cmd->add_option("run", *run_id, "run id")->required();
  AddCoordinatorOption(cmd, endpoint.get());
  AddTimeoutOption(cmd, timeout.get());
  cmd->callback([=] { *exit_code = Cancel(ResolveCoordinator(*endpoint), *run_id, *timeout); });
}

void AddWaitCommand(CLI::App& app, int* exit_code) {
  auto run_id = std::make_shared<std::string>();
  auto endpoint = std::make_shared<std::string>();
  auto quiet = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
      "wait",
      "Follow a run on a coordinator daemon until it ends; exit status 0 when it "
      "finished, 1 when it was cancelled.");
  cmd->add_option("run", *run_id, "run id")->required();
  AddCoordinatorOption(cmd, endpoint.get());
  cmd->add_flag("-q,--quiet", *quiet, "no progress line");
  cmd->callback([=] {
    auto s = FollowRun(ResolveCoordinator(*endpoint), *run_id, *quiet);
    if (!s) {
      *exit_code = ReportError(s.error());
      return;
    }
    std::printf("run %s %s: done %d, infra-failed %d of %d\n", run_id->c_str(),
                v1::RunStateName(s->run().state()), s->done(), s->failed(),
                s->run().attempt_count());
    *exit_code = s->run().state() == v1::Run::FINISHED ? 0 : 1;
  });
}

}  // namespace crucible::cli
