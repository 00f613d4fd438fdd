#!/usr/bin/env python3
"""fault_agent: solves two tasks of the sample repository and adds one fault.

Usage: fault_agent.py FAULT, run as a Crucible agent (cwd is the workspace,
$CRUCIBLE_TASK the task file, $CRUCIBLE_TRACE the trace file).

It knows two tasks of examples/sample-repo: PR #4 ("Change the default
`LOW_STOCK_THRESHOLD` from 5 to 10", in inventory/config.py) and PR #5
("Rename `calc_total` to `compute_order_total`" in inventory/__init__.py,
pricing.py, report.py and cli.py). It writes the correct change and a trace
that describes it (plan, reads, edits, a passing test run after the last
edit), then adds exactly one fault:

  clean    none: the change a reviewer would merge
  scope    a harmless edit of inventory/utils.py, a file outside the task
  reformat (PR #4) whitespace churn in config.py, far from the change
  secret   a credential-looking literal in a touched file
  stale    (PR #5) the rename leaves inventory/cli.py calling the old name
  pileon   the trace: tests fail, three edits with no revert, tests pass
  blind    the trace: the last edit comes after the last test run

Every test run the trace claims is performed (the harness sees what runs,
and a claimed run it did not see is a contradiction), and every edit the
trace claims writes its file: the faults are in what the agent wrote and in
the order it did things, not in lies about them.
"""

import json
import os
import re
import subprocess
import sys
import time

FAULTS = ("clean", "scope", "reformat", "secret", "stale", "pileon", "blind")


class Trace:
    def __init__(self, path):
        self.path = path
        self.count = 0

    def emit(self, kind, name, **attrs):
        self.count += 1
        if not self.path:
            return
        event = {"ts": time.time_ns(), "kind": kind, "name": name,
                 "span_id": "f-%d" % self.count, "attrs": attrs}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event) + "\n")


def run_tests(trace, **claim):
    """Runs the tests for real (whatever they say), then claims the run."""
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    trace.emit("TOOL", "run_tests", **claim)


def touch(path):
    """Writes a file again as it is: an edit the harness sees that changes nothing."""
    write(path, read(path))


def read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def write(path, text):
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def main():
    fault = sys.argv[1] if len(sys.argv) > 1 else "clean"
    if fault not in FAULTS:
        print("unknown fault %r; one of %s" % (fault, ", ".join(FAULTS)), file=sys.stderr)
        return 2
    task = json.loads(read(os.environ["CRUCIBLE_TASK"]))
    intent = task.get("intent", "")
    trace = Trace(os.environ.get("CRUCIBLE_TRACE"))

    if "LOW_STOCK_THRESHOLD" in intent:
        edits = {"inventory/config.py": lambda t: t.replace(
            "LOW_STOCK_THRESHOLD = 5", "LOW_STOCK_THRESHOLD = 10")}
    elif re.search(r"calc_total", intent):
        rename = lambda t: re.sub(r"\bcalc_total\b", "compute_order_total", t)
        files = ["inventory/__init__.py", "inventory/pricing.py", "inventory/report.py",
                 "inventory/cli.py"]
        if fault == "stale":
            files.remove("inventory/cli.py")
        edits = {f: rename for f in files}
    else:
        trace.emit("AGENT", "give_up", reason="task not known to fault_agent")
        return 0

    touched = sorted(edits)
    extra = []
    if fault == "scope":
        extra = ["inventory/utils.py"]
    trace.emit("AGENT", "plan", files=touched + extra, text="edit " + ", ".join(touched + extra))
    for path in touched + extra:
        trace.emit("TOOL", "read_file", path=path)

    if fault == "pileon":
        run_tests(trace, passed=10, failed=2, exit_code=1)
    for path, change in edits.items():
        write(path, change(read(path)))
        trace.emit("TOOL", "edit_file", path=path)
    first = touched[0]
    if fault == "pileon":
        for _ in range(2):
            touch(first)
            trace.emit("TOOL", "edit_file", path=first)
    if fault == "scope":
        text = read("inventory/utils.py")
        write("inventory/utils.py", text.rstrip("\n") + "\n\n# Helpers shared by the modules.\n")
        trace.emit("TOOL", "edit_file", path="inventory/utils.py")
    if fault == "reformat" and "inventory/config.py" in edits:
        # The file's last setting, far from the change (a hunk of its own):
        # only spacing differs.
        path = "inventory/config.py"
        text = read(path)
        write(path, text.replace("REPORT_NAME_WIDTH = 24", "REPORT_NAME_WIDTH  =  24"))
        trace.emit("TOOL", "edit_file", path=path)
    if fault == "secret":
        text = read(first)
        write(first, text.rstrip("\n") + '\n\nAWS_ACCESS_KEY_ID = "AKIAZ7Q4M2XK9P3LT6WB"\n')
        trace.emit("TOOL", "edit_file", path=first)

    run_tests(trace, passed=12, failed=0, exit_code=0)
    if fault == "blind":
        touch(first)
        trace.emit("TOOL", "edit_file", path=first)
    return 0


if __name__ == "__main__":
    sys.exit(main())
