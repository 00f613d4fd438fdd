#include "golden/interchange.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "base/fs.h"
#include "golden/log_results.h"
#include "golden/rules.h"
#include "golden/utf8.h"
#include "sandbox/policy.h"
#include "vcs/repo.h"

namespace crucible::golden {

namespace {

using nlohmann::json;

// The non-blank lines of a JSONL text, one by one, with their 1-based numbers.
class JsonlLines {
 public:
  explicit JsonlLines(std::string_view text) : rest_(text) {}

  // Sets *line to the next non-blank line; false at the end.
  bool Next(std::string_view* line) {
    while (!rest_.empty()) {
      size_t nl = rest_.find('\n');
      *line = rest_.substr(0, nl);
      rest_.remove_prefix(nl == std::string_view::npos ? rest_.size() : nl + 1);
      ++line_no_;
      if (line->find_first_not_of(" \t\r") != std::string_view::npos) return true;
    }
    return false;
  }
  size_t line_no() const { return line_no_; }

 private:
  std::string_view rest_;
  size_t line_no_ = 0;
};

std::string Dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool Digits(std::string_view s, size_t at, size_t n, int& out) {
  if (at + n > s.size()) return false;
  out = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

uint64_t Fnv1a(uint64_t seed, std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (int i = 0; i < 8; ++i) {
    h ^= (seed >> (8 * i)) & 0xff;
    h *= 1099511628211ULL;
  }
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

Result<std::string> Title(const json& pr, const std::string& where) {
  if (!pr.is_object()) return Fail(Code::kInvalidArgument, where + ": not a JSON object");
  if (!pr.contains("title") || !pr["title"].is_string()) {
    return Fail(Code::kInvalidArgument, where + ": no \"title\" string");
  }
  std::string intent = pr["title"].get<std::string>();
  if (pr.contains("body") && pr["body"].is_string()) {
    std::string body = pr["body"].get<std::string>();
    if (body.find_first_not_of(" \t\r\n") != std::string::npos) intent += "\n\n" + body;
  }
  return intent;
}

std::string MergeCommit(const json& pr) {
  if (pr.contains("mergeCommit") && pr["mergeCommit"].is_object() &&
      pr["mergeCommit"].contains("oid") && pr["mergeCommit"]["oid"].is_string()) {
    return pr["mergeCommit"]["oid"].get<std::string>();
  }
  if (pr.contains("merge_commit_sha") && pr["merge_commit_sha"].is_string()) {
    return pr["merge_commit_sha"].get<std::string>();
  }
  return "";
}

std::vector<std::string> Strings(const google::protobuf::RepeatedPtrField<std::string>& r) {
  return {r.begin(), r.end()};
}

// The "crucible"."log_results" object of an exported line, validated.
Result<v1::LogResults> LogResultsFromJson(const json& j) {
  auto bad = [](const std::string& key, const std::string& what) {
    return Fail(Code::kInvalidArgument,
                fmt::format("field \"crucible.log_results{}\"{}", key, what));
  };
  if (!j.is_object()) return bad("", " is not an object");
  v1::LogResults log;
  for (auto [key, field] : {std::pair{"preset", log.mutable_preset()},
                            {"pattern", log.mutable_pattern()},
                            {"absent", log.mutable_absent()}}) {
    if (!j.contains(key)) continue;
    if (!j[key].is_string()) return bad(std::string(".") + key, " is not a string");
    *field = j[key].get<std::string>();
  }
  if (j.contains("status")) {
    if (!j["status"].is_object()) return bad(".status", " is not an object");
    for (const auto& [word, target] : j["status"].items()) {
      if (!target.is_string())
        return bad(".status", fmt::format(" maps '{}' to a non-string", word));
      (*log.mutable_status())[word] = target.get<std::string>();
    }
  }
  if (auto problem = internal::LogResultsProblem(log)) {
    return bad("." + problem->first, ": " + problem->second);
  }
  return log;
}

}  // namespace

Result<int64_t> ParseDateMs(std::string_view text) {
  auto bad = [&] {
    return Fail(Code::kInvalidArgument,
                fmt::format("'{}' is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[Z|+HH:MM])",
                            internal::ToValidUtf8(text)));
  };
  std::tm tm{};
  int y, mo, d, h = 0, mi = 0, s = 0;
  if (!Digits(text, 0, 4, y) || text.size() < 10 || text[4] != '-' || !Digits(text, 5, 2, mo) ||
      text[7] != '-' || !Digits(text, 8, 2, d)) {
    return bad();
  }
  size_t at = 10;
  if (at < text.size()) {
    if ((text[at] != 'T' && text[at] != ' ') || !Digits(text, at + 1, 2, h) ||
        text.size() < at + 9 || text[at + 3] != ':' || !Digits(text, at + 4, 2, mi) ||
        text[at + 6] != ':' || !Digits(text, at + 7, 2, s)) {
      return bad();
    }
    at += 9;
  }
  int64_t frac_ms = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    int64_t scale = 100;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      frac_ms += (text[at] - '0') * scale;
      scale /= 10;
      ++at;
    }
  }
  int64_t offset_s = 0;
  if (at < text.size()) {
    if (text[at] == 'Z' && at + 1 == text.size()) {
      ++at;
    } else if ((text[at] == '+' || text[at] == '-') && text.size() == at + 6 &&
               text[at + 3] == ':') {
      int oh, om;
      if (!Digits(text, at + 1, 2, oh) || !Digits(text, at + 4, 2, om)) return bad();
      offset_s = (text[at] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
      at = text.size();
    } else {
      return bad();
    }
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return bad();
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  int64_t secs = ::timegm(&tm) - offset_s;
  return secs * 1000 + frac_ms;
}

std::string FormatDate(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<std::map<std::string, std::string>> ParsePullRequests(std::string_view text,
                                                             const std::string& file) {
  std::map<std::string, std::string> out;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return out;
  if (text[first] == '[') {
    json all = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (all.is_discarded() || !all.is_array()) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("{}: not a JSON array of pull requests", file));
    }
    for (size_t i = 0; i < all.size(); ++i) {
      CRUCIBLE_ASSIGN_OR_RETURN(std::string intent,
                                Title(all[i], fmt::format("{}: pull request {}", file, i)));
      if (std::string c = MergeCommit(all[i]); !c.empty()) out[c] = std::move(intent);
    }
    return out;
  }
  JsonlLines lines(text);
  for (std::string_view line; lines.Next(&line);) {
    json pr = json::parse(line, nullptr, false);
    std::string where = fmt::format("{}:{}", file, lines.line_no());
    if (pr.is_discarded()) return Fail(Code::kInvalidArgument, where + ": not valid JSON");
    CRUCIBLE_ASSIGN_OR_RETURN(std::string intent, Title(pr, where));
    if (std::string c = MergeCommit(pr); !c.empty()) out[c] = std::move(intent);
  }
  return out;
}

Result<std::map<std::string, std::string>> LoadPullRequests(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) {
    return Fail(Code::kNotFound, fmt::format("cannot read the pull requests file {}: {}", path,
                                             text.error().message()));
  }
  return ParsePullRequests(*text, path);
}

std::string ExportJsonl(const v1::Suite& suite, const std::vector<v1::GoldenTask>& tasks) {
  const std::string repo = std::filesystem::path(suite.repo_path()).filename().string();
  std::string out;
  for (const auto& t : tasks) {
    nlohmann::ordered_json j;
    j["instance_id"] = t.id();
    j["repo"] = repo;
    j["base_commit"] = t.base_commit();
    j["patch"] = t.source_patch();
    j["test_patch"] = t.test_patch();
    j["problem_statement"] = t.intent();
    j["FAIL_TO_PASS"] = Strings(t.fail_to_pass());
    j["PASS_TO_PASS"] = Strings(t.pass_to_pass());
    j["created_at"] = FormatDate(t.merged_at_ms());
    nlohmann::ordered_json c;
    c["merged_commit"] = t.merged_commit();
    c["kind"] = t.kind();
    c["flaky"] = Strings(t.flaky());
    if (t.excluded_tests_size() > 0) {
      nlohmann::ordered_json excluded = nlohmann::ordered_json::array();
      for (const auto& e : t.excluded_tests()) {
        excluded.push_back({{"id", e.id()}, {"reason", e.reason()}});
      }
      c["excluded_tests"] = std::move(excluded);
    }
    c["failure_modes"] = Strings(t.failure_modes());
    c["held_out"] = t.held_out();
    c["test_cmd"] = t.test_cmd();
    c["test_timeout_s"] = t.test_timeout_s();
    c["setup_cmd"] = t.setup_cmd();
    c["setup_timeout_s"] = t.setup_timeout_s();
    c["results"] = t.results();
    if (t.has_log_results()) {
      const v1::LogResults& log = t.log_results();
      nlohmann::ordered_json l;
      if (!log.preset().empty()) l["preset"] = log.preset();
      l["pattern"] = log.pattern();
      // Sorted, so that an export is the same text each time.
      l["status"] = std::map<std::string, std::string>(log.status().begin(), log.status().end());
      if (!log.absent().empty()) l["absent"] = log.absent();
      c["log_results"] = std::move(l);
    }
    if (!t.sandbox_policy().empty()) c["sandbox_policy"] = t.sandbox_policy();
    j["crucible"] = std::move(c);
    out += Dump(j);
    out += '\n';
  }
  return out;
}

Result<Imported> ImportJsonl(std::string_view text, const std::string& file,
                             const ImportOptions& options) {
  if (options.suite.empty()) return Fail(Code::kInvalidArgument, "suite name is empty");
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(options.repo_path, ec);
  if (!ec) abs = std::filesystem::weakly_canonical(abs, ec);
  const std::string repo = ec ? options.repo_path : abs.string();

  std::optional<NamedResults> results;
  if (!options.results.empty()) {
    auto named = ResultsByName(options.results);
    if (!named) return Fail(named.error());
    results = std::move(*named);
  }
  Imported result;
  std::set<std::string> ids;
  JsonlLines lines(text);
  for (std::string_view line; lines.Next(&line);) {
    const std::string where = fmt::format("{}:{}", file, lines.line_no());
    auto bad = [&](const std::string& what) {
      return Fail(Code::kInvalidArgument, fmt::format("{}: {}", where, what));
    };
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) return bad("not valid JSON");
    if (!j.is_object()) return bad("not a JSON object");
    auto str = [&](const char* key) -> Result<std::string> {
      if (!j.contains(key)) return bad(fmt::format("missing field \"{}\"", key));
      if (!j[key].is_string()) return bad(fmt::format("field \"{}\" is not a string", key));
      return j[key].get<std::string>();
    };
    auto list = [&](const char* key) -> Result<std::vector<std::string>> {
      if (!j.contains(key)) return bad(fmt::format("missing field \"{}\"", key));
      json v = j[key];
      if (v.is_string()) {  // SWE-bench: a JSON array inside a string
        v = json::parse(v.get<std::string>(), nullptr, false);
      }
      if (!v.is_array() ||
          !std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); })) {
        return bad(fmt::format("field \"{}\" is not a list of strings", key));
      }
      return v.get<std::vector<std::string>>();
    };
    v1::GoldenTask t;
    t.set_suite(options.suite);
    CRUCIBLE_ASSIGN_OR_RETURN(std::string id, str("instance_id"));
    CRUCIBLE_ASSIGN_OR_RETURN(std::string repo_name, str("repo"));
    (void)repo_name;
    CRUCIBLE_ASSIGN_OR_RETURN(std::string base, str("base_commit"));
    CRUCIBLE_ASSIGN_OR_RETURN(std::string patch, str("patch"));
    CRUCIBLE_ASSIGN_OR_RETURN(std::string test_patch, str("test_patch"));
    CRUCIBLE_ASSIGN_OR_RETURN(std::string statement, str("problem_statement"));
    CRUCIBLE_ASSIGN_OR_RETURN(auto f2p, list("FAIL_TO_PASS"));
    CRUCIBLE_ASSIGN_OR_RETURN(auto p2p, list("PASS_TO_PASS"));
    if (id.empty()) return bad("field \"instance_id\" is empty");
    if (!ids.insert(id).second) return bad(fmt::format("instance_id '{}' given twice", id));
    if (j.contains("created_at")) {
      CRUCIBLE_ASSIGN_OR_RETURN(std::string created, str("created_at"));
      auto ms = ParseDateMs(created);
      if (!ms) return bad("field \"created_at\": " + ms.error().message());
      t.set_merged_at_ms(*ms);
    }
    auto history = vcs::FirstParentHistory(repo, base, 1);
    if (!history) {
      if (history.error().message().find("not a git repository") != std::string::npos) {
        return Fail(history.error());
      }
      return bad(fmt::format("base_commit {} is not in the repository {}", base, repo));
    }
    t.set_id(id);
    t.set_repo_path(repo);
    t.set_base_commit(history->front().commit);
    t.set_source_patch(patch);
    t.set_test_patch(test_patch);
    t.set_intent(statement);
    for (auto& s : f2p) t.add_fail_to_pass(std::move(s));
    for (auto& s : p2p) t.add_pass_to_pass(std::move(s));
    for (auto [patch_text, field] : {std::pair{&patch, "patch"}, {&test_patch, "test_patch"}}) {
      if (patch_text->empty()) continue;
      auto paths = vcs::PatchPaths(*patch_text);
      if (!paths) return bad(fmt::format("field \"{}\": {}", field, paths.error().message()));
      for (auto& p : *paths) {
        (field == std::string_view("patch") ? t.add_source_files(p) : t.add_test_files(p));
      }
    }
    t.set_test_cmd(options.test_cmd);
    t.set_test_timeout_s(600);
    if (j.contains("crucible")) {
      const json& c = j["crucible"];
      if (!c.is_object()) return bad("field \"crucible\" is not an object");
      auto cs = [&](const char* key) {
        return c.contains(key) && c[key].is_string() ? c[key].get<std::string>() : "";
      };
      auto ci = [&](const char* key) {
        return c.contains(key) && c[key].is_number_integer() ? c[key].get<int32_t>() : 0;
      };
      t.set_merged_commit(cs("merged_commit"));
      t.set_kind(cs("kind"));
      if (c.contains("flaky") && c["flaky"].is_array()) {
        for (const auto& f : c["flaky"]) {
          if (f.is_string()) t.add_flaky(f.get<std::string>());
        }
      }
      if (c.contains("excluded_tests") && c["excluded_tests"].is_array()) {
        for (const auto& e : c["excluded_tests"]) {
          if (!e.is_object() || !e.contains("id") || !e["id"].is_string()) {
            return bad("field \"crucible.excluded_tests\" holds an entry without a string id");
          }
          auto* x = t.add_excluded_tests();
          x->set_id(e["id"].get<std::string>());
          if (e.contains("reason") && e["reason"].is_string()) {
            x->set_reason(e["reason"].get<std::string>());
          }
        }
      }
      if (c.contains("failure_modes")) {
        const json& modes = c["failure_modes"];
        if (!modes.is_array()) return bad("field \"crucible.failure_modes\" is not a list");
        for (const auto& m : modes) {
          std::string mode = m.is_string() ? m.get<std::string>() : m.dump();
          if (!m.is_string() || std::find(FailureModes().begin(), FailureModes().end(), mode) ==
                                    FailureModes().end()) {
            return bad(
                fmt::format("field \"crucible.failure_modes\": unknown failure mode {} "
                            "(valid: {})",
                            mode, fmt::join(FailureModes(), ", ")));
          }
          t.add_failure_modes(mode);
        }
      }
      t.set_held_out(c.contains("held_out") && c["held_out"].is_boolean() &&
                     c["held_out"].get<bool>());
      if (!cs("test_cmd").empty() && options.test_cmd.empty()) t.set_test_cmd(cs("test_cmd"));
      if (ci("test_timeout_s") > 0) t.set_test_timeout_s(ci("test_timeout_s"));
      t.set_setup_cmd(cs("setup_cmd"));
      t.set_setup_timeout_s(ci("setup_timeout_s"));
      t.set_results(cs("results"));
      if (auto format = ParseResultFormat(t.results()); !format) {
        return bad("field \"crucible.results\": " + format.error().message());
      }
      if (c.contains("log_results")) {
        auto log = LogResultsFromJson(c["log_results"]);
        if (!log) return bad(log.error().message());
        *t.mutable_log_results() = std::move(*log);
      }
      if (t.results() == "regex" && !t.has_log_results()) {
        return bad("field \"crucible.results\" is regex but there is no crucible.log_results");
      }
      if (!cs("sandbox_policy").empty()) {
        auto policy = sandbox::ParsePolicy(cs("sandbox_policy"), "crucible.sandbox_policy");
        if (!policy) {
          return bad(
              fmt::format("field \"crucible.sandbox_policy\": {}", policy.error().message()));
        }
        t.set_sandbox_policy(cs("sandbox_policy"));
      }
    }
    if (results) {  // --results: for every line, with its test command
      t.set_results(results->format == ResultFormat::kRegex ? "regex" : options.results);
      t.clear_log_results();
      if (results->format == ResultFormat::kRegex) *t.mutable_log_results() = results->log;
    }
    if (t.test_cmd().empty()) {
      return bad("no test command (the line has no crucible.test_cmd; pass --test-cmd)");
    }
    t.set_untestable(t.fail_to_pass().empty());
    result.tasks.push_back(std::move(t));
  }
  if (result.tasks.empty()) {
    return Fail(Code::kInvalidArgument, fmt::format("{}: no task in the file", file));
  }
  v1::Suite& s = result.suite;
  s.set_name(options.suite);
  s.set_repo_path(repo);
  s.set_test_cmd(result.tasks.front().test_cmd());
  s.set_test_timeout_s(result.tasks.front().test_timeout_s());
  s.set_results(result.tasks.front().results());
  if (result.tasks.front().has_log_results()) {
    *s.mutable_log_results() = result.tasks.front().log_results();
  }
  s.set_setup_cmd(result.tasks.front().setup_cmd());
  s.set_task_count(static_cast<int32_t>(result.tasks.size()));
  s.set_created_at_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count());
  return result;
}

bool IsHeldOut(std::string_view task_id, double fraction, uint64_t seed) {
  if (fraction <= 0.0) return false;
  if (fraction >= 1.0) return true;
  // FNV-1a finished with splitmix64's mixer (ids differ in few characters);
  // its top 53 bits as a number in [0, 1).
  uint64_t z = Fnv1a(seed, task_id);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  const double u = static_cast<double>(z >> 11) * 0x1.0p-53;
  return u < fraction;
}

Status SplitHeldOut(std::vector<v1::GoldenTask>& tasks, double fraction, uint64_t seed) {
  if (!(fraction >= 0.0 && fraction <= 1.0)) {
    return Fail(Code::kInvalidArgument,
                fmt::format("the held-out fraction must be between 0 and 1, not {}", fraction));
  }
  for (auto& t : tasks) t.set_held_out(IsHeldOut(t.id(), fraction, seed));
  return {};
}

}  // namespace crucible::golden
