// RunTests and AllPassed. ParseJunit lives in golden/junit.cc.
#include "golden/test_run.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <unordered_set>

#include "base/fs.h"
#include "golden/log_results.h"
#include "golden/utf8.h"
#include "sandbox/policy.h"
#include "sandbox/quota.h"
#include "sandbox/sandbox.h"
#include "vcs/repo.h"

namespace crucible::golden {

namespace {

constexpr const char* kReportDirInSandbox = "/crucible/out";
constexpr const char* kReportInSandbox = "/crucible/out/junit.xml";
constexpr size_t kOutputCap = 1 << 20;  // per stream, kept by the sandbox
// With results read from the output, the output is the report: pytest -rA
// prints its summary last, so a cap that keeps the first bytes must hold the
// whole log. As much as a JUnit report may be (kMaxReportBytes).
constexpr size_t kLogOutputCap = size_t{64} << 20;
constexpr size_t kTailBytes = 4096;  // TestRun::output_tail
constexpr off_t kMaxReportBytes = 64 << 20;
// The report directory's size as root: the largest report plus room for the
// setup log and markers.
constexpr uint64_t kReportDirQuota = uint64_t{80} << 20;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

std::string ReplaceAll(std::string s, std::string_view from, std::string_view to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

// The last bytes of stdout then stderr, for people.
std::string OutputTail(const sandbox::Report& r, size_t cap) {
  std::string_view out = r.stdout_data, err = r.stderr_data;
  // Each stream gets at least half of the budget when the other needs it.
  const size_t err_budget = std::min(err.size(), kTailBytes - std::min(out.size(), kTailBytes / 2));
  const size_t out_budget = kTailBytes - err_budget;
  std::string tail(internal::Utf8Tail(out, out_budget));
  if (!tail.empty() && !err.empty() && tail.back() != '\n') tail += '\n';
  tail += internal::Utf8Tail(err, err_budget);
  if (r.stdout_dropped > 0 || r.stderr_dropped > 0) {
    tail +=
        fmt::format("\n[crucible: {} bytes of output beyond the first {} of each stream dropped]",
                    r.stdout_dropped + r.stderr_dropped, cap);
  }
  return internal::ToValidUtf8(tail);
}

// The shell's complaint in `stderr_data`: the last line mentioning `needle`,
// else the last line.
std::string ShellComplaint(std::string_view text, std::string_view needle) {
  std::string_view last, match;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty()) last = line;
    if (line.find(needle) != std::string_view::npos) match = line;
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  }
  std::string_view line = match.empty() ? last : match;
  return internal::ToValidUtf8(line.substr(0, 300));
}

// Reads the report the command wrote. The command is untrusted: it may have
// left a symlink to a host file or something huge there.
enum class ReportState { kMissing, kRead, kUnreadable };
ReportState ReadReport(const std::string& path, std::string& content, std::string& why) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return ReportState::kMissing;
    why = ErrnoMessage("cannot open the JUnit report");
    return ReportState::kUnreadable;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    why = "the JUnit report is not a regular file";
    return ReportState::kUnreadable;
  }
  if (st.st_size > kMaxReportBytes) {
    ::close(fd);
    why = fmt::format("the JUnit report is {} bytes, more than the limit of {}", st.st_size,
                      kMaxReportBytes);
    return ReportState::kUnreadable;
  }
  content.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::read(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  content.resize(done);
  return ReportState::kRead;
}

bool AnyFailure(const v1::TestRun& run) {
  for (const auto& t : run.tests()) {
    if (t.status() == v1::TestOutcome::FAILED || t.status() == v1::TestOutcome::ERROR) return true;
  }
  return false;
}

// A command that left no report: says why, when that is the harness's fault.
void NoReport(const sandbox::Report& r, v1::TestRun& run, std::string_view what) {
  if (r.timed_out) return;  // timed_out says it all
  if (run.exit_code() == 127) {
    run.set_infra_error("test command not found: " + ShellComplaint(r.stderr_data, "not found"));
  } else if (run.exit_code() == 126) {
    run.set_infra_error("test command cannot be executed: " +
                        ShellComplaint(r.stderr_data, "ermission"));
  } else if (run.exit_code() == 0) {
    run.set_infra_error(fmt::format("test command exited 0 but wrote no {}", what));
  }
  // otherwise the tests broke before reporting: a failure, not the harness
}

