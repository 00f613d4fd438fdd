#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "sandbox/policy.h"
#include "sandbox/quota.h"
#include "sandbox/sandbox.h"

namespace crucible::cli {

namespace {

// Options as given; unset ones keep the policy file's value or the default.
struct SandboxArgs {
  std::string policy_file;
  std::string workspace;
  std::optional<double> timeout_s;
  std::vector<std::string> env;
  std::vector<std::string> ro_binds;
  std::vector<std::string> rw_binds;
  std::optional<std::string> network;
  std::vector<std::string> egress;    // --egress HOST:PORT
  std::optional<std::string> memory;  // sizes as given ("512M")
  std::optional<std::string> pids;
  std::optional<uint64_t> cpu_time_s;
  std::optional<std::string> file_size;
  std::optional<uint64_t> open_files;
  std::optional<std::string> tmp_size;
  std::optional<std::string> output_cap;
  std::optional<std::string> rootfs;
  std::optional<std::string> hostname;
  bool userns = false;
  bool interactive = false;
  bool no_userns = false;
  std::optional<std::string> workspace_quota;
  std::string report_file;
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

// The exit report as JSON, with the field names of the issue (plus the
// warnings and pids_limit_hit).
nlohmann::json ReportJson(const sandbox::Report* report, const std::string& setup_error) {
  using nlohmann::json;
  sandbox::Report none;
  const sandbox::Report& r = report != nullptr ? *report : none;
  json violations = json::array();
  for (const auto& v : r.seccomp_violations) {
    violations.push_back({{"syscall", v.syscall}, {"count", v.count}});
  }
  json egress = json::array();
  for (const auto& e : r.egress) {
    egress.push_back({{"host", e.host},
                      {"port", e.port},
                      {"method", e.method},
                      {"allowed", e.allowed},
                      {"reason", e.reason},
                      {"bytes_out", e.bytes_out},
                      {"bytes_in", e.bytes_in}});
  }
  return {
      {"exit_code", report != nullptr && r.exit_code >= 0 ? json(r.exit_code) : json(nullptr)},
      {"signal", r.signal},
      {"timed_out", r.timed_out},
      {"oom_killed", r.oom_killed},
      {"memory_peak_bytes", r.memory_peak_bytes},
      {"cpu_ms", r.cpu_ms},
      {"wall_ms", r.wall_ms},
      {"seccomp_violations", violations},
      {"stdout_bytes", r.stdout_bytes},
      {"stderr_bytes", r.stderr_bytes},
      {"output_truncated", r.output_truncated},
      {"setup_error", setup_error.empty() ? json(nullptr) : json(setup_error)},
      {"pids_limit_hit", r.pids_limit_hit},
      {"warnings", r.warnings},
      {"egress", egress},
  };
}

// Where --report goes. Its directory is opened before the command runs: the
// command may be able to write there (e.g. a report inside the workspace),
// and must not be able to send the report anywhere else by replacing a
// directory on its path with a link, nor have it written through a link it
// planted at the file's name (Dir::WriteFile replaces such a link).
class ReportFile {
 public:
  explicit ReportFile(const std::string& file) : file_(file) {
    if (file.empty()) return;
    const std::filesystem::path path(file);
    std::string dir = path.parent_path().string();
    dir_ = Dir::Open(dir.empty() ? "." : dir);
    name_ = path.filename().string();
  }

  void Write(const nlohmann::json& json) const {
    if (file_.empty()) return;
    if (!dir_) {
      ReportError(dir_.error().Wrap("--report " + file_));
      return;
    }
    auto written = dir_->WriteFile(name_, json.dump(2) + "\n");
    if (!written) ReportError(written.error().Wrap("--report"));
  }

