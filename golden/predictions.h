// SWE-bench predictions files: patches produced elsewhere, graded as an
// agent's changes (docs/swebench.md "Grading a predictions file").
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"

namespace crucible::golden {

struct Predictions {
  // instance_id -> its patch (model_patch; null or absent: empty) and the
  // line it came from (the JSONL line, or the 1-based index in a JSON list).
  std::map<std::string, v1::Prediction> by_id;
  // The model_name_or_path values, in the order first seen (one, normally).
  std::vector<std::string> models;
  // Each "FILE:LINE: instance ID: what" (or "FILE:LINE: what" when the entry
  // names no instance): an entry that is not valid JSON or not an object, or
  // lacks instance_id (skipped); an instance given twice (the first kept); a
  // model_patch that is not a string (skipped), that is not a unified diff or
  // that holds binary hunks (kept: it fails when applied); a second
  // model_name_or_path.
  std::vector<std::string> warnings;
};

// Parses a predictions file: JSONL, or a JSON list when the first non-blank
// character is '['. Entries carry instance_id, model_name_or_path and
// model_patch. Bad entries are warnings and the rest is read.
// kInvalidArgument naming `file` for a JSON list that does not parse, or a
// file without any usable entry.
Result<Predictions> ParsePredictions(std::string_view text, const std::string& file);

// ParsePredictions of the file at `path`; kNotFound naming it when it cannot
// be read.
Result<Predictions> LoadPredictions(const std::string& path);

// What keeps `patch` from being applied as a unified diff, or "" when
// nothing does: "no unified diff header (diff --git, or --- and +++)" or
// "binary hunks (GIT binary patch)" / "binary hunks (Binary files ... differ)".
// A blank patch is "" (no submission, not an error).
std::string PatchProblem(std::string_view patch);

}  // namespace crucible::golden
