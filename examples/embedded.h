// The example files compiled into the crucible binary.
#pragma once

#include <string_view>

namespace crucible::examples {

// examples/sample-repo/make_sample_repo.py: `python3 SCRIPT DEST` builds the
// sample repository in DEST.
std::string_view sample_repo_script();

// examples/agents/rule_agent.py: an external agent that follows the agent
// contract (reads $CRUCIBLE_TASK, edits /workspace, writes $CRUCIBLE_TRACE).
std::string_view example_agent_script();

}  // namespace crucible::examples
