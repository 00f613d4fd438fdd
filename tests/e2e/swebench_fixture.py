#!/usr/bin/env python3
"""Builds a SWE-bench-format task file and predictions files over the sample
repository, from a `crucible suite export` of its mined suite.

    swebench_fixture.py EXPORT.jsonl OUTDIR

writes, in OUTDIR:
  tasks.jsonl     the tasks as SWE-bench ships them: no "crucible" object,
                  FAIL_TO_PASS / PASS_TO_PASS as JSON text holding a list,
                  test ids as `pytest -rA` prints them (tests/test_x.py::name),
                  PASS_TO_PASS kept to the test files the test patch touches
                  (the harness runs only those). The last task names a
                  FAIL_TO_PASS test its test patch lacks: its environment
                  cannot reproduce it (a mismatch).
  right.jsonl     JSONL, every task's gold patch: all resolved.
  wrong.json      a JSON list, every task a patch that applies and fixes
                  nothing: all unresolved.
  empty.jsonl     every task with an empty patch ("" or null): all "no
                  submission" (empty_patch_ids).
  bad.jsonl       one entry of each kind of bad input, and one right patch.
  expected.json   the verdicts the official harness gives these files.
"""
import json
import sys


def pytest_id(junit_id):
    # "tests.test_models::test_x" -> "tests/test_models.py::test_x"
    module, _, name = junit_id.partition("::")
    parts = module.split(".")
    # A class inside the module: tests.test_x.TestY::name
    if len(parts) > 2 and parts[-1][:1].isupper():
        return "/".join(parts[:-1]) + ".py::" + parts[-1] + "::" + name
    return "/".join(parts) + ".py::" + name


def patch_files(patch):
    files = []
    for line in patch.splitlines():
        if line.startswith("+++ b/"):
            files.append(line[6:])
    return files


NOTE_PATCH = (
    "diff --git a/NOTES.md b/NOTES.md\n"
    "new file mode 100644\n"
    "--- /dev/null\n"
    "+++ b/NOTES.md\n"
    "@@ -0,0 +1 @@\n"
    "+Looked into it; nothing to change.\n"
)


def main():
    export, out = sys.argv[1], sys.argv[2]
    tasks = [json.loads(l) for l in open(export) if l.strip()]
    swe = []
    for n, t in enumerate(tasks, start=1):
        test_files = patch_files(t["test_patch"])
        f2p = [pytest_id(i) for i in t["FAIL_TO_PASS"]]
        p2p = [pytest_id(i) for i in t["PASS_TO_PASS"]]
        p2p = [i for i in p2p if i.split("::")[0] in test_files]
        swe.append({
            "repo": "team/shop",
            "instance_id": "team__shop-%d" % n,
            "base_commit": t["base_commit"],
            "patch": t["patch"],
            "test_patch": t["test_patch"],
            "problem_statement": t["problem_statement"],
            "hints_text": "",
            "created_at": t["created_at"],
            "version": "1.0",
            "FAIL_TO_PASS": json.dumps(f2p),
            "PASS_TO_PASS": json.dumps(p2p),
            "environment_setup_commit": t["base_commit"],
        })
    # The last task's environment cannot reproduce it.
    mismatched = swe[-1]
    f2p = json.loads(mismatched["FAIL_TO_PASS"])
    f2p.append(f2p[0].split("::")[0] + "::test_the_harness_never_sees")
    mismatched["FAIL_TO_PASS"] = json.dumps(f2p)
    with open(out + "/tasks.jsonl", "w") as f:
        for t in swe:
            f.write(json.dumps(t) + "\n")

    model = lambda name: "sample/" + name
    with open(out + "/right.jsonl", "w") as f:
        for t in swe:
            f.write(json.dumps({"instance_id": t["instance_id"],
                                "model_name_or_path": model("right"),
                                "model_patch": t["patch"]}) + "\n")
    with open(out + "/wrong.json", "w") as f:
        json.dump([{"instance_id": t["instance_id"], "model_name_or_path": model("wrong"),
                    "model_patch": NOTE_PATCH} for t in swe], f, indent=1)
    with open(out + "/empty.jsonl", "w") as f:
        for i, t in enumerate(swe):
            f.write(json.dumps({"instance_id": t["instance_id"],
                                "model_name_or_path": model("empty"),
                                "model_patch": None if i % 2 else ""}) + "\n")

    # Bad input, one of each kind, line by line (1-based):
    first, second, third, fourth = swe[0], swe[1], swe[2], swe[3]
    # The first line the gold patch removes, changed: no fuzz finds it.
    lines = first["patch"].split("\n")
    removed = next(i for i, l in enumerate(lines) if l.startswith("-") and not l.startswith("---"))
    lines[removed] = "-# not what the file holds"
    stale = "\n".join(lines)
    binary = ("diff --git a/logo.png b/logo.png\nnew file mode 100644\n"
              "index 0000000..e69de29\nGIT binary patch\nliteral 4\n"
              "LcmZ?wbY=hm0C)gU\n\nliteral 0\nHcmV?d00001\n\n")
    bad = [
        {"instance_id": "team__shop-999", "model_name_or_path": model("bad"),
         "model_patch": NOTE_PATCH},                                        # 1 unknown id
        {"instance_id": second["instance_id"], "model_name_or_path": model("bad"),
         "model_patch": second["patch"]},                                   # 2 right
        {"instance_id": second["instance_id"], "model_name_or_path": model("bad"),
         "model_patch": NOTE_PATCH},                                        # 3 duplicate
        {"instance_id": third["instance_id"], "model_name_or_path": model("bad"),
         "model_patch": "I would change the rounding in utils.py."},         # 4 not a diff
        {"instance_id": fourth["instance_id"], "model_name_or_path": model("bad"),
         "model_patch": binary},                                            # 5 binary hunk
        {"instance_id": first["instance_id"], "model_name_or_path": model("bad"),
         "model_patch": stale},                                             # 6 does not apply
    ]
    with open(out + "/bad.jsonl", "w") as f:
        for b in bad:
            f.write(json.dumps(b) + "\n")

    ids = [t["instance_id"] for t in swe]
    run_ids = ids[:-1]  # the mismatched task is left out of runs
    expected = {
        "mismatched": [mismatched["instance_id"]],
        "right": {"resolved": run_ids, "unresolved": [], "empty": []},
        "wrong": {"resolved": [], "unresolved": run_ids, "empty": []},
        "empty": {"resolved": [], "unresolved": [], "empty": run_ids},
        "bad": {"resolved": [second["instance_id"]],
                "not_resolved": [first["instance_id"], third["instance_id"],
                                 fourth["instance_id"]],
                # Not in the file at all: "incomplete" to the official report.
                "incomplete": [i for i in run_ids if i not in
                          (first["instance_id"], second["instance_id"],
                           third["instance_id"], fourth["instance_id"])],
                "warnings": {"1": "unknown instance_id", "3": "given again",
                             "4": "no unified diff header", "5": "binary"}},
    }
    with open(out + "/expected.json", "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    main()
