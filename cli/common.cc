#include "cli/common.h"

#include <sched.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "agent-runner/mutants.h"
#include "base/fs.h"
#include "golden/predictions.h"
#include "protocol/golden_task.h"
#include "scoring/calibration.h"

extern char** environ;

namespace crucible::cli {

std::string ResolveDbDir(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("CRUCIBLE_DB");
  if (env != nullptr && *env != '\0') return env;
  return "./.crucible";
}

namespace {

Result<storage::StorePtr> OpenDbWith(const std::string& flag, storage::OpenOptions options) {
  std::string dir = ResolveDbDir(flag);
  if (!options.create_if_missing && !std::filesystem::exists(dir)) {
    return Fail(Code::kNotFound,
                fmt::format("no Crucible database at {} (mine a suite first, or pass --db)", dir));
  }
  return storage::Store::Open(dir, options);
}

}  // namespace

Result<storage::StorePtr> OpenDb(const std::string& flag, bool create) {
  return OpenDbWith(flag, storage::OpenOptions{.create_if_missing = create});
}

Result<storage::StorePtr> OpenDbForReading(const std::string& flag) {
  return OpenDbWith(flag, storage::OpenOptions{.create_if_missing = false, .read_only = true});
}

Result<AttemptRef> ParseAttemptRef(const std::string& text) {
  const size_t cut = text.find_last_of("/:");
  auto bad = [&] {
    return Fail(Code::kInvalidArgument,
                fmt::format("attempt '{}': expected RUN/NUMBER, the run id and the attempt "
                            "number that `crucible report RUN --by attempt` shows (e.g. "
                            "r20261130-101500-ab12/3)",
                            text));
  };
  if (cut == std::string::npos || cut == 0 || cut + 1 == text.size()) return bad();
  AttemptRef ref{text.substr(0, cut), 0};
  const char* begin = text.data() + cut + 1;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(begin, end, ref.number);
  if (ec != std::errc() || p != end) return bad();
  return ref;
}

Result<v1::JudgeSpec> ParseJudgeSpec(const std::string& text) {
  auto eq = text.find('=');
  if (text.starts_with("builtin:") || eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
    return Fail(Code::kInvalidArgument, fmt::format("--judge '{}': expected NAME=COMMAND", text));
  }
  CRUCIBLE_ASSIGN_OR_RETURN(v1::AgentSpec as_agent, ParseAgentSpec(text));
  v1::JudgeSpec judge;
  judge.set_name(as_agent.name());
  judge.set_command(as_agent.command());
  return judge;
}

Result<v1::ReviewerSpec> ParseReviewerSpec(const std::string& text) {
  auto eq = text.find('=');
  if (text.starts_with("builtin:") || eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
    return Fail(Code::kInvalidArgument,
                fmt::format("--reviewer '{}': expected NAME=COMMAND", text));
  }
  CRUCIBLE_ASSIGN_OR_RETURN(v1::AgentSpec as_agent, ParseAgentSpec(text));
  v1::ReviewerSpec reviewer;
  reviewer.set_name(as_agent.name());
  reviewer.set_command(as_agent.command());
  return reviewer;
}

namespace {

// An agent whose patches come from a predictions file (golden/predictions.h):
// the file is read here, on the client, and travels in the agent spec.
Result<v1::AgentSpec> PredictionsAgent(const std::string& text, std::string name,
                                       const std::string& file) {
  if (file.empty()) {
    return Fail(Code::kInvalidArgument,
                fmt::format("--agent '{}': expected predictions:FILE", text));
  }
  // Absolute, so its warnings name the file as the coordinator's do.
  const std::string abs = std::filesystem::absolute(file).lexically_normal().string();
  CRUCIBLE_ASSIGN_OR_RETURN(golden::Predictions preds, golden::LoadPredictions(abs));
  v1::AgentSpec spec;
  if (name.empty()) {
    if (preds.models.empty() || preds.models.front().empty()) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("--agent '{}': the file names no model_name_or_path to name the "
                              "agent; give one as NAME=predictions:FILE",
                              text));
    }
    name = preds.models.front();
  }
  spec.set_name(name);
  spec.set_command(v1::kPredictionsPrefix + abs);
  if (!preds.models.empty()) spec.set_model(preds.models.front());
  for (auto& [id, p] : preds.by_id) (*spec.mutable_predictions())[id] = std::move(p);
  for (auto& w : preds.warnings) spec.add_prediction_warnings(std::move(w));
  return spec;
}

}  // namespace

