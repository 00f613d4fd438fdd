// `crucible review`: what people decided about a run's attempts
// (docs/review-loop.md "What people decided"): one verdict from the command
// line, a CSV or JSONL file of them, or an interactive walk through the
// attempts that have none yet.
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "golden/rules.h"

namespace crucible::cli {

namespace {

using nlohmann::json;

constexpr size_t kListedBadRows = 20;
constexpr size_t kIntentLines = 15;
constexpr size_t kDiffLines = 200;
constexpr size_t kFailingTests = 20;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The reviewer: `flag`, else $CRUCIBLE_REVIEWER, else $USER, else "unknown".
std::string ResolveReviewer(const std::string& flag) {
  if (!flag.empty()) return flag;
  for (const char* var : {"CRUCIBLE_REVIEWER", "USER"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && *v != '\0') return v;
  }
  return "unknown";
}

bool IsVerdict(std::string_view v) {
  return v == "accept" || v == "reject" || v == "needs-changes";
}

std::string BadVerdict(std::string_view v) {
  return fmt::format("verdict '{}' is not accept, reject or needs-changes", v);
}

// A tag is a failure mode of evaluation.md or a team's own lower-case-kebab
// word, optionally with a leading "-" (remove a derived one).
std::optional<std::string> CheckTag(const std::string& tag) {
  static const std::regex kKebab("-?[a-z][a-z0-9]*(-[a-z0-9]+)*");
  if (std::regex_match(tag, kKebab)) return std::nullopt;
  std::string known;
  for (const auto& m : golden::FailureModes()) known += (known.empty() ? "" : ", ") + m;
  return fmt::format(
      "tag '{}' is neither a failure mode ({}) nor a lower-case-kebab word of your own (a "
      "leading '-' removes a mode the evidence derived)",
      tag, known);
}

// Splits "a; b,c d" into its tags.
std::vector<std::string> SplitTags(std::string_view text) {
  std::vector<std::string> tags;
  std::string cur;
  for (char c : text) {
    if (c == ';' || c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (!cur.empty()) tags.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) tags.push_back(std::move(cur));
  return tags;
}

// The number of an attempt of `run_id` as typed: "7" or "RUN/7".
Result<uint64_t> ParseAttemptNumber(const std::string& run_id, const std::string& text) {
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec == std::errc() && p == text.data() + text.size() && !text.empty()) return n;
  auto ref = ParseAttemptRef(text);
  if (!ref) {
    return Fail(Code::kInvalidArgument,
                fmt::format("attempt '{}' is not a number or RUN/NUMBER (the attempt numbers of "
                            "`crucible report {} --by attempt`)",
                            text, run_id));
  }
  if (ref->run_id != run_id) {
    return Fail(Code::kInvalidArgument, fmt::format("attempt '{}' is of run '{}', not of run '{}'",
                                                    text, ref->run_id, run_id));
  }
  return ref->number;
}

// "2026-11-30T10:15:00Z", "...T10:15:00.250+01:00", "2026-11-30 10:15:00",
// "2026-11-30" (UTC unless an offset says otherwise), or milliseconds since
// the epoch.
std::optional<int64_t> ParseTime(const std::string& text) {
  int64_t ms = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec == std::errc() && p == text.data() + text.size() && !text.empty()) {
    return ms >= 0 ? std::optional<int64_t>(ms) : std::nullopt;
  }
  static const std::regex kIso(
      R"((\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)"
      R"((Z|[+-]\d{2}:?\d{2})?)");
  std::smatch m;
  if (!std::regex_match(text, m, kIso)) return std::nullopt;
  auto num = [&](int i) { return m[i].matched ? std::stoi(m[i].str()) : 0; };
  std::tm tm{};
  tm.tm_year = num(1) - 1900;
  tm.tm_mon = num(2) - 1;
  tm.tm_mday = num(3);
  tm.tm_hour = num(4);
  tm.tm_min = num(5);
  tm.tm_sec = num(6);
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60) {
    return std::nullopt;
  }
  int64_t secs = ::timegm(&tm);
  int64_t frac_ms = 0;
  if (m[7].matched) {
    std::string frac = (m[7].str() + "00").substr(0, 3);
    frac_ms = std::stoi(frac);
  }
  if (m[8].matched && m[8].str() != "Z") {
    std::string z = m[8].str();
    z.erase(std::remove(z.begin(), z.end(), ':'), z.end());
    const int hh = std::stoi(z.substr(1, 2)), mm = std::stoi(z.substr(3, 2));
    const int64_t offset = (hh * 60 + mm) * 60;
    secs += z[0] == '+' ? -offset : offset;
  }
  return secs * 1000 + frac_ms;
}

