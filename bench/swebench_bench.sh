#!/usr/bin/env bash
# Grading a SWE-bench predictions file: Crucible's overhead per instance
# beyond the tests, against its peer, a plain script doing the same work
# (for each instance: a clean checkout of the base commit, `git apply` of the
# prediction and of the test patch, `pytest -rA` on the test patch's files,
# and the log read for the verdict). Both grade the gold patches of the
# sample suite in SWE-bench's format (tests/e2e/swebench_fixture.py), one
# instance at a time (one local runner), so the difference is the harness.
# Usage: bench/swebench_bench.sh [CRUCIBLE] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
CRUCIBLE=$(realpath "${1:-build/cli/crucible}")
RUNS=${2:-3}
WORK=$(mktemp -d /tmp/crucible-swebench-bench-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
python3 examples/sample-repo/make_sample_repo.py "$WORK/repo" >/dev/null
export CRUCIBLE_DB="$WORK/db"
TEST_CMD='python3 -m pytest -rA -p no:cacheprovider {test_files}'
"$CRUCIBLE" mine --repo "$WORK/repo" --suite sample \
  --test-cmd 'python3 -m pytest -q -p no:cacheprovider --junitxml={junit}' >/dev/null 2>&1
"$CRUCIBLE" suite export sample -o "$WORK/export.jsonl" >/dev/null
python3 tests/e2e/swebench_fixture.py "$WORK/export.jsonl" "$WORK"
"$CRUCIBLE" suite import "$WORK/tasks.jsonl" --repo "$WORK/repo" --suite swe \
  --test-cmd "$TEST_CMD" --results pytest >/dev/null
# The mismatched instance is graded by neither (runs leave it out).
"$CRUCIBLE" calibrate --suite swe --environment >/dev/null 2>&1 || true

# The peer: what a harness without sandbox, store or scores does.
cat >"$WORK/plain.py" <<'PY'
import json, os, shutil, subprocess, sys
work, tasks_file, preds_file, skip = sys.argv[1:5]
tasks = {t["instance_id"]: t for t in map(json.loads, open(tasks_file)) if t["instance_id"] != skip}
preds = {p["instance_id"]: p["model_patch"] for p in map(json.loads, open(preds_file))}
resolved = 0
for iid, t in tasks.items():
    tree = os.path.join(work, "tree")
    shutil.rmtree(tree, ignore_errors=True)
    subprocess.run(["git", "-C", os.path.join(work, "repo"), "worktree", "add", "-q", "--detach",
                    "--force", tree, t["base_commit"]], check=True)
    for patch in (preds[iid], t["test_patch"]):
        subprocess.run(["git", "apply", "-"], input=patch.encode(), cwd=tree, check=True)
    files = [l[6:] for l in t["test_patch"].splitlines() if l.startswith("+++ b/")]
    # The interpreter the sandbox has (its PATH is the system one).
    log = subprocess.run(["/usr/bin/python3", "-m", "pytest", "-rA", "-p", "no:cacheprovider", *files],
                         cwd=tree, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1")).stdout
    passed = {l.split()[1] for l in log.splitlines() if l.startswith("PASSED ")}
    want = json.loads(t["FAIL_TO_PASS"]) + json.loads(t["PASS_TO_PASS"])
    resolved += all(w in passed for w in want)
    subprocess.run(["git", "-C", os.path.join(work, "repo"), "worktree", "remove", "--force", tree],
                   check=True)
print(resolved, len(tasks))
PY

SKIP=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mismatched"][0])' \
  "$WORK/expected.json")
now() { date +%s.%N; }
for i in $(seq 1 "$RUNS"); do
  t0=$(now)
  read -r plain_resolved plain_total < <(python3 "$WORK/plain.py" "$WORK" "$WORK/tasks.jsonl" \
    "$WORK/right.jsonl" "$SKIP")
  t1=$(now)
  "$CRUCIBLE" run --suite swe --runners 1 --agent right=predictions:"$WORK/right.jsonl" \
    >"$WORK/run.out" 2>&1
  t2=$(now)
  RUN=$(grep -o 'r[0-9]\{8\}-[0-9]\{6\}-[0-9a-f]*' "$WORK/run.out" | head -1)
  "$CRUCIBLE" report "$RUN" --format swebench >"$WORK/report.json"
  "$CRUCIBLE" report "$RUN" --format json >"$WORK/full.json"
  python3 - "$WORK/report.json" "$t0" "$t1" "$t2" "$plain_resolved" "$plain_total" "$i" <<'PY'
import json, sys
path, t0, t1, t2, pr, pt, i = sys.argv[1:]
r = json.load(open(path))
n = int(pt)
plain, crucible = float(t1) - float(t0), float(t2) - float(t1)
print(f"run {i}: plain git apply + pytest {plain:5.1f} s ({pr}/{pt} resolved)   "
      f"crucible {crucible:5.1f} s ({r['resolved_instances']}/{r['total_instances']} resolved)   "
      f"overhead {1000 * (crucible - plain) / n:5.0f} ms per instance")
PY
done
