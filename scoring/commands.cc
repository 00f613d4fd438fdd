#include "scoring/commands.h"

#include <algorithm>
#include <array>

namespace crucible::scoring {
namespace {

using Words = std::vector<std::string>;

std::string_view Basename(std::string_view path) {
  auto slash = path.find_last_of('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// Splits a shell command line into simple commands of words. Quotes group
// words (their content is kept as one word); no expansion is done.
std::vector<Words> SimpleCommands(std::string_view line) {
  std::vector<Words> out(1);
  std::string word;
  bool in_word = false;
  auto end_word = [&] {
    if (in_word) out.back().push_back(word);
    word.clear();
    in_word = false;
  };
  auto end_command = [&] {
    end_word();
    if (!out.back().empty()) out.emplace_back();
  };
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '\'' || c == '"') {
      size_t close = line.find(c, i + 1);
      if (close == std::string_view::npos) close = line.size();
      word.append(line.substr(i + 1, close - i - 1));
      in_word = true;
      i = close;
    } else if (c == '\\' && i + 1 < line.size()) {
      word.push_back(line[++i]);
      in_word = true;
    } else if (c == ';' || c == '|' || c == '&' || c == '\n' || c == '(' || c == ')' || c == '`') {
      end_command();
    } else if (c == ' ' || c == '\t' || c == '\r') {
      end_word();
    } else {
      word.push_back(c);
      in_word = true;
    }
  }
  end_command();
  if (out.back().empty()) out.pop_back();
  return out;
}

bool IsAssignment(std::string_view w) {
  auto eq = w.find('=');
  if (eq == std::string_view::npos || eq == 0) return false;
  return std::all_of(w.begin(), w.begin() + static_cast<std::ptrdiff_t>(eq), [](char c) {
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  });
}

bool IsPython(std::string_view prog) {
  return prog == "python" || prog == "python3" || prog.starts_with("python3.") || prog == "pypy3";
}

// Drops the wrappers in front of the program: assignments, env, timeout N,
// nice, time, uv/poetry/pipenv run, npx, bundle exec, exec, command, sudo.
size_t SkipWrappers(const Words& w) {
  size_t i = 0;
  while (i < w.size()) {
    std::string_view p = Basename(w[i]);
    if (IsAssignment(w[i]) || p == "env" || p == "nice" || p == "time" || p == "exec" ||
        p == "command" || p == "sudo" || p == "npx" || p == "stdbuf") {
      ++i;
      // Options of the wrapper (env -i, nice -n 5, stdbuf -oL).
      while (i < w.size() && w[i].starts_with("-")) {
        ++i;
        if (p == "nice" && i < w.size() && !w[i].starts_with("-")) ++i;
      }
    } else if (p == "timeout") {
      ++i;
      while (i < w.size() && w[i].starts_with("-")) ++i;
      if (i < w.size()) ++i;  // the duration
    } else if ((p == "uv" || p == "poetry" || p == "pipenv" || p == "pdm" || p == "hatch") &&
               i + 1 < w.size() && w[i + 1] == "run") {
      i += 2;
    } else if (p == "bundle" && i + 1 < w.size() && w[i + 1] == "exec") {
      i += 2;
    } else {
      break;
    }
  }
  return i;
}

// The first word after `from` that is not an option.
std::string_view FirstArg(const Words& w, size_t from) {
  for (size_t i = from; i < w.size(); ++i) {
    if (!w[i].starts_with("-")) return w[i];
  }
  return {};
}

bool KnownRunner(const Words& w, size_t i) {
  if (i >= w.size()) return false;
  std::string_view prog = Basename(w[i]);
  static constexpr std::string_view kAlone[] = {
      "pytest", "py.test", "tox",     "nox",       "jest",  "vitest",      "mocha",
      "ctest",  "rspec",   "phpunit", "nosetests", "trial", "runtests.py", "cargo-nextest"};
  if (std::find(std::begin(kAlone), std::end(kAlone), prog) != std::end(kAlone)) return true;
  std::string_view arg = FirstArg(w, i + 1);
  if (IsPython(prog)) {
    // python -m pytest | unittest | tox; python runtests.py; python manage.py test;
    // python /usr/bin/pytest; python bin/test.
    for (size_t j = i + 1; j < w.size(); ++j) {
      if (w[j] == "-m" && j + 1 < w.size()) {
        std::string_view mod = w[j + 1];
        return mod == "pytest" || mod == "unittest" || mod == "tox" || mod == "nose" ||
               mod == "nox" || mod == "django";
      }
      if (w[j].starts_with("-")) continue;
      std::string_view script = Basename(w[j]);
      if (script == "pytest" || script == "py.test" || script == "runtests.py") return true;
      if (w[j] == "bin/test" || w[j].ends_with("/bin/test")) return true;
      if (script == "manage.py") return FirstArg(w, j + 1) == "test";
      return false;
    }
    return false;
  }
  if (prog == "go" || prog == "cargo" || prog == "dotnet" || prog == "mvn" || prog == "gradle" ||
      prog == "gradlew" || prog == "mix" || prog == "swift" || prog == "deno" || prog == "bun")
    return arg == "test" || (prog == "cargo" && arg == "nextest");
  if (prog == "npm" || prog == "yarn" || prog == "pnpm") {
    return arg == "test" || arg == "t" || (arg == "run" && FirstArg(w, i + 2).starts_with("test"));
  }
  if (prog == "make") return arg == "test" || arg == "check" || arg == "tests";
  if (w[i] == "bin/test" || w[i] == "./bin/test" || w[i].ends_with("/bin/test")) return true;
  if (prog == "manage.py") return arg == "test";
  return false;
}

// The suite's test command as its program and what selects the tests:
// "python -m pytest", "make test", "./run_tests.sh" (placeholders dropped).
Words TestKey(std::string_view test_cmd) {
  for (const auto& c : SimpleCommands(test_cmd)) {
    size_t i = SkipWrappers(c);
    if (i >= c.size() || Basename(c[i]) == "cd") continue;
    Words key = {std::string(Basename(c[i]))};
    if (i + 2 < c.size() && c[i + 1] == "-m") {
      key.push_back("-m");
      key.push_back(c[i + 2]);
    } else if (i + 1 < c.size() && !c[i + 1].starts_with("-") &&
               c[i + 1].find('{') == std::string::npos) {
      key.push_back(c[i + 1]);
    }
    return key;
  }
  return {};
}

bool MatchesKey(const Words& w, size_t i, const Words& key) {
  if (key.empty() || i + key.size() > w.size()) return false;
  if (Basename(w[i]) != key[0]) return false;
  for (size_t k = 1; k < key.size(); ++k) {
    if (w[i + k] != key[k]) return false;
  }
  return true;
}

bool Check(const Words& w, const Words& key, int depth) {
  size_t i = SkipWrappers(w);
  if (i >= w.size()) return false;
  std::string_view prog = Basename(w[i]);
  if ((prog == "sh" || prog == "bash" || prog == "dash" || prog == "zsh") && depth < 4) {
    for (size_t j = i + 1; j + 1 < w.size(); ++j) {
      if (w[j] == "-c" || (w[j].starts_with("-") && w[j].ends_with("c"))) {
        for (const auto& inner : SimpleCommands(w[j + 1])) {
          if (Check(inner, key, depth + 1)) return true;
        }
        return false;
      }
    }
  }
  return KnownRunner(w, i) || MatchesKey(w, i, key);
}

}  // namespace

bool LooksLikeTestRun(std::string_view command, std::string_view test_cmd) {
  const Words key = TestKey(test_cmd);
  for (const auto& c : SimpleCommands(command)) {
    if (Check(c, key, 0)) return true;
  }
  return false;
}

bool LooksLikeTestRun(const std::vector<std::string>& argv, std::string_view test_cmd) {
  return Check(argv, TestKey(test_cmd), 0);
}

}  // namespace crucible::scoring
