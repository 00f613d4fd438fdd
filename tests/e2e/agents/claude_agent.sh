#!/bin/sh
# claude_agent.sh: runs Claude Code as a Crucible agent against a scripted
# model server started in the same sandbox (loopback only).
#
# Usage: /bin/sh claude_agent.sh CLI_JS MODEL_SERVER_PY [SCRIPT_JSON]
#
#   CLI_JS           Claude Code's cli.js (the npm package's entry point)
#   MODEL_SERVER_PY  tests/e2e/agents/model_server.py, or "-" for none: then
#                    ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY (or
#                    ANTHROPIC_AUTH_TOKEN) from the environment name the gateway
#   SCRIPT_JSON      the conversation to replay (the server's own by default)
#
# The task's intent ($CRUCIBLE_TASK) is the prompt; Claude Code's stream-json
# output goes to stdout, where Crucible's claude-stream-json adapter reads it.
# The server's request log is copied to stderr at the end (and kept in
# $CRUCIBLE_MODEL_LOG when that is set), so a test can see what the client
# tried to reach. Everything else goes to stderr too.
set -eu

cli=$1
server=$2
script=${3:-}

work=$(mktemp -d /tmp/claude-agent.XXXXXX)
log=${CRUCIBLE_MODEL_LOG:-$work/requests.jsonl}
: >"$log"

if [ "$server" = - ]; then
  base_url=${ANTHROPIC_BASE_URL:?claude_agent: no model server given and ANTHROPIC_BASE_URL is unset}
  api_key=${ANTHROPIC_API_KEY:-}
else
  python3 "$server" --port-file "$work/port" --log "$log" ${script:+--script "$script"} \
    >"$work/server.out" 2>&1 &
  server_pid=$!
  trap 'kill $server_pid 2>/dev/null || true' EXIT
  # Wait for the port file (written once the server accepts connections).
  i=0
  while [ ! -s "$work/port" ]; do
    if ! kill -0 $server_pid 2>/dev/null; then
      echo "claude_agent: the model server exited:" >&2
      cat "$work/server.out" >&2
      exit 1
    fi
    i=$((i + 1))
    if [ $i -gt 300 ]; then
      echo "claude_agent: the model server did not start within 30 s" >&2
      exit 1
    fi
    sleep 0.1
  done
  base_url=http://127.0.0.1:$(cat "$work/port")
  api_key=sk-ant-crucible-offline
fi

intent=$(python3 -c 'import json, os; print(json.load(open(os.environ["CRUCIBLE_TASK"]))["intent"])')

# A home of its own: Claude Code writes its settings and session files there.
mkdir -p "$work/home"
status=0
env HOME="$work/home" \
  ANTHROPIC_BASE_URL="$base_url" \
  ANTHROPIC_API_KEY="$api_key" \
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
  DISABLE_AUTOUPDATER=1 \
  DISABLE_TELEMETRY=1 \
  DISABLE_ERROR_REPORTING=1 \
  DISABLE_BUG_COMMAND=1 \
  DISABLE_COST_WARNINGS=1 \
  CLAUDE_CODE_IDE_SKIP_AUTO_INSTALL=1 \
  IS_SANDBOX=1 \
  node "$cli" -p "$intent" \
    --output-format stream-json --verbose \
    --model "${CRUCIBLE_CLAUDE_MODEL:-claude-sonnet-4-5}" \
    --dangerously-skip-permissions \
    --max-turns 20 </dev/null || status=$?

if [ "$server" != - ]; then
  echo "claude_agent: model server requests:" >&2
  cat "$log" >&2
fi
exit $status