 private:
  std::string file_;
  Result<Dir> dir_ = Fail(Code::kInvalidArgument, "no report file");
  std::string name_;
};

void WriteAll(std::FILE* out, const std::string& data) {
  if (!data.empty()) std::fwrite(data.data(), 1, data.size(), out);
  std::fflush(out);
}

// What BuildSpec makes of the options: the Spec, and the workspace quota
// (0: none), which is not a Spec setting.
struct Setup {
  sandbox::Spec spec;
  uint64_t workspace_quota = 0;
};

// The Spec: defaults, then the policy file, then the explicit options.
Result<Setup> BuildSpec(const SandboxArgs& args) {
  Setup setup;
  sandbox::Spec& spec = setup.spec;
  std::optional<uint64_t> policy_output_cap;
  if (!args.policy_file.empty()) {
    CRUCIBLE_ASSIGN_OR_RETURN(sandbox::Policy policy, sandbox::LoadPolicyFile(args.policy_file));
    CRUCIBLE_RETURN_IF_ERROR(sandbox::ApplyPolicy(policy, spec));
    setup.workspace_quota = policy.workspace_quota_bytes.value_or(0);
    policy_output_cap = policy.output_cap;
  }
  spec.argv = args.command;
  if (!args.workspace.empty()) {
    spec.workspace = std::filesystem::absolute(args.workspace).lexically_normal().string();
  }
  spec.env.insert(spec.env.end(), args.env.begin(), args.env.end());
  if (args.timeout_s) {
    spec.timeout = std::chrono::milliseconds(static_cast<int64_t>(*args.timeout_s * 1000));
  }
  for (const auto& b : args.ro_binds) {
    CRUCIBLE_ASSIGN_OR_RETURN(auto bind, ParseBind(b, false));
    spec.binds.push_back(bind);
  }
  for (const auto& b : args.rw_binds) {
    CRUCIBLE_ASSIGN_OR_RETURN(auto bind, ParseBind(b, true));
    spec.binds.push_back(bind);
  }
  if (args.network) {
    spec.network = *args.network == "host" ? sandbox::Network::kHost : sandbox::Network::kNone;
  }
  spec.egress.insert(spec.egress.end(), args.egress.begin(), args.egress.end());
  if (args.memory) {
    CRUCIBLE_ASSIGN_OR_RETURN(spec.memory_limit_bytes,
                              sandbox::ParseSize("--memory", *args.memory));
  }
  if (args.pids) {
    CRUCIBLE_ASSIGN_OR_RETURN(spec.pids_limit, sandbox::ParseSize("--pids", *args.pids));
  }
  if (args.cpu_time_s) spec.cpu_time_s = *args.cpu_time_s;
  if (args.file_size) {
    CRUCIBLE_ASSIGN_OR_RETURN(spec.file_size_bytes,
                              sandbox::ParseSize("--file-size", *args.file_size));
  }
  if (args.open_files) spec.open_files = *args.open_files;
  if (args.tmp_size) {
    CRUCIBLE_ASSIGN_OR_RETURN(spec.tmp_size_bytes,
                              sandbox::ParseSize("--tmp-size", *args.tmp_size));
  }
  if (args.rootfs)
    spec.rootfs = std::filesystem::absolute(*args.rootfs).lexically_normal().string();
  if (args.hostname) spec.hostname = *args.hostname;
  if (args.userns) spec.user_namespace = true;
  spec.interactive = args.interactive;
  if (args.no_userns) spec.user_namespace = false;
  if (args.workspace_quota) {
    CRUCIBLE_ASSIGN_OR_RETURN(setup.workspace_quota,
                              sandbox::ParseSize("--workspace-quota", *args.workspace_quota));
  }
  // The exit report counts output bytes, so --report captures too; captured
  // output is written out once the command is done. Otherwise sandbox::Run
  // relays it as it comes (or, with --interactive, hands over the caller's
  // descriptors).
  spec.capture_output = args.output_cap || policy_output_cap || !args.report_file.empty();
  if (args.output_cap) {
    CRUCIBLE_ASSIGN_OR_RETURN(uint64_t cap, sandbox::ParseSize("--output-cap", *args.output_cap));
    spec.output_cap = static_cast<size_t>(cap);
  }
  return setup;
}

// The workspace under a quota: it must be new or empty (it is a fresh tmpfs
// for the command's life, and its files go with it).
Result<std::optional<sandbox::QuotaDir>> MountQuota(const Setup& setup) {
  if (setup.workspace_quota == 0) return std::optional<sandbox::QuotaDir>();
  const std::string& ws = setup.spec.workspace;
  if (ws.empty()) {
    return Fail(Code::kInvalidArgument, "--workspace-quota needs --workspace");
  }
  std::error_code ec;
  if (!std::filesystem::exists(ws, ec)) {
    if (!std::filesystem::create_directories(ws, ec)) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("--workspace-quota: cannot create {}: {}", ws, ec.message()));
    }
  } else if (!std::filesystem::is_directory(ws, ec) || !std::filesystem::is_empty(ws, ec)) {
    return Fail(Code::kInvalidArgument,
                fmt::format("--workspace-quota: the workspace {} must be a new or empty directory "
                            "(its files would be hidden by the quota's tmpfs)",
                            ws));
  }
  CRUCIBLE_ASSIGN_OR_RETURN(sandbox::QuotaDir quota,
                            sandbox::QuotaDir::Mount(ws, setup.workspace_quota));
  return std::optional<sandbox::QuotaDir>(std::move(quota));
}

int RunSandbox(const SandboxArgs& args) {
  const ReportFile report_file(args.report_file);
  auto setup = BuildSpec(args);
  if (!setup) {
    ReportError(setup.error());
    report_file.Write(ReportJson(nullptr, setup.error().message()));
    return sandbox::kSetupFailedExitStatus;
  }
  auto quota = MountQuota(*setup);
  if (!quota) {
    ReportError(quota.error());
    report_file.Write(ReportJson(nullptr, quota.error().message()));
    return sandbox::kSetupFailedExitStatus;
  }
  const sandbox::Spec* spec = &setup->spec;
  auto report = sandbox::Run(*spec);
  if (!report) {
    ReportError(report.error());
    report_file.Write(ReportJson(nullptr, report.error().message()));
    return sandbox::kSetupFailedExitStatus;
  }
  if (spec->capture_output) {
    WriteAll(stdout, report->stdout_data);
    WriteAll(stderr, report->stderr_data);
    if (report->output_truncated) {
      std::fprintf(stderr,
                   "crucible: sandbox: output truncated at %zu bytes per stream "
                   "(%lld bytes of stdout and %lld of stderr dropped)\n",
                   spec->output_cap, static_cast<long long>(report->stdout_dropped),
                   static_cast<long long>(report->stderr_dropped));
    }
  }
  for (const auto& warning : report->warnings) {
    std::fprintf(stderr, "crucible: sandbox: warning: %s\n", warning.c_str());
  }
  for (const auto& e : report->egress) {
    std::fprintf(stderr, "crucible: sandbox: egress %s %s:%u %s%s%s\n",
                 e.method.empty() ? "-" : e.method.c_str(), e.host.c_str(), e.port,
                 e.allowed ? "allowed" : "refused", e.reason.empty() ? "" : ": ", e.reason.c_str());
  }
  for (const auto& v : report->seccomp_violations) {
    std::fprintf(stderr, "crucible: sandbox: blocked syscall %s (%llu times)\n", v.syscall.c_str(),
                 static_cast<unsigned long long>(v.count));
  }
  if (report->oom_killed) {
    std::fprintf(stderr, "crucible: sandbox: memory limit reached; a process was OOM-killed\n");
  }
  if (report->pids_limit_hit) {
    std::fprintf(stderr, "crucible: sandbox: process limit reached; a fork failed\n");
  }
  if (report->timed_out) {
    std::fprintf(stderr, "crucible: sandbox: timed out after %.1fs; process tree killed\n",
                 static_cast<double>(spec->timeout.count()) / 1000);
  }
  report_file.Write(ReportJson(&*report, ""));
  return sandbox::ExitStatus(*report);
}

}  // namespace

void AddSandboxCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<SandboxArgs>();
  auto* cmd = app.add_subcommand(
      "sandbox",
      "Run a command in the sandbox: new mount, pid, net, uts, ipc and cgroup namespaces, host "
      "system directories read-only, the workspace read-write at /workspace, a private /tmp, "
      "loopback only, a seccomp filter, memory/pids/rlimit limits (docs/sandbox.md). Exits with "
      "the command's status, 128+N if killed by signal N, 124 on timeout, 125 if the sandbox "
      "could not be set up (the message names the step that failed).");
  cmd->add_option("--policy", args->policy_file,
                  "read settings from this YAML policy file (docs/sandbox.md); options given on "
                  "the command line override it")
      ->check(CLI::ExistingFile);
  cmd->add_option("--workspace", args->workspace, "host directory bound read-write at /workspace");
  cmd->add_option("--timeout", args->timeout_s, "wall-clock limit in seconds (0: none)")
      ->check(CLI::NonNegativeNumber);
  // One value per occurrence (repeat the option for more): a list option
  // would take the `--` that ends the options as the end of its list. (Not
  // expected(1): on a list CLI11 takes that as "at most once".)
  cmd->add_option("--env", args->env, "add KEY=VALUE to the clean environment (repeatable)")
      ->type_size(1)
      ->allow_extra_args(false);
  cmd->add_option("--ro-bind", args->ro_binds, "bind SRC[:DST] read-only (repeatable)")
      ->type_size(1)
      ->allow_extra_args(false);
  cmd->add_option("--rw-bind", args->rw_binds, "bind SRC[:DST] read-write (repeatable)")
      ->type_size(1)
      ->allow_extra_args(false);
  cmd->add_option("--network", args->network,
                  "none (default: own network namespace, loopback only) or host (the host's "
                  "network: trusted commands only)")
      ->check(CLI::IsMember({"none", "host"}));
  cmd->add_option("--egress", args->egress,
                  "HOST:PORT the command may reach through the egress proxy at "
                  "127.0.0.1:3128 ($HTTPS_PROXY, $HTTP_PROXY); every connection is printed and "
                  "in the report (repeatable; needs --network none)")
      ->type_size(1)
      ->allow_extra_args(false);
  cmd->add_option("--memory", args->memory,
                  "memory limit of the whole sandbox, e.g. 512M or 4G; 0: none (default 4G when "
                  "cgroups are usable; given explicitly, a host without usable cgroups is an "
                  "error)");
  cmd->add_option("--pids", args->pids,
                  "process/thread limit of the whole sandbox; 0: none (default 512, same rules "
                  "as --memory)");
  cmd->add_option("--cpu-time", args->cpu_time_s, "CPU seconds per process (0: none, the default)");
  cmd->add_option("--file-size", args->file_size, "largest file a process may write (default 1G)");
  cmd->add_option("--open-files", args->open_files, "open files per process (default 1024)");
  cmd->add_option("--tmp-size", args->tmp_size, "size of /tmp and /dev/shm (default 256M)");
  cmd->add_option("--output-cap", args->output_cap,
                  "capture stdout and stderr, keep at most this much of each (e.g. 1M), and print "
                  "them when the command is done");
  cmd->add_option("--rootfs", args->rootfs,
                  "take the system directories (/usr, /bin, /lib, /etc, ...) read-only from DIR "
                  "(an unpacked image or debootstrap tree) instead of the host");
  cmd->add_option("--hostname", args->hostname, "hostname inside the sandbox (default crucible)");
  auto* userns = cmd->add_flag("--userns", args->userns, "run in a user namespace (the default)");
  cmd->add_flag("--no-userns", args->no_userns,
                "as root, run as the host's root without a user namespace (weaker: the sandbox "
                "shares root's per-user limits such as inotify instances)")
      ->excludes(userns);
  cmd->add_option("--workspace-quota", args->workspace_quota,
                  "cap what the command can write into the workspace (e.g. 1G; root only): the "
                  "workspace must be a new or empty directory and becomes a tmpfs of that size for "
                  "the command's life; its files are gone afterwards");
  cmd->add_flag("--interactive", args->interactive,
                "hand the caller's stdin, stdout and stderr (e.g. its terminal) to the command "
                "itself, for trusted commands only: it can then read and reconfigure the terminal "
                "and reopen the files they refer to. Without it stdin is /dev/null and output is "
                "relayed through pipes");
  cmd->add_option("--report", args->report_file,
                  "write the exit report as JSON to FILE (captures output, see --output-cap; "
                  "default cap 1M)");
  cmd->add_option("command", args->command, "the command and its arguments (after --)")->required();
  cmd->callback([args, exit_code] { *exit_code = RunSandbox(*args); });
}

}  // namespace crucible::cli