Result<v1::AgentSpec> ParseAgentSpec(const std::string& text) {
  v1::AgentSpec spec;
  std::string name, command;
  auto eq = text.find('=');
  const std::string_view predictions = v1::kPredictionsPrefix;
  if (text.starts_with(predictions)) {
    return PredictionsAgent(text, "", text.substr(predictions.size()));
  }
  if (eq != std::string::npos && eq > 0 &&
      std::string_view(text).substr(eq + 1).starts_with(predictions)) {
    return PredictionsAgent(text, text.substr(0, eq), text.substr(eq + 1 + predictions.size()));
  }
  if (text.starts_with("builtin:")) {
    name = text.substr(8);
    command = text;
  } else if (eq == std::string::npos || eq == 0) {
    return Fail(
        Code::kInvalidArgument,
        fmt::format("--agent '{}': expected NAME=COMMAND, builtin:oracle or builtin:noop", text));
  } else {
    name = text.substr(0, eq);
    command = text.substr(eq + 1);
  }
  if (command.empty()) return Fail(Code::kInvalidArgument, "--agent '" + text + "': empty command");
  if (command.starts_with("builtin:") && command != "builtin:oracle" && command != "builtin:noop" &&
      runner::MutantKind(command).empty()) {
    return Fail(Code::kInvalidArgument,
                fmt::format("--agent '{}': unknown builtin (known: builtin:oracle, builtin:noop, "
                            "builtin:mutant-KIND with KIND one of {})",
                            text, fmt::join(scoring::MutantKinds(), ", ")));
  }
  if (!command.starts_with("builtin:") && command[0] != '/') {
    auto space = command.find(' ');
    std::string first = command.substr(0, space);
    struct stat st;
    if (first.find('/') != std::string::npos && ::stat(first.c_str(), &st) == 0) {
      std::string abs = std::filesystem::absolute(first).lexically_normal().string();
      command = abs + (space == std::string::npos ? "" : command.substr(space));
    }
  }
  spec.set_name(name);
  spec.set_command(command);
  return spec;
}

Result<int> RunProgram(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = ::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ);
  if (rc != 0) {
    return Fail(Code::kNotFound, fmt::format("cannot start {}: {}", argv[0], std::strerror(rc)));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return FailErrno("waitpid");
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

void EnterPrivateMountNamespace(std::string_view who) {
  if (::geteuid() != 0) return;
  if (::unshare(CLONE_NEWNS) != 0 ||
      ::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    spdlog::warn("{}: no private mount namespace ({}); if killed it may leave tmpfs mounts behind",
                 who, std::strerror(errno));
  }
}

int ReportError(const Error& error) {
  std::fprintf(stderr, "crucible: error: %s\n", error.message().c_str());
  return 1;
}

int WriteHtmlPage(const std::string& file, const std::string& html) {
  std::error_code ec;
  const std::string path = std::filesystem::absolute(file, ec).lexically_normal().string();
  if (auto st = WriteFile(path, html); !st) {
    return ReportError(st.error().Wrap("writing the HTML report to " + file));
  }
  std::printf("%s\n", path.c_str());
  return 0;
}

void PrintProgress(const std::string& line, bool final) {
  static const bool tty = ::isatty(STDERR_FILENO);
  if (tty) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

std::string ProgressLine(size_t total, size_t done, size_t failed, size_t leased, size_t runners,
                         long elapsed_s) {
  size_t finished = done + failed;
  std::string eta = "?";
  if (finished > 0 && finished < total && elapsed_s > 0) {
    eta = fmt::format(
        "{}s", elapsed_s * static_cast<long>(total - finished) / static_cast<long>(finished));
  } else if (finished == total) {
    eta = "0s";
  }
  return fmt::format(
      "[{}/{}] done {}, infra-failed {}, running {}, runners {}, elapsed {}s, eta {}", finished,
      total, done, failed, leased, runners, elapsed_s, eta);
}

void PrintPredictionWarnings(const v1::Run& run, const std::vector<v1::AgentSpec>& printed) {
  for (const auto& agent : run.agents()) {
    int already = 0;
    for (const auto& p : printed) {
      if (p.name() == agent.name()) already = p.prediction_warnings_size();
    }
    for (int i = already; i < agent.prediction_warnings_size(); ++i) {
      std::fprintf(stderr, "warning: agent %s: %s\n", agent.name().c_str(),
                   agent.prediction_warnings(i).c_str());
    }
  }
  std::fflush(stderr);
}

}  // namespace crucible::cli
