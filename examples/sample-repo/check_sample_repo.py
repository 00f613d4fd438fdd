#!/usr/bin/env python3
"""Check the sample repository's history the way Crucible's miner sees it.

Usage:
    check_sample_repo.py [--repo DIR] [--write-expected FILE] [--agent SCRIPT]

Without --repo, builds a fresh repository with make_sample_repo.py (next to
this script) in a temporary directory. For every commit M on the first-parent
history of main with first parent P:
  - the changed files are split into tests and source (same rule as the miner);
  - the test command runs at P + (M's test-file changes) and at M;
  - FAIL_TO_PASS = tests that fail (or are absent) at P + tests and pass at M;
  - checks: every merge changes source and tests, FAIL_TO_PASS is not empty and
    equals the set of test functions the merge added or changed, no collection
    errors, every test passes at M, and every other test passes at P + tests.
Direct commits without a test change are reported as skipped.

--write-expected FILE writes {"<merge summary line>": [sorted test ids]}.
--agent SCRIPT also runs SCRIPT (e.g. ../agents/rule_agent.py) as an agent on
each merge's task, at P, then applies the hidden test changes and reports
which tasks it resolves (every FAIL_TO_PASS and PASS_TO_PASS test passes).

Test command (run from the repository root, PYTHONDONTWRITEBYTECODE=1):
    <this interpreter> -m pytest -q -p no:cacheprovider --junitxml=REPORT
Run it with the interpreter that has pytest, e.g. /usr/bin/python3.
"""

import argparse
import ast
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))

# Tasks the example rule agent is expected to resolve (PR numbers).
RULE_AGENT_SOLVES = {4, 5, 8, 9}


def is_test_path(path):
    """Mirror of golden::IsTestPath for the patterns this repository uses."""
    parts = path.split("/")
    base = parts[-1]
    if any(p in ("test", "tests") for p in parts[:-1]):
        return True
    if base == "conftest.py" or re.match(r"test_.*\.py$", base) or base.endswith("_test.py"):
        return True
    return bool(re.search(r"_test\.(cc|cpp|go)$", base) or
                re.search(r"\.(test|spec)\.", base))


