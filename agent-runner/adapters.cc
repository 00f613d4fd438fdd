#include "agent-runner/adapters.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "scoring/commands.h"

namespace crucible::runner {
namespace {

using nlohmann::json;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A path as the agent contract names it: relative to the workspace.
std::string WorkspacePath(std::string_view p) {
  if (p.starts_with("/workspace/")) p.remove_prefix(11);
  while (p.starts_with("./")) p.remove_prefix(2);
  return std::string(p);
}

std::string StringField(const json& input, std::initializer_list<const char*> keys) {
  if (!input.is_object()) return {};
  for (const char* k : keys) {
    auto it = input.find(k);
    if (it != input.end() && it->is_string()) return it->get<std::string>();
  }
  return {};
}

// The files an apply_patch body names ("*** Update File: a.py", "+++ b/a.py").
std::vector<std::string> PatchFiles(std::string_view patch) {
  std::vector<std::string> files;
  size_t pos = 0;
  while (pos < patch.size()) {
    size_t eol = patch.find('\n', pos);
    std::string_view line = patch.substr(pos, eol == std::string_view::npos ? patch.size() - pos
                                                                           : eol - pos);
    pos = eol == std::string_view::npos ? patch.size() : eol + 1;
    for (std::string_view prefix : {"*** Update File: ", "*** Add File: ", "*** Delete File: ",
                                    "+++ b/", "*** Move to: "}) {
      if (line.starts_with(prefix)) {
        std::string f = WorkspacePath(line.substr(prefix.size()));
        while (!f.empty() && (f.back() == '\r' || f.back() == ' ')) f.pop_back();
        if (!f.empty() && std::find(files.begin(), files.end(), f) == files.end())
          files.push_back(f);
      }
    }
  }
  return files;
}

}  // namespace

MappedTool MapToolCall(std::string_view tool, std::string_view input_json,
                       const AdapterOptions& options) {
  json input = json::parse(input_json, nullptr, /*allow_exceptions=*/false);
  if (input.is_discarded()) input = json(std::string(input_json));
  const std::string t = Lower(tool);
  json attrs = json::object();
  attrs["tool"] = std::string(tool);
  std::string name = "tool";
  const std::string path =
      WorkspacePath(StringField(input, {"file_path", "path", "notebook_path", "filename", "file"}));

  auto with_path = [&] {
    if (!path.empty()) attrs["path"] = path;
  };
  if (t == "read" || t == "read_file" || t == "view" || t == "notebookread" || t == "open_file" ||
      t == "cat") {
    name = "read_file";
    with_path();
  } else if (t == "str_replace_based_edit_tool" || t == "str_replace_editor") {
    name = StringField(input, {"command"}) == "view" ? "read_file" : "edit_file";
    with_path();
  } else if (t == "edit" || t == "multiedit" || t == "write" || t == "notebookedit" ||
             t == "edit_file" || t == "write_file" || t == "create_file" || t == "str_replace" ||
             t == "replace" || t == "insert") {
    name = "edit_file";
    with_path();
  } else if (t == "apply_patch" || t == "patch") {
    name = "edit_file";
    std::string body = input.is_string() ? input.get<std::string>()
                                         : StringField(input, {"input", "patch", "diff"});
    auto files = PatchFiles(body);
    if (!files.empty()) attrs["files"] = files;
    with_path();
  } else if (t == "grep" || t == "glob" || t == "ls" || t == "search" || t == "find" ||
             t == "list_files" || t == "ripgrep" || t == "list_dir" || t == "search_files") {
    name = "search";
    std::string pattern = StringField(input, {"pattern", "query", "regex", "glob"});
    if (!pattern.empty()) attrs["pattern"] = pattern;
    with_path();
  } else if (t == "bash" || t == "shell" || t == "exec_command" || t == "run_command" ||
             t == "terminal" || t == "local_shell" || t == "run_shell_command" ||
             t == "execute_command") {
    std::string command = StringField(input, {"command", "cmd"});
    if (command.empty() && input.is_object()) {
      // Codex-style {"command": ["bash", "-lc", "pytest"]}.
      auto it = input.find("command");
      if (it != input.end() && it->is_array()) {
        for (const auto& w : *it) {
          if (!w.is_string()) continue;
          if (!command.empty()) command += ' ';
          command += w.get<std::string>();
        }
      }
    }
    if (command.empty() && input.is_string()) command = input.get<std::string>();
    attrs["command"] = command;
    name = scoring::LooksLikeTestRun(command, options.test_cmd) ? "run_tests" : "shell";
  } else if (t == "todowrite" || t == "update_plan" || t == "todo_write" || t == "plan") {
    name = "plan";
    json steps = json::array();
    if (input.is_object()) {
      for (const char* key : {"todos", "plan", "steps"}) {
        auto it = input.find(key);
        if (it == input.end() || !it->is_array()) continue;
        for (const auto& item : *it) {
          if (item.is_string()) {
            steps.push_back(item);
          } else if (item.is_object()) {
            std::string text = StringField(item, {"content", "step", "text", "title"});
            if (!text.empty()) steps.push_back(text);
          }
        }
      }
    }
    attrs["steps"] = steps;
  } else if (t == "webfetch" || t == "websearch" || t == "web_search" || t == "fetch") {
    name = "web";
    std::string target = StringField(input, {"url", "query"});
    if (!target.empty()) attrs["target"] = target;
  }
  return {name, attrs.dump(-1, ' ', false, json::error_handler_t::replace)};
}

LineSplitter::LineSplitter(Callbacks callbacks, size_t max_line)
    : callbacks_(std::move(callbacks)), max_line_(max_line) {}

void LineSplitter::Feed(std::string_view chunk) {
  while (!chunk.empty()) {
    size_t nl = chunk.find('\n');
    std::string_view piece = nl == std::string_view::npos ? chunk : chunk.substr(0, nl);
    if (skipping_) {
      skipped_bytes_ += piece.size();
    } else if (partial_.size() + piece.size() > max_line_) {
      skipping_ = true;
      skipped_bytes_ = partial_.size() + piece.size();
      partial_.clear();
      partial_.shrink_to_fit();
    } else {
      partial_.append(piece);
    }
    if (nl == std::string_view::npos) return;
    chunk.remove_prefix(nl + 1);
    if (skipping_) {
      if (callbacks_.too_long) callbacks_.too_long(skipped_bytes_);
      skipping_ = false;
      skipped_bytes_ = 0;
      continue;
    }
    std::string_view line = partial_;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (callbacks_.line) callbacks_.line(line, false);
    partial_.clear();
  }
}

void LineSplitter::Finish() {
  if (skipping_) {
    if (callbacks_.too_long) callbacks_.too_long(skipped_bytes_);
  } else if (!partial_.empty()) {
    std::string_view line = partial_;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (callbacks_.line) callbacks_.line(line, true);
  }
  skipping_ = false;
  skipped_bytes_ = 0;
  partial_.clear();
}

}  // namespace crucible::runner
