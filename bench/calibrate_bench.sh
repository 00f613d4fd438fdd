#!/usr/bin/env bash
# The wall time of `crucible calibrate` on the sample suite (oracle, noop and
# ten mutants on its 10 tasks, two local runners) and the share of the
# runners' time spent in test runs, against the peer it extends: a plain run
# of builtin:oracle and builtin:noop on the same suite (what validating a
# suite already costs). Usage: bench/calibrate_bench.sh [CRUCIBLE] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
CRUCIBLE=$(realpath "${1:-build/cli/crucible}")
RUNS=${2:-3}
WORK=$(mktemp -d /tmp/crucible-calibrate-bench-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
python3 examples/sample-repo/make_sample_repo.py "$WORK/repo" >/dev/null
export CRUCIBLE_DB="$WORK/db"
"$CRUCIBLE" mine --repo "$WORK/repo" --suite sample \
  --test-cmd 'PYTHONDONTWRITEBYTECODE=1 python3 -m pytest -q -p no:cacheprovider --junitxml={junit}' \
  >/dev/null 2>&1

now() { date +%s.%N; }
for i in $(seq 1 "$RUNS"); do
  t0=$(now)
  "$CRUCIBLE" run --suite sample --runners 2 --agent builtin:oracle --agent builtin:noop \
    >/dev/null 2>&1
  t1=$(now)
  status=0
  "$CRUCIBLE" calibrate --suite sample --runners 2 --format json >"$WORK/cal.json" 2>/dev/null ||
    status=$?
  t2=$(now)
  python3 - "$WORK/cal.json" "$t0" "$t1" "$t2" "$status" "$i" <<'PY'
import json, sys
path, t0, t1, t2, status, i = sys.argv[1:]
c = json.load(open(path))
timing = c["timing"]
attempts, tests = timing["attempt_ms"] / 1000, timing["test_run_ms"] / 1000
print(f"run {i}: oracle+noop {float(t1) - float(t0):6.1f} s (20 attempts)   "
      f"calibrate {float(t2) - float(t1):6.1f} s ({timing['attempts']} attempts, exit {status})   "
      f"runner time {attempts:6.1f} s, in test runs {tests:6.1f} s ({100 * tests / attempts:.0f}%), "
      f"of which silent-regression's search {timing['search_ms'] / 1000:.1f} s")
PY
done