def git(repo, *args, binary=False):
    out = subprocess.run(["git", "-C", repo] + list(args), check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout
    return out if binary else out.decode()


def export(repo, commit, dest):
    os.makedirs(dest)
    data = git(repo, "archive", "--format=tar", commit, binary=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest)


def apply_test_changes(repo, merged, changes, dest):
    """Bring the test files among `changes` to their state at `merged`."""
    for status, path in changes:
        if not is_test_path(path):
            continue
        target = os.path.join(dest, path)
        if status == "D":
            if os.path.exists(target):
                os.remove(target)
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as fh:
            fh.write(git(repo, "show", "%s:%s" % (merged, path), binary=True))


def run_tests(workdir, scratch):
    report = os.path.join(scratch, "report-%d.xml" % len(os.listdir(scratch)))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--junitxml=" + report],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    if not os.path.exists(report):
        raise SystemExit("no JUnit report in %s:\n%s" % (workdir, proc.stdout.decode()))
    results = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        classname = case.get("classname") or ""
        name = case.get("name") or ""
        tid = "%s::%s" % (classname, name) if classname else name
        if case.find("failure") is not None:
            results[tid] = "FAILED"
        elif case.find("error") is not None:
            results[tid] = "ERROR"
        elif case.find("skipped") is not None:
            results[tid] = "SKIPPED"
        else:
            results[tid] = "PASSED"
    return results


def test_functions(repo, commit, path):
    """{test id: source} of the test functions in `path` at `commit`."""
    try:
        text = git(repo, "show", "%s:%s" % (commit, path))
    except subprocess.CalledProcessError:
        return {}
    module = path[:-3].replace("/", ".")
    found = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            found["%s::%s" % (module, node.name)] = ast.get_source_segment(text, node)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name.startswith("test"):
                    found["%s.%s::%s" % (module, node.name, item.name)] = \
                        ast.get_source_segment(text, item)
    return found


def write_task(path, intent, round_number=1):
    with open(path, "w") as fh:
        json.dump({"intent": intent, "repo": "sample-repo", "round": round_number}, fh)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", help="existing sample repository (default: build one)")
    parser.add_argument("--write-expected", metavar="FILE")
    parser.add_argument("--agent", metavar="SCRIPT")
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="crucible-check-")
    problems = []
    expected = {}
    agent_results = []
    try:
        repo = args.repo
        if not repo:
            repo = os.path.join(scratch, "repo")
            subprocess.run([sys.executable, os.path.join(HERE, "make_sample_repo.py"), repo],
                           check=True, stdout=subprocess.DEVNULL)
        reports = os.path.join(scratch, "reports")
        os.makedirs(reports)

        commits = git(repo, "rev-list", "--first-parent", "--reverse", "main").split()
        root = commits[0]
        base_dir = os.path.join(scratch, "root")
        export(repo, root, base_dir)
        base = run_tests(base_dir, reports)
        if any(v != "PASSED" for v in base.values()):
            problems.append("initial commit: not every test passes")
        print("initial commit %s: %d tests, all passing" % (root[:10], len(base)))

        for n, merged in enumerate(commits[1:], 1):
            parent = git(repo, "rev-parse", merged + "^1").strip()
            summary = git(repo, "log", "-1", "--format=%s", merged).strip()
            message = git(repo, "log", "-1", "--format=%B", merged)
            raw = git(repo, "diff", "--no-renames", "--name-status", parent, merged)
            changes = [tuple(line.split("\t", 1)) for line in raw.splitlines() if line]
            tests = [p for _, p in changes if is_test_path(p)]
            sources = [p for _, p in changes if not is_test_path(p)]
            is_merge = len(git(repo, "log", "-1", "--format=%P", merged).split()) > 1
            if not tests:
                print("%s %-50s skipped: no test change (%s)" % (
                    merged[:10], summary[:50], ", ".join(sources)))
                if is_merge:
                    problems.append("%s: merge without a test change" % summary)
                continue
            if not sources:
                problems.append("%s: no source change" % summary)

            before_dir = os.path.join(scratch, "before-%d" % n)
            after_dir = os.path.join(scratch, "after-%d" % n)
            export(repo, parent, before_dir)
            apply_test_changes(repo, merged, changes, before_dir)
            export(repo, merged, after_dir)
            before = run_tests(before_dir, reports)
            after = run_tests(after_dir, reports)

            f2p = sorted(t for t, v in after.items()
                         if v == "PASSED" and before.get(t) != "PASSED")
            p2p = sorted(t for t, v in after.items()
                         if v == "PASSED" and before.get(t) == "PASSED")
            bad_after = sorted(t for t, v in after.items() if v != "PASSED")
            collection = sorted(t for t in list(before) + list(after) if "::" not in t)
            changed = set()
            for path in tests:
                if path.endswith(".py") and os.path.basename(path).startswith("test_"):
                    old = test_functions(repo, parent, path)
                    new = test_functions(repo, merged, path)
                    changed |= {t for t, src in new.items() if old.get(t) != src}
            if bad_after:
                problems.append("%s: failing at merged commit: %s" % (summary, bad_after))
            if collection:
                problems.append("%s: collection errors: %s" % (summary, collection))
            if not f2p:
                problems.append("%s: empty FAIL_TO_PASS" % summary)
            if set(f2p) != changed:
                problems.append("%s: FAIL_TO_PASS %s != added/changed tests %s" % (
                    summary, f2p, sorted(changed)))
            if len(f2p) + len(p2p) != len(after):
                problems.append("%s: tests neither FAIL_TO_PASS nor PASS_TO_PASS" % summary)
            expected[summary] = f2p
            print("%s %s\n    source: %s\n    tests:  %s\n    FAIL_TO_PASS (%d): %s\n"
                  "    PASS_TO_PASS: %d" % (
                      merged[:10], summary, ", ".join(sources), ", ".join(tests),
                      len(f2p), "\n        ".join([""] + f2p), len(p2p)))

            if args.agent:
                number = int(re.search(r"#(\d+)", summary).group(1))
                intent = message.split("\n", 1)[1].strip() if "\n" in message else message
                work = os.path.join(scratch, "agent-%d" % n)
                export(repo, parent, work)
                task = os.path.join(scratch, "task-%d.json" % n)
                trace = os.path.join(scratch, "trace-%d.jsonl" % n)
                write_task(task, intent)
                env = dict(os.environ, CRUCIBLE_TASK=task, CRUCIBLE_TRACE=trace)
                proc = subprocess.run([sys.executable, os.path.abspath(args.agent)], cwd=work,
                                      env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, timeout=300)
                events = []
                if os.path.exists(trace):
                    with open(trace) as fh:
                        events = [json.loads(line) for line in fh]
                apply_test_changes(repo, merged, changes, work)
                diff = subprocess.run(["git", "diff", "--no-index", "--stat", after_dir, work],
                                      stdout=subprocess.PIPE, universal_newlines=True).stdout
                hidden = run_tests(work, reports)
                resolved = all(hidden.get(t) == "PASSED" for t in f2p + p2p)
                names = [e["name"] for e in events]
                agent_results.append((number, resolved))
                print("    agent: exit %d, %d events (%s), %s" % (
                    proc.returncode, len(events), " ".join(names),
                    "RESOLVED" if resolved else "not resolved"))
                if proc.returncode != 0:
                    problems.append("%s: agent exit %d:\n%s" % (
                        summary, proc.returncode, proc.stdout.decode()))
                if resolved and diff.strip():
                    # The agent's source edits differ from the merged commit.
                    print("    agent diff differs from merged commit:\n" + diff)

        if args.agent:
            solved = {n for n, ok in agent_results if ok}
            print("agent resolves: %s" % sorted(solved))
            if os.path.basename(args.agent) == "rule_agent.py" and solved != RULE_AGENT_SOLVES:
                problems.append("rule_agent resolves %s, expected %s" % (
                    sorted(solved), sorted(RULE_AGENT_SOLVES)))
        if args.write_expected:
            with open(args.write_expected, "w") as fh:
                json.dump(expected, fh, indent=2, sort_keys=True)
                fh.write("\n")
            print("wrote %s" % args.write_expected)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    if problems:
        print("\nPROBLEMS:\n  " + "\n  ".join(problems))
        return 1
    print("\nOK: %d merges checked" % len(expected))
    return 0


if __name__ == "__main__":
    sys.exit(main())