void Adopt(std::vector<v1::TestOutcome> tests, v1::TestRun& run) {
  run.set_report_found(true);
  for (auto& t : tests) *run.add_tests() = std::move(t);
}

// Results read from the output, stdout then stderr (results "regex").
// Unlike a report file, a log that contradicts a non-zero exit is believed:
// SWE-bench's test commands run whole test files and often exit non-zero
// because tests outside FAIL_TO_PASS and PASS_TO_PASS fail, while the lines
// of the tests that decide the task say they passed. (A patch can print
// lines that look like passing tests with any exit status; SWE-bench reads
// its logs the same way.)
void ReadLogResults(const sandbox::Report& r, const TestCommand& cmd, v1::TestRun& run) {
  size_t matched = 0;
  const bool cut = r.stdout_dropped > 0 || r.stderr_dropped > 0;
  auto tests = internal::ParseLogParts({r.stdout_data, r.stderr_data},
                                       {r.stdout_dropped > 0, r.stderr_dropped > 0},
                                       cmd.log_results, cmd.expected, &matched);
  if (!tests) {
    run.set_infra_error(internal::ToValidUtf8(tests.error().message()));
    return;
  }
  if (cut) {
    for (auto& t : *tests) {
      if (t.message() == kAbsentFromLog) {
        t.set_message(
            fmt::format("{} (the output passed the cap of {} bytes a stream; the rest "
                        "was not read)",
                        kAbsentFromLog, kLogOutputCap));
      }
    }
  }
  if (matched == 0) {
    if (!r.timed_out && (run.exit_code() == 127 || run.exit_code() == 126)) {
      NoReport(r, run, "");
      return;
    }
    if (!r.timed_out && run.exit_code() == 0) {
      run.set_infra_error(std::string(kNoLineMatched));
      return;
    }
    // The tests broke (or ran out of time) before reporting: every expected
    // test is absent, as SWE-bench counts a log without its lines.
    for (auto& t : *tests) *run.add_tests() = std::move(t);
    return;
  }
  Adopt(std::move(*tests), run);
}

// Fills report_found, tests and infra_error from what the command left.
void ReadResults(const std::string& out_dir, const sandbox::Report& r, const TestCommand& cmd,
                 v1::TestRun& run) {
  if (!cmd.setup.empty()) {
    // The markers live where untrusted code can write: read them like the
    // report (no symbolic links, regular files, bounded).
    std::string failed, log, ignored;
    if (ReadReport(out_dir + "/setup.failed", failed, ignored) == ReportState::kRead) {
      if (ReadReport(out_dir + "/setup.log", log, ignored) != ReportState::kRead) log.clear();
      run.set_infra_error(fmt::format("setup command failed (exit {}): {}",
                                      internal::ToValidUtf8(Trim(failed).substr(0, 16)),
                                      internal::ToValidUtf8(internal::Utf8Tail(log, 300))));
      return;
    }
    std::string ok;
    if (r.timed_out && ReadReport(out_dir + "/setup.ok", ok, ignored) != ReportState::kRead) {
      run.set_infra_error("setup command timed out");
      return;
    }
  }
  if (cmd.format == ResultFormat::kRegex) {
    ReadLogResults(r, cmd, run);
    return;
  }
  const std::string report_path = out_dir + "/junit.xml";
  std::string content, why;
  ReportState state = ReadReport(report_path, content, why);
  if (state == ReportState::kUnreadable) {
    run.set_infra_error(internal::ToValidUtf8(why));
    return;
  }
  switch (cmd.format) {
    case ResultFormat::kExitCode: {
      if (r.timed_out || run.exit_code() == 127 || run.exit_code() == 126) {
        NoReport(r, run, "");
        return;
      }
      v1::TestOutcome suite;
      suite.set_id("<suite>");
      suite.set_status(run.exit_code() == 0 ? v1::TestOutcome::PASSED : v1::TestOutcome::FAILED);
      suite.set_time_s(static_cast<double>(run.wall_ms()) / 1000.0);
      Adopt({suite}, run);
      return;
    }
    case ResultFormat::kTap: {
      if (state == ReportState::kMissing) content = r.stdout_data;
      auto tests = ParseTap(content);
      if (!tests) {
        NoReport(r, run, "TAP output");
        return;
      }
      Adopt(std::move(*tests), run);
      break;
    }
    case ResultFormat::kRegex:
      return;  // read above
    case ResultFormat::kJunit: {
      if (state == ReportState::kMissing) {
        NoReport(r, run, "JUnit report (is {junit} in the command?)");
        return;
      }
      auto tests = ParseJunit(content);
      if (!tests) {
        run.set_infra_error(tests.error().message());
        return;
      }
      Adopt(std::move(*tests), run);
      break;
    }
  }
  // A report that contradicts the exit status is not believed: a patch must
  // not be able to fake green by writing a passing report.
  if (!r.timed_out && run.exit_code() != 0 && !AnyFailure(run)) {
    run.set_infra_error(
        fmt::format("test command exited {} but its report shows no failure", run.exit_code()));
  }
}

