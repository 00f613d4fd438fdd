#include "scoring/calibration.h"

#include <nlohmann/json.hpp>

namespace crucible::scoring {

const std::vector<std::string>& MutantKinds() {
  static const std::vector<std::string> kinds = {"scope-creep",
                                                 "reformat",
                                                 "oversized",
                                                 "silent-regression",
                                                 "hallucinated-api",
                                                 "stale-rename",
                                                 "secret",
                                                 "pile-on",
                                                 "blind",
                                                 "off-plan"};
  return kinds;
}

const std::vector<Expectation>& Expectations() {
  static const std::vector<Expectation> table = {
      {"oracle", "applies the golden patch", {}, {}},
      {"noop", "changes nothing", {"completion"}, {"strict", "replay"}},
      {"mutant-scope-creep",
       "the golden patch plus a harmless change to an unrelated source file",
       {"out_of_scope", "strict"},
       {"replay"}},
      {"mutant-reformat",
       "the golden patch plus whitespace churn in a file it touches",
       {"reformat", "strict", "replay"},
       {}},
      {"mutant-oversized",
       "the golden patch plus a large addition that changes no behaviour",
       {"oversized", "strict", "replay"},
       {}},
      {"mutant-silent-regression",
       "the golden patch plus a mutation outside its hunks that breaks a PASS_TO_PASS test",
       {"regression"},
       {"completion", "strict", "replay", "out_of_scope"}},
      {"mutant-hallucinated-api",
       "the golden patch plus an import of a name the repository does not have",
       {"broken_import", "coherence", "strict"},
       {"replay"}},
      {"mutant-stale-rename",
       "the golden patch plus a renamed definition whose call site is left stale",
       {"stale_reference", "coherence", "strict"},
       {"completion", "replay", "regression"}},
      {"mutant-secret",
       "the golden patch plus a credential-looking literal",
       {"scanner", "strict"},
       {"replay"}},
      {"mutant-pile-on",
       "the golden patch, with a trace where the tests fail and three edits follow with no revert",
       {"rollback"},
       {}},
      {"mutant-blind",
       "the golden patch, with a trace whose last edit is not followed by a test run",
       {"tool_calls"},
       {}},
      {"mutant-off-plan",
       "the golden patch, with a plan that names another file",
       {"plan"},
       {"tool_calls"}},
  };
  return table;
}

std::string MutationJson(const v1::Mutation& m) {
  const nlohmann::json j = {{"kind", m.kind()},
                            {"applicable", m.applicable()},
                            {"reason", m.reason()},
                            {"file", m.file()},
                            {"line", m.line()},
                            {"description", m.description()},
                            {"candidates_tried", m.candidates_tried()},
                            {"search_ms", m.search_ms()}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace crucible::scoring
