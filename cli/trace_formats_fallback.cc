// The known trace formats until the adapters define runner::TraceFormats()
// (agent-runner/adapters.cc): a weak definition, so theirs wins at link time.
// Delete this file once adapters.cc defines it.
#include "agent-runner/adapters.h"

namespace crucible::runner {

__attribute__((weak)) const std::vector<std::string>& TraceFormats() {
  static const std::vector<std::string> formats = {"crucible", "claude-stream-json", "codex-json",
                                                   "openinference"};
  return formats;
}

}  // namespace crucible::runner