// Runs the setup command, then the test command; see ReadResults for the
// markers it leaves in the report directory.
constexpr const char* kSetupThenTest =
    "/bin/sh -c \"$1\" > /crucible/out/setup.log 2>&1; s=$?; "
    "if [ $s -ne 0 ]; then echo $s > /crucible/out/setup.failed; exit 125; fi; "
    ": > /crucible/out/setup.ok; exec /bin/sh -c \"$2\"";

}  // namespace

Result<v1::TestRun> RunTests(const std::string& workspace, const TestCommand& cmd,
                             const std::string& report_dir) {
  std::optional<TempDir> tmp;
  std::string out_dir = report_dir;
  if (out_dir.empty()) {
    CRUCIBLE_ASSIGN_OR_RETURN(TempDir made, TempDir::Create("crucible-tests-"));
    tmp.emplace(std::move(made));
    // The report directory is writable by whatever uid the sandbox runs as;
    // the 0700 temporary directory around it keeps other host users out.
    out_dir = tmp->path() + "/out";
    if (::mkdir(out_dir.c_str(), 0700) != 0) {
      return FailErrno("cannot create report directory " + out_dir);
    }
  }
  // The code under test can write there: as root, a size-capped tmpfs keeps
  // it off the host's disk (the runner passes a directory on its own quota).
  std::optional<sandbox::QuotaDir> out_quota;
  if (report_dir.empty() && ::geteuid() == 0) {
    auto q = sandbox::QuotaDir::Mount(out_dir, kReportDirQuota);
    if (!q) return Fail(q.error().Wrap("report directory quota"));
    out_quota.emplace(std::move(*q));
  }
  if (::chmod(out_dir.c_str(), 0777) != 0) {
    return FailErrno("cannot open up report directory " + out_dir);
  }

  sandbox::Spec spec;
  const std::string test = ReplaceAll(cmd.command, "{junit}", kReportInSandbox);
  if (cmd.setup.empty()) {
    spec.argv = {"/bin/sh", "-c", test};
  } else {
    spec.argv = {"/bin/sh", "-c", kSetupThenTest, "crucible-setup", cmd.setup, test};
  }
  spec.workspace = workspace;
  spec.binds.push_back(
      {.host_path = out_dir, .sandbox_path = kReportDirInSandbox, .writable = true});
  spec.env = {"PYTHONDONTWRITEBYTECODE=1"};
  spec.cwd = "/workspace";
  spec.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      cmd.setup.empty() ? cmd.timeout : cmd.timeout + cmd.setup_timeout);
  spec.capture_output = true;
  spec.output_cap = cmd.format == ResultFormat::kRegex ? kLogOutputCap : kOutputCap;
  if (!cmd.sandbox_policy.empty()) {
    CRUCIBLE_ASSIGN_OR_RETURN(sandbox::Policy policy,
                              sandbox::ParsePolicy(cmd.sandbox_policy, "sandbox policy"));
    CRUCIBLE_RETURN_IF_ERROR(sandbox::ApplyPolicy(policy, spec));
  }
  CRUCIBLE_ASSIGN_OR_RETURN(sandbox::Report report, sandbox::Run(spec));

  v1::TestRun run;
  run.set_exit_code(sandbox::ExitStatus(report));
  run.set_timed_out(report.timed_out);
  run.set_wall_ms(report.wall_ms);
  run.set_output_tail(OutputTail(report, spec.output_cap));
  ReadResults(out_dir, report, cmd, run);
  return run;
}

Result<ResultFormat> ParseResultFormat(std::string_view name) {
  if (name.empty() || name == "junit") return ResultFormat::kJunit;
  if (name == "tap") return ResultFormat::kTap;
  if (name == "exit-code") return ResultFormat::kExitCode;
  if (name == "regex") return ResultFormat::kRegex;
  return Fail(Code::kInvalidArgument,
              fmt::format("unknown result format '{}' (junit, tap, exit-code or regex)", name));
}

