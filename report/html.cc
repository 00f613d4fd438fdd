#include "report/html.h"

#include "report/report.h"

namespace crucible::report {

Result<std::string> RenderRunHtml(storage::Store& store, const std::string& run_id) {
  CRUCIBLE_ASSIGN_OR_RETURN(RunView view, LoadRun(store, run_id));
  // Placeholder until the page lands (issue 14): the run exists.
  return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + view.run.id() +
         "</title></head><body><p id=\"headline\">run " + view.run.id() + "</p></body></html>\n";
}

}  // namespace crucible::report
