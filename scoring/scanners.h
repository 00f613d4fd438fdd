// Security scanners over the lines a diff adds (RE2, compiled once per set of
// rules): secrets, code injection, prompt-injection text and a suite's own
// banned patterns (docs/scoring.md, "Security scanners").
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"
#include "vcs/repo.h"

namespace crucible::scoring {

class Scanners {
 public:
  // The built-in rules plus `banned` (RE2 patterns, each a finding of rule
  // "banned" and severity "error"). Compiled once: the same `banned` list
  // returns the same object. kInvalidArgument naming a banned pattern that
  // RE2 refuses.
  static Result<std::shared_ptr<const Scanners>> For(std::span<const std::string> banned);

  virtual ~Scanners() = default;

  // Findings on the added lines of `files`, in file and line order, each with
  // rule, severity, file, line and the matched text (secrets masked, valid
  // UTF-8, at most 200 bytes).
  virtual std::vector<v1::Finding> Scan(const std::vector<vcs::DiffFile>& files) const = 0;
};

}  // namespace crucible::scoring
