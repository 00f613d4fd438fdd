#include "report/calibrate.h"

#include "scoring/calibration.h"

namespace crucible::report {

std::vector<v1::AgentSpec> CalibrationAgents() {
  std::vector<v1::AgentSpec> agents;
  for (const auto& e : scoring::Expectations()) {
    v1::AgentSpec a;
    a.set_name(e.agent);
    a.set_command("builtin:" + e.agent);
    agents.push_back(std::move(a));
  }
  return agents;
}

const std::vector<std::string>& CalibrationColumns() {
  static const std::vector<std::string> columns = {
      "completion", "strict",  "regression",      "replay",       "tool_calls",
      "coherence",  "plan",    "rollback",        "out_of_scope", "reformat",
      "oversized",  "scanner", "stale_reference", "broken_import"};
  return columns;
}

Result<Calibration> Calibrate(storage::Store&, const std::string&, const CalibrateOptions&) {
  return Fail(Code::kInternal, "calibration is not implemented yet");
}

std::string RenderCalibrationTable(const Calibration&) { return {}; }
std::string RenderCalibrationJson(const Calibration&) { return "{}"; }
Status StoreTaskCalibration(storage::Store&, const Calibration&) { return {}; }

}  // namespace crucible::report