// ---- CSV (RFC 4180)

struct CsvRecord {
  int line = 0;  // 1-based line where the record starts
  std::vector<std::string> fields;
};

// Splits `text` into records. Quoted fields may hold commas, doubled quotes
// and line breaks; records end at LF or CRLF; blank lines are skipped.
// kInvalidArgument "FILE:LINE: ..." for a quote left open or text after a
// closing quote.
Result<std::vector<CsvRecord>> ParseCsv(const std::string& name, const std::string& text) {
  std::vector<CsvRecord> records;
  CsvRecord rec;
  std::string field;
  int line = 1;
  rec.line = 1;
  bool in_record = false;  // something of the current record was read
  size_t i = 0;
  auto end_field = [&] {
    rec.fields.push_back(std::move(field));
    field.clear();
  };
  auto end_record = [&] {
    if (in_record) {
      end_field();
      records.push_back(std::move(rec));
    }
    rec = CsvRecord{};
    field.clear();
    in_record = false;
  };
  while (i < text.size()) {
    const char c = text[i];
    if (!in_record) rec.line = line;
    if (c == '"' && field.empty()) {
      in_record = true;
      const int start = line;
      ++i;
      for (;;) {
        if (i >= text.size()) {
          return Fail(Code::kInvalidArgument,
                      fmt::format("{}:{}: a quoted field is never closed", name, start));
        }
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        if (text[i] == '\n') ++line;
        field.push_back(text[i++]);
      }
      if (i < text.size() && text[i] != ',' && text[i] != '\n' &&
          !(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {
        return Fail(Code::kInvalidArgument,
                    fmt::format("{}:{}: text after the closing quote of a field", name, line));
      }
      continue;
    }
    if (c == ',') {
      in_record = true;
      end_field();
      ++i;
    } else if (c == '\n' || (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {
      end_record();
      i += c == '\r' ? 2 : 1;
      ++line;
    } else {
      in_record = true;
      field.push_back(c);
      ++i;
    }
  }
  end_record();
  return records;
}

// ---- checking rows

// One row of an import as read, before its checks.
struct Row {
  int line = 0;
  std::string attempt, verdict, note, reviewer, at;
  std::vector<std::string> tags;
  std::vector<std::string> errors;  // found while reading the row
};

const std::set<std::string>& Columns() {
  static const std::set<std::string> kColumns = {"attempt", "verdict",  "tags",
                                                 "note",    "reviewer", "at"};
  return kColumns;
}

std::string ColumnList() { return "attempt, verdict, tags, note, reviewer, at"; }

Result<std::vector<Row>> ReadCsv(const std::string& name, const std::string& text) {
  CRUCIBLE_ASSIGN_OR_RETURN(std::vector<CsvRecord> records, ParseCsv(name, text));
  if (records.empty()) {
    return Fail(Code::kInvalidArgument,
                fmt::format("{}: empty; expected a header row ({}) and a row per verdict", name,
                            ColumnList()));
  }
  const CsvRecord& header = records.front();
  std::vector<std::string> cols;
  for (std::string h : header.fields) {
    h.erase(0, h.find_first_not_of(" \t"));
    h.erase(h.find_last_not_of(" \t") + 1);
    std::transform(h.begin(), h.end(), h.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!Columns().contains(h)) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("{}:{}: unknown column '{}' in the header row; the columns are {}",
                              name, header.line, h, ColumnList()));
    }
    if (std::find(cols.begin(), cols.end(), h) != cols.end()) {
      return Fail(
          Code::kInvalidArgument,
          fmt::format("{}:{}: column '{}' appears twice in the header row", name, header.line, h));
    }
    cols.push_back(h);
  }
  for (const char* required : {"attempt", "verdict"}) {
    if (std::find(cols.begin(), cols.end(), required) == cols.end()) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("{}:{}: the header row has no '{}' column (the first row names the "
                              "columns: {})",
                              name, header.line, required, ColumnList()));
    }
  }
  std::vector<Row> rows;
  for (size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& rec = records[r];
    Row row;
    row.line = rec.line;
    if (rec.fields.size() != cols.size()) {
      row.errors.push_back(
          fmt::format("{} fields, the header row has {}", rec.fields.size(), cols.size()));
      rows.push_back(std::move(row));
      continue;
    }
    for (size_t c = 0; c < cols.size(); ++c) {
      const std::string& v = rec.fields[c];
      if (cols[c] == "attempt") row.attempt = v;
      if (cols[c] == "verdict") row.verdict = v;
      if (cols[c] == "tags") row.tags = SplitTags(v);
      if (cols[c] == "note") row.note = v;
      if (cols[c] == "reviewer") row.reviewer = v;
      if (cols[c] == "at") row.at = v;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<Row> ReadJsonl(const std::string& text) {
  std::vector<Row> rows;
  int line = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string body = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line;
    if (body.find_first_not_of(" \t\r") == std::string::npos) continue;
    Row row;
    row.line = line;
    json obj = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (obj.is_discarded() || !obj.is_object()) {
      row.errors.push_back("not a JSON object");
      rows.push_back(std::move(row));
      continue;
    }
    auto as_text = [&](const std::string& key, const json& v, bool numbers) -> std::string {
      if (v.is_string()) return v.get<std::string>();
      if (numbers && v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
      if (v.is_null()) return "";
      row.errors.push_back(fmt::format("{} must be {}, not {}", key,
                                       numbers ? "a number or a string" : "a string", v.dump()));
      return "";
    };
    for (const auto& [key, v] : obj.items()) {
      if (!Columns().contains(key)) {
        row.errors.push_back(fmt::format("unknown key '{}' (the keys are {})", key, ColumnList()));
      } else if (key == "attempt") {
        row.attempt = as_text(key, v, true);
        if (row.attempt.empty() && row.errors.empty()) row.errors.push_back("attempt is empty");
      } else if (key == "verdict") {
        row.verdict = as_text(key, v, false);
      } else if (key == "tags") {
        if (v.is_array()) {
          for (const auto& t : v) {
            if (t.is_string()) {
              row.tags.push_back(t.get<std::string>());
            } else {
              row.errors.push_back(fmt::format("tags must be strings, not {}", t.dump()));
            }
          }
        } else {
          row.tags = SplitTags(as_text(key, v, false));
        }
      } else if (key == "note") {
        row.note = as_text(key, v, false);
      } else if (key == "reviewer") {
        row.reviewer = as_text(key, v, false);
      } else if (key == "at") {
        row.at = as_text(key, v, true);
      }
    }
    if (!obj.contains("attempt")) row.errors.push_back("no attempt");
    if (!obj.contains("verdict")) row.errors.push_back("no verdict");
    rows.push_back(std::move(row));
  }
  return rows;
}

// Why an attempt cannot take a verdict, or nullopt.
std::optional<std::string> NotReviewable(const v1::Attempt& a) {
  switch (a.state()) {
    case v1::Attempt::DONE:
      return std::nullopt;
    case v1::Attempt::FAILED:
      return fmt::format(
          "attempt {} of run '{}' failed for infrastructure reasons ({}): the agent's work was "
          "never scored, so there is nothing to review",
          a.number(), a.run_id(), a.error().empty() ? "no reason stored" : a.error());
    default: {
      std::string state = v1::Attempt::State_Name(a.state());
      std::transform(state.begin(), state.end(), state.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      return fmt::format(
          "attempt {} of run '{}' is {}: it has not finished yet; review it once it has",
          a.number(), a.run_id(), state);
    }
  }
}

// The run's attempts by number, for checking rows.
struct RunAttempts {
  std::string run_id;
  std::map<uint64_t, v1::Attempt> by_number;

  std::optional<std::string> Check(uint64_t number) const {
    auto it = by_number.find(number);
    if (it == by_number.end()) {
      if (by_number.empty()) return fmt::format("run '{}' has no attempts", run_id);
      return fmt::format("run '{}' has no attempt {} (its attempts are numbered {} to {})", run_id,
                         number, by_number.begin()->first, by_number.rbegin()->first);
    }
    return NotReviewable(it->second);
  }
};

Result<RunAttempts> LoadAttempts(storage::Store& store, const std::string& run_id) {
  RunAttempts out;
  out.run_id = run_id;
  CRUCIBLE_ASSIGN_OR_RETURN(std::vector<v1::Attempt> attempts, store.ListAttempts(run_id));
  for (auto& a : attempts) out.by_number.emplace(a.number(), std::move(a));
  return out;
}

std::string Describe(const v1::Verdict& v) {
  std::string out = fmt::format("{} for attempt {} of run '{}' by {}", v.verdict(), v.attempt(),
                                v.run_id(), v.reviewer());
  if (v.tags_size() > 0) out += fmt::format(", tags {}", fmt::join(v.tags(), " "));
  if (!v.note().empty()) out += ", with a note";
  return out;
}

// ---- one verdict

int ReviewOne(storage::Store& store, const std::string& run_id, const std::string& attempt_text,
              const std::string& verdict, const std::vector<std::string>& tags,
              const std::string& note, const std::string& reviewer) {
  if (!IsVerdict(verdict)) return ReportError(Error(Code::kInvalidArgument, BadVerdict(verdict)));
  std::vector<std::string> all_tags;
  for (const auto& t : tags) {
    for (auto& one : SplitTags(t)) all_tags.push_back(std::move(one));
  }
  for (const auto& t : all_tags) {
    if (auto why = CheckTag(t)) return ReportError(Error(Code::kInvalidArgument, *why));
  }
  auto number = ParseAttemptNumber(run_id, attempt_text);
  if (!number) return ReportError(number.error());
  auto attempts = LoadAttempts(store, run_id);
  if (!attempts) return ReportError(attempts.error());
  if (auto why = attempts->Check(*number)) return ReportError(Error(Code::kNotFound, *why));
  v1::Verdict v;
  v.set_run_id(run_id);
  v.set_attempt(*number);
  v.set_verdict(verdict);
  for (const auto& t : all_tags) v.add_tags(t);
  v.set_note(note);
  v.set_reviewer(ResolveReviewer(reviewer));
  v.set_at_ms(NowMs());
  v.set_source("cli");
  if (auto s = store.AddVerdicts({v}); !s) return ReportError(s.error());
  std::printf("stored %s\n", Describe(v).c_str());
  return 0;
}

// ---- import

int Import(storage::Store& store, const std::string& run_id, const std::string& file,
           std::string format, const std::string& reviewer_flag) {
  if (format.empty()) {
    const std::string ext = std::filesystem::path(file).extension().string();
    if (ext == ".csv") {
      format = "csv";
    } else if (ext == ".jsonl" || ext == ".json" || ext == ".ndjson") {
      format = "jsonl";
    } else {
      return ReportError(Error(
          Code::kInvalidArgument,
          fmt::format("{}: cannot tell the format from the name (.csv, .jsonl or .json lines); "
                      "pass --import-format csv or jsonl",
                      file)));
    }
  }
  auto text = ReadFile(file);
  if (!text) return ReportError(text.error());
  auto attempts = LoadAttempts(store, run_id);
  if (!attempts) return ReportError(attempts.error());

  std::vector<Row> rows;
  if (format == "csv") {
    auto read = ReadCsv(file, *text);
    if (!read) return ReportError(read.error());
    rows = std::move(*read);
  } else {
    rows = ReadJsonl(*text);
  }
  if (rows.empty()) {
    return ReportError(
        Error(Code::kInvalidArgument, fmt::format("{}: no verdicts in it; nothing stored", file)));
  }

  const std::string default_reviewer = ResolveReviewer(reviewer_flag);
  const int64_t now = NowMs();
  std::vector<std::string> bad;
  size_t bad_rows = 0;
  std::vector<v1::Verdict> verdicts;
  for (Row& row : rows) {
    const size_t problems_before = bad.size();
    auto err = [&](const std::string& why) {
      if (bad.size() == problems_before) ++bad_rows;
      bad.push_back(fmt::format("{}:{}: {}", file, row.line, why));
    };
    for (const auto& e : row.errors) err(e);
    if (!row.errors.empty()) continue;
    v1::Verdict v;
    v.set_run_id(run_id);
    bool ok = true;
    auto number = ParseAttemptNumber(run_id, row.attempt);
    if (!number) {
      err(row.attempt.empty() ? "attempt is empty" : number.error().message());
      ok = false;
    } else if (auto why = attempts->Check(*number)) {
      err(*why);
      ok = false;
    } else {
      v.set_attempt(*number);
    }
    if (!IsVerdict(row.verdict)) {
      err(BadVerdict(row.verdict));
      ok = false;
    }
    for (const auto& t : row.tags) {
      if (auto why = CheckTag(t)) {
        err(*why);
        ok = false;
      }
    }
    int64_t at = now;
    if (!row.at.empty()) {
      auto parsed = ParseTime(row.at);
      if (!parsed) {
        err(
            fmt::format("at '{}' is neither an ISO 8601 time (2026-11-30T10:15:00Z) nor "
                        "milliseconds since the epoch",
                        row.at));
        ok = false;
      } else {
        at = *parsed;
      }
    }
    if (!ok) continue;
    v.set_verdict(row.verdict);
    for (const auto& t : row.tags) v.add_tags(t);
    v.set_note(row.note);
    v.set_reviewer(row.reviewer.empty() ? default_reviewer : row.reviewer);
    v.set_at_ms(at);
    v.set_source(fmt::format("import {}:{}", file, row.line));
    verdicts.push_back(std::move(v));
  }
  if (!bad.empty()) {
    for (size_t i = 0; i < bad.size() && i < kListedBadRows; ++i) {
      std::fprintf(stderr, "%s\n", bad[i].c_str());
    }
    if (bad.size() > kListedBadRows) {
      std::fprintf(stderr, "... and %zu more\n", bad.size() - kListedBadRows);
    }
    return ReportError(
        Error(Code::kInvalidArgument,
              fmt::format("{}: {} of {} rows {} bad; nothing stored (fix {} and import the file "
                          "again)",
                          file, bad_rows, rows.size(), bad_rows == 1 ? "is" : "are",
                          bad_rows == 1 ? "it" : "them")));
  }
  if (auto s = store.AddVerdicts(verdicts); !s) return ReportError(s.error());
  std::printf("stored %zu verdicts from %s\n", verdicts.size(), file.c_str());
  return 0;
}

// ---- interactive

// The terminal modes to restore, for the signal handlers.
struct termios g_saved_modes;
volatile sig_atomic_t g_modes_saved = 0;

void RestoreAndExit(int sig) {
  if (g_modes_saved) (void)::tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_modes);
  const char msg[] = "\ninterrupted; the verdicts given so far are stored\n";
  (void)!::write(STDOUT_FILENO, msg, sizeof msg - 1);
  ::_exit(128 + sig);
}

// Raw (non-canonical, no echo) key reads on stdin for its lifetime; the
// terminal's modes are restored on every way out, SIGINT and SIGTERM
// included (exit 130 or 143).
class RawTerminal {
 public:
  static Result<std::unique_ptr<RawTerminal>> Enter() {
    if (::tcgetattr(STDIN_FILENO, &g_saved_modes) != 0) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("cannot read the terminal's modes: {}", std::strerror(errno)));
    }
    g_modes_saved = 1;
    struct sigaction sa {};
    sa.sa_handler = RestoreAndExit;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGHUP, &sa, nullptr);
    auto t = std::unique_ptr<RawTerminal>(new RawTerminal());
    if (auto s = t->Raw(); !s) return Fail(s.error());
    return t;
  }
  ~RawTerminal() {
    (void)::tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_modes);
    g_modes_saved = 0;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

  Status Raw() {
    struct termios raw = g_saved_modes;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (::tcsetattr(STDIN_FILENO, TCSANOW, &raw) != 0) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("cannot set the terminal's modes: {}", std::strerror(errno)));
    }
    return {};
  }
  void Canonical() { (void)::tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_modes); }

  // One key; nullopt at the end of input.
  static std::optional<char> Key() {
    char c = 0;
    for (;;) {
      ssize_t n = ::read(STDIN_FILENO, &c, 1);
      if (n == 1) return c;
      if (n < 0 && errno == EINTR) continue;
      return std::nullopt;
    }
  }

  // Prints `prompt` and reads one line in canonical mode (echoed, editable),
  // without its newline; nullopt at the end of input.
  std::optional<std::string> Line(const std::string& prompt) {
    Canonical();
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    std::fflush(stdout);
    std::string line;
    bool got = false;
    for (;;) {
      auto c = Key();
      if (!c) break;
      got = true;
      if (*c == '\n') break;
      line.push_back(*c);
    }
    (void)Raw();
    if (!got) return std::nullopt;
    return line;
  }

 private:
  RawTerminal() = default;
};

