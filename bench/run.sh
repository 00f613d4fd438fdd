#!/usr/bin/env bash
# Runs Crucible's benchmarks and prints their figures; docs/benchmarks.md
# records the latest ones with this command: `make bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
CRUCIBLE="$BUILD_DIR/cli/crucible"

echo "== micro-benchmarks (Google Benchmark)"
"$BUILD_DIR/bench/crucible_bench" --benchmark_min_time=0.2

echo
echo "== scoring one attempt: a 1,000-line diff and a 5,000-event trace, tests excluded"
"$BUILD_DIR/bench/scoring_bench" --benchmark_min_time=0.5

echo
echo "== trace adapters: events/s on a synthetic transcript of 20,000 steps per format"
"$BUILD_DIR/bench/adapter_bench" 20000

echo
echo "== mining without validation vs git log --first-parent -p (5,000 commits, 2,000 files)"
"$BUILD_DIR/bench/mine_history" 5000 2000

echo
echo "== crucible rescore of 10,000 stored attempts (50-line diff, 30 tests, 200-event trace each)"
"$BUILD_DIR/bench/rescore_bench" 10000 "$CRUCIBLE"

echo
echo "== the farm: dispatch, trace ingestion, a fleet of 200 runners (simulated), coordinator memory"
"$BUILD_DIR/bench/farm_bench" "$CRUCIBLE"

echo
echo "== report generation for 3,000 attempts (5 agents x 200 tasks x 3 samples): JSON, HTML, Chromium's load"
"$BUILD_DIR/bench/report_bench" "$BUILD_DIR/bench/report-bench.html"
if command -v node >/dev/null && [ -x /usr/bin/chromium ] && [ -d "$BUILD_DIR/npm/node_modules/playwright-core" ]; then
  # Time to the load event and from a grid click to its attempt's section.
  node tests/e2e/html_report.mjs --npm-dir "$BUILD_DIR/npm" --chromium /usr/bin/chromium \
    --page "$BUILD_DIR/bench/report-bench.html" --agents agent-0,agent-1,agent-2,agent-3,agent-4 \
    --deadline-s 300 || echo "(the page did not pass every check of html_report.mjs)"
else
  echo "Chromium's load time skipped: needs node, /usr/bin/chromium and the build's npm install"
fi

echo
if [ "$(id -u)" != 0 ]; then echo "sandbox benchmarks skipped: the sandbox needs root"; exit 0; fi
echo "== crucible calibrate on the sample suite (12 agents x 10 tasks) against a run of oracle and noop"
bash bench/calibrate_bench.sh "$CRUCIBLE" 3

echo
echo "== grading SWE-bench predictions (the sample suite's gold patches) against git apply + pytest"
bash bench/swebench_bench.sh "$CRUCIBLE" 3

echo
echo "== sandbox start to exit of /bin/true, full policy, in-process vs bubblewrap (500 runs each)"
"$BUILD_DIR/bench/sandbox_start" 500

echo
echo "== what the set-uid defences cost: the walk over 10,000 files, syscalls under the filter"
"$BUILD_DIR/bench/sandbox_costs" 10000 1000000

echo
echo "== what a review round costs beyond the agent and the tests (2,000-file repository, 5 attempts)"
"$BUILD_DIR/bench/review_round_bench" 2000 5

echo
echo "== the same through the CLI: crucible sandbox vs bubblewrap (hyperfine)"
BWRAP="bwrap --unshare-all --die-with-parent --ro-bind /usr /usr --symlink usr/bin /bin \
  --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev --tmpfs /tmp true"
hyperfine --warmup 20 --runs 300 -N \
  "$CRUCIBLE sandbox -- /bin/true" \
  "$BWRAP"
