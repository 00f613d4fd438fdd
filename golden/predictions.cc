#include "golden/predictions.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/fs.h"

namespace crucible::golden {
namespace {

using json = nlohmann::json;

bool IsBlank(std::string_view s) {
  return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// A value as it may be quoted in a warning: short, on one line.
std::string Quote(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

class Reader {
 public:
  Reader(const std::string& file, Predictions& out) : file_(file), out_(out) {}

  void Entry(const json& entry, int line) {
    if (!entry.is_object()) {
      Warn(line, "", "not a JSON object: skipped");
      return;
    }
    auto id_it = entry.find("instance_id");
    if (id_it == entry.end() || !id_it->is_string() || id_it->get<std::string>().empty()) {
      Warn(line, "",
           id_it == entry.end()
               ? "no instance_id: skipped"
               : "instance_id " + Quote(*id_it) + " is not a non-empty string: skipped");
      return;
    }
    const std::string id = id_it->get<std::string>();
    if (auto seen = out_.by_id.find(id); seen != out_.by_id.end()) {
      Warn(line, id,
           fmt::format("given again (first on line {}): the first is kept, line {} skipped",
                       seen->second.line(), line));
      return;
    }
    std::string patch;
    if (auto p = entry.find("model_patch"); p != entry.end() && !p->is_null()) {
      if (!p->is_string()) {
        Warn(line, id, "model_patch is not a string: skipped");
        return;
      }
      patch = p->get<std::string>();
    }
    if (auto m = entry.find("model_name_or_path"); m != entry.end() && !m->is_null()) {
      if (!m->is_string()) {
        Warn(line, id, "model_name_or_path " + Quote(*m) + " is not a string: ignored");
      } else {
        Model(m->get<std::string>(), line, id);
      }
    }
    if (std::string problem = PatchProblem(patch); !problem.empty()) {
      Warn(line, id, "model_patch has " + problem + ": it will fail to apply");
    }
    v1::Prediction& pred = out_.by_id[id];
    pred.set_patch(std::move(patch));
    pred.set_line(line);
  }

  void Warn(int line, const std::string& id, const std::string& what) {
    if (id.empty()) {
      out_.warnings.push_back(fmt::format("{}:{}: {}", file_, line, what));
    } else {
      out_.warnings.push_back(fmt::format("{}:{}: instance {}: {}", file_, line, id, what));
    }
  }

 private:
  void Model(const std::string& name, int line, const std::string& id) {
    if (std::find(out_.models.begin(), out_.models.end(), name) != out_.models.end()) return;
    if (!out_.models.empty()) {
      Warn(line, id,
           fmt::format("model_name_or_path '{}' differs from '{}' (line {}): the file holds "
                       "several models, '{}' names the agent",
                       name, out_.models.front(), first_model_line_, out_.models.front()));
    } else {
      first_model_line_ = line;
    }
    out_.models.push_back(name);
  }

  const std::string& file_;
  Predictions& out_;
  int first_model_line_ = 0;
};

}  // namespace

std::string PatchProblem(std::string_view patch) {
  if (IsBlank(patch)) return "";
  bool git_header = false, old_header = false, new_header = false;
  size_t at = 0;
  while (at < patch.size()) {
    size_t nl = patch.find('\n', at);
    std::string_view line =
        patch.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
    at = nl == std::string_view::npos ? patch.size() : nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.starts_with("GIT binary patch")) return "binary hunks (GIT binary patch)";
    if (line.starts_with("Binary files ") && line.ends_with(" differ")) {
      return "binary hunks (Binary files ... differ)";
    }
    if (line.starts_with("diff --git ")) git_header = true;
    if (line.starts_with("--- ")) old_header = true;
    if (line.starts_with("+++ ")) new_header = true;
  }
  if (git_header || (old_header && new_header)) return "";
  return "no unified diff header (diff --git, or --- and +++)";
}

Result<Predictions> ParsePredictions(std::string_view text, const std::string& file) {
  Predictions out;
  Reader reader(file, out);
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '[') {
    json all = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (all.is_discarded() || !all.is_array()) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("{}: starts with '[' but is not a JSON list of predictions", file));
    }
    for (size_t i = 0; i < all.size(); ++i) reader.Entry(all[i], static_cast<int>(i + 1));
  } else {
    int line_no = 0;
    size_t at = 0;
    while (at < text.size()) {
      size_t nl = text.find('\n', at);
      std::string_view line =
          text.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
      at = nl == std::string_view::npos ? text.size() : nl + 1;
      ++line_no;
      if (IsBlank(line)) continue;
      json entry = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (entry.is_discarded()) {
        reader.Warn(line_no, "", "not valid JSON: skipped");
        continue;
      }
      reader.Entry(entry, line_no);
    }
  }
  if (out.by_id.empty()) {
    std::string why = out.warnings.empty() ? "" : " (" + out.warnings.front() + ")";
    return Fail(
        Code::kInvalidArgument,
        fmt::format("{}: no prediction (an object with an instance_id) in the file{}", file, why));
  }
  return out;
}

Result<Predictions> LoadPredictions(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) {
    return Fail(Code::kNotFound, fmt::format("cannot read the predictions file {}: {}", path,
                                             text.error().message()));
  }
  return ParsePredictions(*text, path);
}

}  // namespace crucible::golden