struct Colours {
  bool on = false;
  std::string Paint(std::string_view code, std::string_view text) const {
    if (!on) return std::string(text);
    return fmt::format("\033[{}m{}\033[0m", code, text);
  }
};

// What the reviewer sees of one attempt.
std::string ShowAttempt(storage::Store& store, const v1::Run& run, const v1::Attempt& a,
                        size_t index, size_t total, const Colours& col) {
  std::string out = "\n";
  auto score = store.GetScore(run.id(), a.number());
  auto evidence = store.GetEvidence(run.id(), a.number());
  std::string completion = "not scored";
  if (score) {
    completion =
        score->completed() ? (score->strict_completed() ? "strict" : "loose only") : "tests fail";
  }
  std::string rounds = "1 round";
  if (evidence) {
    const int used = std::max(1, evidence->rounds_size());
    const int allowed = std::max(1, evidence->rounds_allowed());
    rounds = fmt::format("{} of {} round{}", used, allowed, allowed == 1 ? "" : "s");
    if (score && allowed > 1) {
      rounds += score->merge_ready_round() > 0
                    ? fmt::format(", merge-ready in round {}", score->merge_ready_round())
                    : ", never merge-ready";
    }
  }
  out += col.Paint("1", fmt::format("[{}/{}] attempt {}  agent {}  task {}  sample {}  {}  {}",
                                    index + 1, total, a.number(), a.agent(), a.task_id(),
                                    a.sample(), completion, rounds)) +
         "\n";
  auto task = store.GetTask(run.suite(), a.task_id());
  if (task) {
    out += "\nintent:\n";
    size_t lines = 0, pos = 0;
    const std::string& intent = task->intent();
    while (pos < intent.size() && lines < kIntentLines) {
      size_t nl = intent.find('\n', pos);
      if (nl == std::string::npos) nl = intent.size();
      out += "  " + intent.substr(pos, nl - pos) + "\n";
      pos = nl + 1;
      ++lines;
    }
    if (pos < intent.size()) out += "  ...\n";
  }
  if (score && score->violations_size() > 0) {
    out += "\nviolations:\n";
    for (const auto& v : score->violations()) {
      std::string where = v.file().empty() ? ""
                          : v.line() > 0   ? fmt::format(" {}:{}", v.file(), v.line())
                                           : " " + v.file();
      out += fmt::format("  {}{} {}\n", col.Paint("33", v.kind()), where, v.detail());
    }
  }
  if (evidence) {
    std::vector<std::string> failing;
    for (const auto& t : evidence->tests().tests()) {
      if (t.status() == v1::TestOutcome::FAILED || t.status() == v1::TestOutcome::ERROR) {
        failing.push_back(t.id());
      }
    }
    if (!failing.empty()) {
      out += "\nfailing tests:\n";
      for (size_t i = 0; i < failing.size() && i < kFailingTests; ++i) {
        out += "  " + col.Paint("31", failing[i]) + "\n";
      }
      if (failing.size() > kFailingTests) {
        out += fmt::format("  ... and {} more\n", failing.size() - kFailingTests);
      }
    }
    const std::string& diff = evidence->final_diff();
    if (diff.empty()) {
      out += evidence->diff_bytes() > 0
                 ? fmt::format("\ndiff: {} bytes, not stored\n", evidence->diff_bytes())
                 : "\ndiff: empty (the agent changed nothing)\n";
    } else {
      out += "\ndiff:\n";
      size_t shown = 0, pos = 0, left = 0;
      while (pos < diff.size()) {
        size_t nl = diff.find('\n', pos);
        if (nl == std::string::npos) nl = diff.size();
        std::string_view line(diff.data() + pos, nl - pos);
        pos = nl + 1;
        if (shown >= kDiffLines) {
          ++left;
          continue;
        }
        ++shown;
        std::string_view code = line.starts_with("+++") || line.starts_with("---") ? "1"
                                : line.starts_with("+")                            ? "32"
                                : line.starts_with("-")                            ? "31"
                                : line.starts_with("@@")                           ? "36"
                                : line.starts_with("diff ")                        ? "1"
                                                                                   : "";
        out += (code.empty() ? std::string(line) : col.Paint(code, line)) + "\n";
      }
      if (left > 0) {
        out += fmt::format(
            "... {} more lines (the whole diff: crucible report {} --by attempt "
            "--format json lists the files; crucible trace {}/{})\n",
            left, run.id(), run.id(), a.number());
      }
    }
  } else {
    out += "\n(no evidence stored)\n";
  }
  return out;
}

