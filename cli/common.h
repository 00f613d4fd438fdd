// Pieces shared by the subcommands of the crucible binary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"
#include "protocol/curve.h"
#include "storage/store.h"

namespace CLI {
class App;
}

namespace crucible::cli {

// The database directory: `flag` when set, else $CRUCIBLE_DB, else ./.crucible.
std::string ResolveDbDir(const std::string& flag);

// Opens the database for a command. With `create` false a missing database is
// kNotFound "no Crucible database at DIR (mine a suite first, or pass --db)".
Result<storage::StorePtr> OpenDb(const std::string& flag, bool create);

// Opens an existing database for reading only, so that reports and listings
// work beside a coordinator daemon that holds it open for writing.
Result<storage::StorePtr> OpenDbForReading(const std::string& flag);

// An attempt as people name it: the run id and the attempt number that
// `crucible report RUN --by attempt` shows.
struct AttemptRef {
  std::string run_id;
  uint64_t number = 0;
};

// "RUN/NUMBER" or "RUN:NUMBER"; kInvalidArgument naming `text` otherwise.
Result<AttemptRef> ParseAttemptRef(const std::string& text);

// Parses an --agent value: "NAME=CMD", "builtin:oracle", "builtin:noop" or
// "NAME=builtin:X". A CMD whose first word is a relative path to an existing
// file gets that word made absolute (the runner binds it into the sandbox).
// "NAME=predictions:FILE" or "predictions:FILE" (named by the file's
// model_name_or_path) reads the SWE-bench predictions file here: the spec
// carries its patches, warnings and model, and the command
// "predictions:ABSFILE". kInvalidArgument / kNotFound naming the file when it
// cannot be read or holds no prediction.
Result<v1::AgentSpec> ParseAgentSpec(const std::string& text);

// Prints on stderr, as "warning: agent NAME: ...", the prediction warnings
// of `run`'s agents beyond those the same-named agent of `printed` already
// had (the ones the coordinator added: unknown instance ids).
void PrintPredictionWarnings(const v1::Run& run, const std::vector<v1::AgentSpec>& printed);

// Parses a --judge value, "NAME=COMMAND" (a script path made absolute as for
// agents). kInvalidArgument naming the value otherwise.
Result<v1::JudgeSpec> ParseJudgeSpec(const std::string& text);
// "NAME=COMMAND" of --reviewer, the command made absolute like an agent's.
Result<v1::ReviewerSpec> ParseReviewerSpec(const std::string& text);

// Runs `argv` (argv[0] looked up in PATH) with inherited stdio and waits.
// Returns its exit status, or an Error when it could not be started.
Result<int> RunProgram(const std::vector<std::string>& argv);

// Prints "crucible: error: MESSAGE" to stderr and returns 1.
int ReportError(const Error& error);

// Writes an HTML page (`--html FILE`) and prints the file's absolute path:
// 0, or 1 with the error ("writing the HTML report to FILE: ...").
int WriteHtmlPage(const std::string& file, const std::string& html);

// Moves this process into a mount namespace of its own (host mounts still
// propagate in, ours never out), so the tmpfs mounts it makes (workspace and
// report quotas) vanish with it even when it is killed. Must be called before
// any thread starts (unshare needs a single-threaded process); a failure is a
// warning naming `who`. Does nothing when not root.
void EnterPrivateMountNamespace(std::string_view who);

// Progress on stderr: rewrites one line on a terminal, prints a line per
// change otherwise.
void PrintProgress(const std::string& line, bool final);

struct EmbeddedRunOptions {
  std::string suite;
  std::vector<v1::AgentSpec> agents;
  int samples = 1;
  int runners = 2;
  bool held_out = false;            // the suite's held-out tasks instead of its dev tasks
  bool include_untestable = false;  // run the untestable tasks too (reported apart)
  bool quiet = false;
  std::string resume = {};  // a stored run to finish instead of a new one
  std::vector<v1::JudgeSpec> judges = {};
  std::vector<v1::ReviewerSpec> reviewers = {};
  std::vector<std::string> only_tasks = {};  // only these tasks of the split; empty: all
  bool include_mismatched = false;           // run the tasks whose environment check failed too
};

// Starts a coordinator and `runners` runner processes on ipc:// in a private
// temporary directory, runs every attempt, and returns the run id.
Result<std::string> RunEmbedded(storage::Store& store, const EmbeddedRunOptions& options);

// "[finished/total] done D, infra-failed F, running L, runners R, elapsed Ns,
// eta Ns": the progress line of `crucible run`, embedded or remote.
std::string ProgressLine(size_t total, size_t done, size_t failed, size_t leased, size_t runners,
                         long elapsed_s);

// ---- talking to a coordinator daemon (cli/farm_command.cc)

// The coordinator endpoint: `flag` when set, else $CRUCIBLE_COORDINATOR, else
// tcp://127.0.0.1:7400.
std::string ResolveCoordinator(const std::string& flag);

// CurveZMQ keys from a .key file (ours) and a .pub file (the coordinator's):
// nullopt when both are empty, an error naming the missing one when only one
// is given, or naming the file and its fault.
Result<std::optional<protocol::CurveClientKeys>> LoadCurveClientKeys(
    const std::string& secret_file, const std::string& coordinator_key_file);

// Adds --curve-secret and --coordinator-key to a client command; AskCoordinator
// and FollowRun then use them, or else $CRUCIBLE_CURVE_SECRET and
// $CRUCIBLE_COORDINATOR_KEY.
void AddClientCurveOptions(CLI::App* cmd);

// Sends `request` to the coordinator at `endpoint` from a fresh client
// socket and returns its answer. kUnavailable when none comes within
// `timeout_ms`; an ErrorReply becomes an Error with its message.
Result<v1::Envelope> AskCoordinator(const std::string& endpoint, const v1::Envelope& request,
                                    int timeout_ms = 10'000);

// Follows run `run_id` on the coordinator at `endpoint`, printing the progress
// line, until it is finished or cancelled, surviving coordinator restarts.
// Returns its final counts.
Result<v1::RunStatus> FollowRun(const std::string& endpoint, const std::string& run_id, bool quiet);

struct RemoteRun {
  v1::Run run;           // as the coordinator accepted it
  v1::RunStatus status;  // its final counts (when followed)
};

// Submits a run to the coordinator at `coordinator` and, with `follow`, prints
// "run R: N attempts ..." and follows it as `crucible run --coordinator` does
// (cli/run_command.cc).
Result<RemoteRun> SubmitAndFollow(const std::string& coordinator, const v1::SubmitRun& submit,
                                  bool follow);

}  // namespace crucible::cli
