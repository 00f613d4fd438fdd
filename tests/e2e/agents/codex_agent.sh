#!/bin/sh
# codex_agent.sh: runs Codex CLI (`codex exec --json`) as a Crucible agent
# against a scripted model server started in the same sandbox (loopback only).
#
# Usage: /bin/sh codex_agent.sh CODEX_BIN MODEL_SERVER_PY [SCRIPT_JSON]
#
#   CODEX_BIN        Codex CLI's native binary (from the npm package
#                    @openai/codex-linux-x64: vendor/<target>/bin/codex)
#   MODEL_SERVER_PY  tests/e2e/agents/model_server.py, or "-" for none: then
#                    OPENAI_BASE_URL (e.g. https://gateway.example/v1) and
#                    OPENAI_API_KEY from the environment name the gateway
#   SCRIPT_JSON      the Responses API conversation to replay (the server's
#                    own by default)
#
# The task's intent ($CRUCIBLE_TASK) is the prompt; Codex's JSONL events go to
# stdout, where Crucible's codex-json adapter reads them. The server's request
# log is copied to stderr at the end, so a test can see what the client tried
# to reach.
set -eu

codex=$1
server=$2
script=${3:-}

work=$(mktemp -d /tmp/codex-agent.XXXXXX)
log=${CRUCIBLE_MODEL_LOG:-$work/requests.jsonl}
: >"$log"

if [ "$server" = - ]; then
  base_url=${OPENAI_BASE_URL:?codex_agent: no model server given and OPENAI_BASE_URL is unset}
  api_key=${OPENAI_API_KEY:-}
else
  python3 "$server" --port-file "$work/port" --log "$log" ${script:+--responses-script "$script"} \
    >"$work/server.out" 2>&1 &
  server_pid=$!
  trap 'kill $server_pid 2>/dev/null || true' EXIT
  i=0
  while [ ! -s "$work/port" ]; do
    if ! kill -0 $server_pid 2>/dev/null; then
      echo "codex_agent: the model server exited:" >&2
      cat "$work/server.out" >&2
      exit 1
    fi
    i=$((i + 1))
    if [ $i -gt 300 ]; then
      echo "codex_agent: the model server did not start within 30 s" >&2
      exit 1
    fi
    sleep 0.1
  done
  base_url=http://127.0.0.1:$(cat "$work/port")/v1
  api_key=sk-crucible-offline
fi

intent=$(python3 -c 'import json, os; print(json.load(open(os.environ["CRUCIBLE_TASK"]))["intent"])')

# A model provider of our own on loopback (Responses API). Plugins (they sync
# a marketplace from github.com and chatgpt.com) and analytics (ab.chatgpt.com)
# are off: with them on, Codex looks those hosts up even when its model is
# local. Crucible's sandbox is the sandbox: Codex's own (Landlock, seccomp) is
# bypassed, and it asks for no approvals.
mkdir -p "$work/home"
status=0
env CODEX_HOME="$work/home" \
  OPENAI_API_KEY="$api_key" \
  "$codex" exec --json \
    --skip-git-repo-check \
    --dangerously-bypass-approvals-and-sandbox \
    --disable plugins --disable remote_plugin \
    -c analytics.enabled=false \
    -c check_for_update_on_startup=false \
    -m "${CRUCIBLE_CODEX_MODEL:-gpt-5.5}" \
    -c model_provider=crucible \
    -c "model_providers.crucible={name=\"crucible\", base_url=\"$base_url\", wire_api=\"responses\", env_key=\"OPENAI_API_KEY\", request_max_retries=0, stream_max_retries=0}" \
    "$intent" </dev/null || status=$?

if [ "$server" != - ]; then
  echo "codex_agent: model server requests:" >&2
  cat "$log" >&2
fi
exit $status