void Print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

int ReviewNext(storage::Store& store, const std::string& run_id, const std::string& agent,
               const std::string& reviewer_flag) {
  auto run = store.GetRun(run_id);
  if (!run) return ReportError(run.error());
  if (!::isatty(STDIN_FILENO)) {
    return ReportError(
        Error(Code::kFailedPrecondition, "--next needs a terminal; use --verdict or --import"));
  }
  auto attempts = store.ListAttempts(run_id);
  if (!attempts) return ReportError(attempts.error());
  auto verdicts = store.ListVerdicts(run_id);
  if (!verdicts) return ReportError(verdicts.error());
  std::set<uint64_t> decided;
  for (const auto& v : *verdicts) decided.insert(v.attempt());
  if (!agent.empty() && std::none_of(run->agents().begin(), run->agents().end(),
                                     [&](const v1::AgentSpec& s) { return s.name() == agent; })) {
    return ReportError(
        Error(Code::kNotFound, fmt::format("run '{}' has no agent '{}'", run_id, agent)));
  }
  std::vector<const v1::Attempt*> todo;
  for (const auto& a : *attempts) {
    if (a.state() != v1::Attempt::DONE || decided.contains(a.number())) continue;
    if (!agent.empty() && a.agent() != agent) continue;
    todo.push_back(&a);
  }
  if (todo.empty()) {
    std::printf("nothing to review: every finished attempt of run '%s'%s has a verdict\n",
                run_id.c_str(), agent.empty() ? "" : (" by agent " + agent).c_str());
    return 0;
  }
  const std::string reviewer = ResolveReviewer(reviewer_flag);
  const char* no_color = std::getenv("NO_COLOR");
  const Colours col{.on = ::isatty(STDOUT_FILENO) && (no_color == nullptr || *no_color == '\0')};

  auto term = RawTerminal::Enter();
  if (!term) return ReportError(term.error());
  size_t reviewed = 0, skipped = 0, i = 0;
  bool quit = false;
  int status = 0;
  for (; i < todo.size() && !quit; ++i) {
    const v1::Attempt& a = *todo[i];
    Print(ShowAttempt(store, *run, a, i, todo.size(), col));
    std::vector<std::string> tags;
    for (bool done = false; !done;) {
      Print(fmt::format("{}[a]ccept [r]eject [n]eeds-changes [t]ags [s]kip [q]uit: ",
                        tags.empty() ? "" : fmt::format("tags {}  ", fmt::join(tags, " "))));
      auto key = RawTerminal::Key();
      if (!key) {
        Print("\n(end of input)\n");
        quit = true;
        break;
      }
      std::string verdict;
      switch (*key) {
        case 'a':
          verdict = "accept";
          break;
        case 'r':
          verdict = "reject";
          break;
        case 'n':
          verdict = "needs-changes";
          break;
        case 's':
          Print("skip\n");
          ++skipped;
          done = true;
          continue;
        case 'q':
          Print("quit\n");
          quit = true;
          done = true;
          continue;
        case 't': {
          Print("t\n");
          auto line = (*term)->Line(
              "tags (failure modes or your own, space separated; -MODE removes one): ");
          if (!line) {
            quit = true;
            done = true;
            continue;
          }
          std::vector<std::string> got = SplitTags(*line);
          std::string problem;
          for (const auto& t : got) {
            if (auto why = CheckTag(t)) problem = *why;
          }
          if (!problem.empty()) {
            Print(problem + "; tags not taken\n");
          } else {
            tags = std::move(got);
          }
          continue;
        }
        default:
          Print(fmt::format(
              "\nkey '{}' does nothing here: a, r, n, t, s or q\n",
              std::isprint(static_cast<unsigned char>(*key)) ? std::string(1, *key) : "?"));
          continue;
      }
      v1::Verdict v;
      v.set_run_id(run_id);
      v.set_attempt(a.number());
      v.set_verdict(verdict);
      for (const auto& t : tags) v.add_tags(t);
      v.set_reviewer(reviewer);
      v.set_at_ms(NowMs());
      v.set_source("interactive");
      if (auto s = store.AddVerdicts({v}); !s) {
        Print("\n");
        status = ReportError(s.error());
        quit = true;
        break;
      }
      Print(fmt::format("{}\nstored {}\n", verdict, Describe(v)));
      ++reviewed;
      done = true;
    }
  }
  term->reset();
  const size_t left = todo.size() - reviewed - skipped;
  std::printf("reviewed %zu, skipped %zu, %zu left\n", reviewed, skipped, left);
  return status;
}

