#include <chrono>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "sandbox/sandbox.h"

namespace crucible::cli {

namespace {

struct SandboxArgs {
  std::string workspace;
  double timeout_s = 0;
  std::vector<std::string> env;
  std::vector<std::string> ro_binds;
  std::vector<std::string> rw_binds;
  std::vector<std::string> command;
};

// "SRC" or "SRC:DST"; SRC made absolute, DST defaults to SRC.
Result<sandbox::Bind> ParseBind(const std::string& text, bool writable) {
  auto colon = text.find(':');
  std::string src = text.substr(0, colon);
  std::string dst = colon == std::string::npos ? src : text.substr(colon + 1);
  if (src.empty()) return Fail(Code::kInvalidArgument, "bind '" + text + "': empty source");
  src = std::filesystem::absolute(src).lexically_normal().string();
  if (colon == std::string::npos) dst = src;
  if (dst.empty() || dst[0] != '/') {
    return Fail(Code::kInvalidArgument, "bind '" + text + "': target must be an absolute path");
  }
  return sandbox::Bind{.host_path = src, .sandbox_path = dst, .writable = writable};
}

int RunSandbox(const SandboxArgs& args) {
  sandbox::Spec spec;
  spec.argv = args.command;
  if (!args.workspace.empty()) {
    spec.workspace = std::filesystem::absolute(args.workspace).lexically_normal().string();
  }
  spec.env = args.env;
  spec.timeout = std::chrono::milliseconds(static_cast<int64_t>(args.timeout_s * 1000));
  for (const auto& b : args.ro_binds) {
    auto bind = ParseBind(b, false);
    if (!bind) return (ReportError(bind.error()), sandbox::kSetupFailedExitStatus);
    spec.binds.push_back(*bind);
  }
  for (const auto& b : args.rw_binds) {
    auto bind = ParseBind(b, true);
    if (!bind) return (ReportError(bind.error()), sandbox::kSetupFailedExitStatus);
    spec.binds.push_back(*bind);
  }
  auto report = sandbox::Run(spec);
  if (!report) {
    ReportError(report.error());
    return sandbox::kSetupFailedExitStatus;
  }
  if (report->timed_out) {
    std::fprintf(stderr, "crucible: sandbox: timed out after %.1fs; process tree killed\n",
                 args.timeout_s);
  }
  return sandbox::ExitStatus(*report);
}

}  // namespace

void AddSandboxCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<SandboxArgs>();
  auto* cmd = app.add_subcommand(
      "sandbox",
      "Run a command in the sandbox: new mount, pid, net, uts and ipc namespaces, host system "
      "directories read-only, the workspace read-write at /workspace, a private /tmp, loopback "
      "only. Exits with the command's status, 128+N if killed by signal N, 124 on timeout, 125 "
      "if the sandbox could not be set up.");
  cmd->add_option("--workspace", args->workspace, "host directory bound read-write at /workspace")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--timeout", args->timeout_s, "wall-clock limit in seconds (0: none)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--env", args->env, "add KEY=VALUE to the clean environment");
  cmd->add_option("--ro-bind", args->ro_binds, "bind SRC[:DST] read-only");
  cmd->add_option("--rw-bind", args->rw_binds, "bind SRC[:DST] read-write");
  cmd->add_option("command", args->command, "the command and its arguments (after --)")->required();
  cmd->callback([args, exit_code] { *exit_code = RunSandbox(*args); });
}

}  // namespace crucible::cli