namespace {

// `s` as one single-quoted shell word: a quote inside becomes '\''.
std::string ShellQuote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string QuotedList(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ' ';
    out += ShellQuote(item);
  }
  return out;
}

// One regular expression matching exactly the ids (POSIX ERE and RE2 alike):
// metacharacters escaped with a backslash.
std::string IdsRegex(const std::vector<std::string>& ids) {
  if (ids.empty()) return ".*";
  std::string out = "^(";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += '|';
    for (char c : ids[i]) {
      if (std::string_view("\\.+*?()|[]{}^$").find(c) != std::string_view::npos) out += '\\';
      out += c;
    }
  }
  return out + ")$";
}

std::vector<std::string> PathsOf(const std::string& patch) {
  auto paths = vcs::PatchPaths(patch);
  return paths ? std::move(*paths) : std::vector<std::string>{};
}

}  // namespace

std::vector<std::string> TestFilesToRun(std::vector<std::string> paths) {
  // SWE-bench's NON_TEST_EXTS (harness/test_spec/python.py).
  static constexpr std::string_view kData[] = {".json", ".png", ".csv", ".txt",  ".md",   ".jpg",
                                               ".jpeg", ".pkl", ".yml", ".yaml", ".toml", ".gif"};
  std::erase_if(paths, [](const std::string& p) {
    return std::any_of(std::begin(kData), std::end(kData),
                       [&](std::string_view ext) { return p.ends_with(ext); });
  });
  return paths;
}

namespace {}  // namespace

std::string ExpandTestScope(std::string_view command, const TestScope& scope) {
  static constexpr std::string_view kFiles = "{test_files}", kIds = "{test_ids}",
                                    kRegex = "{test_ids_regex}";
  std::string out;
  size_t i = 0;
  while (i < command.size()) {
    const std::string_view rest = command.substr(i);
    if (rest.starts_with(kFiles)) {
      out += QuotedList(scope.files);
      i += kFiles.size();
    } else if (rest.starts_with(kIds)) {
      out += QuotedList(scope.ids);
      i += kIds.size();
    } else if (rest.starts_with(kRegex)) {
      out += ShellQuote(IdsRegex(scope.ids));
      i += kRegex.size();
    } else {
      out += command[i++];
    }
  }
  return out;
}

TestScope HiddenTestScope(const v1::GoldenTask& task) {
  TestScope scope;
  scope.files.assign(task.test_files().begin(), task.test_files().end());
  if (scope.files.empty()) scope.files = PathsOf(task.test_patch());
  scope.files = TestFilesToRun(std::move(scope.files));
  scope.ids.assign(task.fail_to_pass().begin(), task.fail_to_pass().end());
  scope.ids.insert(scope.ids.end(), task.pass_to_pass().begin(), task.pass_to_pass().end());
  return scope;
}

TestScope RegressionTestScope(const v1::GoldenTask& task) {
  TestScope scope;
  scope.files = TestFilesToRun(PathsOf(task.regression_patch()));
  scope.ids.assign(task.regression_tests().begin(), task.regression_tests().end());
  return scope;
}

TestCommand TestCommandFor(const v1::GoldenTask& task) {
  return TestCommandFor(task, HiddenTestScope(task));
}

TestCommand TestCommandFor(const v1::GoldenTask& task, const TestScope& scope) {
  TestCommand cmd;
  cmd.command = ExpandTestScope(task.test_cmd(), scope);
  if (task.test_timeout_s() > 0) cmd.timeout = std::chrono::seconds(task.test_timeout_s());
  cmd.format = ParseResultFormat(task.results()).value_or(ResultFormat::kJunit);
  cmd.setup = task.setup_cmd();
  if (task.setup_timeout_s() > 0) cmd.setup_timeout = std::chrono::seconds(task.setup_timeout_s());
  cmd.sandbox_policy = task.sandbox_policy();
  cmd.log_results = task.log_results();
  cmd.expected = scope.ids;
  return cmd;
}

bool AllPassed(const v1::TestRun& run, const std::vector<std::string>& ids) {
  if (!run.infra_error().empty() || run.timed_out() || !run.report_found()) return false;
  std::unordered_set<std::string_view> passed;
  for (const auto& t : run.tests()) {
    if (t.status() == v1::TestOutcome::PASSED) passed.insert(t.id());
  }
  for (const auto& id : ids) {
    if (!passed.contains(id)) return false;
  }
  return true;
}

}  // namespace crucible::golden