struct Options {
  std::string db, run, attempt, verdict, note, reviewer, import, import_format, agent;
  std::vector<std::string> tags;
  bool next = false;
};

int Review(const Options& o) {
  const bool one = !o.verdict.empty() || !o.attempt.empty();
  const int modes = (one ? 1 : 0) + (!o.import.empty() ? 1 : 0) + (o.next ? 1 : 0);
  if (modes == 0) {
    return ReportError(Error(Code::kInvalidArgument,
                             "say what to do: ATTEMPT --verdict V, --import FILE or --next"));
  }
  if (modes > 1) {
    return ReportError(Error(Code::kInvalidArgument,
                             "ATTEMPT --verdict, --import and --next do not go together; use one"));
  }
  if (one && o.verdict.empty()) {
    return ReportError(
        Error(Code::kInvalidArgument,
              "--verdict accept|reject|needs-changes is missing for attempt " + o.attempt));
  }
  if (one && o.attempt.empty()) {
    return ReportError(
        Error(Code::kInvalidArgument,
              "--verdict needs the attempt: crucible review RUN ATTEMPT --verdict " + o.verdict));
  }
  if (!one && (!o.tags.empty() || !o.note.empty())) {
    return ReportError(Error(Code::kInvalidArgument,
                             "--tag and --note go with ATTEMPT --verdict (an import file has "
                             "tags and note columns)"));
  }
  if (!o.agent.empty() && !o.next) {
    return ReportError(Error(Code::kInvalidArgument, "--agent goes with --next"));
  }
  if (!o.import_format.empty() && o.import.empty()) {
    return ReportError(Error(Code::kInvalidArgument, "--import-format goes with --import"));
  }
  auto store = OpenDb(o.db, /*create=*/false);
  if (!store) return ReportError(store.error());
  if (auto run = (*store)->GetRun(o.run); !run) return ReportError(run.error());
  if (o.next) return ReviewNext(**store, o.run, o.agent, o.reviewer);
  if (!o.import.empty()) return Import(**store, o.run, o.import, o.import_format, o.reviewer);
  return ReviewOne(**store, o.run, o.attempt, o.verdict, o.tags, o.note, o.reviewer);
}

}  // namespace

void AddReviewCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "review",
      "Record what people decided about a run's attempts (accept, reject, needs-changes, with "
      "failure-mode tags and a note): one verdict, an import of a CSV or JSONL file, or an "
      "interactive walk (--next) through the attempts without one. Stored append-only; the "
      "latest verdict of an attempt counts in `crucible report`.");
  cmd->add_option("run", o->run, "run id (printed by `crucible run`)")->required();
  cmd->add_option("attempt", o->attempt,
                  "attempt number as `crucible report RUN --by attempt` shows it, or RUN/NUMBER");
  cmd->add_option("--verdict", o->verdict, "accept, reject or needs-changes");
  cmd->add_option("--tag", o->tags,
                  "a failure mode (context-blindness, hallucinated-api, instruction-drift, "
                  "silent-regression, scope-creep) or a lower-case-kebab word of your own; "
                  "-MODE removes a derived one; repeatable");
  cmd->add_option("--note", o->note, "free text kept with the verdict");
  cmd->add_option("--reviewer", o->reviewer,
                  "who decided (default $CRUCIBLE_REVIEWER, else $USER, else unknown)");
  cmd->add_option("--import", o->import,
                  "a CSV (header row: attempt, verdict, and optional tags, note, reviewer, at) "
                  "or JSONL file of verdicts; every row is checked before any is stored");
  cmd->add_option("--import-format", o->import_format,
                  "csv or jsonl (default: from the file's extension)")
      ->check(CLI::IsMember({"csv", "jsonl"}));
  cmd->add_flag("--next", o->next,
                "walk the finished attempts without a verdict in the terminal, one key each");
  cmd->add_option("--agent", o->agent, "with --next: only this agent's attempts");
  cmd->add_option("--db", o->db, "database directory (default $CRUCIBLE_DB or ./.crucible)");
  cmd->callback([=] { *exit_code = Review(*o); });
}

}  // namespace crucible::cli
