// crucible calibrate: the oracle, the noop and every mutant on a suite, and
// the matrix of which score caught which (report/calibrate.h).
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "report/calibrate.h"

namespace crucible::cli {

void AddCalibrateCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "calibrate",
      "Run the oracle, the noop and the calibration mutants on a suite and show which score "
      "caught which fault (docs/scoring.md \"Calibration\").");
  cmd->callback([exit_code] {
    *exit_code = ReportError(Error(Code::kInternal, "calibrate is not implemented yet"));
  });
}

}  // namespace crucible::cli
