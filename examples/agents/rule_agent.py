#!/usr/bin/env python3
"""rule_agent: an example Crucible agent with known, deterministic behaviour.

It follows the agent contract: it runs in the repository (cwd, /workspace in
the sandbox), reads the task from the JSON file named by $CRUCIBLE_TASK
("intent", "repo", "round", maybe "feedback") and appends one JSON trace event
a line to $CRUCIBLE_TRACE (nothing is written when that is unset).

There is no model behind it, only three rules over the intent text:
  1. "Rename `OLD` to `NEW`": whole-word replace OLD by NEW in every .py file
     that is not a test file.
  2. "Change the default `NAME` from X to Y": find the assignment `NAME = X`
     in the non-test .py files and set it to Y.
  3. anything else: read a few files, then give up without editing.
Afterwards it runs the visible tests (python3 -m pytest) and exits 0.

Standard library only; runs under any Python 3.6+.
"""

import ast
import json
import os
import re
import subprocess
import sys
import time

AGENT_NAME = "rule_agent"
AGENT_VERSION = "1.0"
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
RENAME_RULE = re.compile(r"\brename\s+`([^`\n]+)`\s+to\s+`([^`\n]+)`", re.IGNORECASE)
VALUE = r"(\"[^\"\n]*\"|'[^'\n]*'|`[^`\n]*`|[^\s,;()]+)"
DEFAULT_RULE = re.compile(
    r"\bchange\s+the\s+default\s+`([^`\n]+)`\s+from\s+" + VALUE + r"\s+to\s+" + VALUE,
    re.IGNORECASE)
SKIP_DIRS = {".git", ".hg", ".svn", "tests", "test", "__pycache__", "node_modules",
             ".venv", "venv", ".tox", "build", "dist"}
MAX_FILE_BYTES = 1 << 20
EXPLORE_FILES = 3
TEST_TIMEOUT = 600


class Trace:
    """Appends contract trace events to $CRUCIBLE_TRACE; a no-op when unset."""

    def __init__(self, path, round_number):
        self.path = path
        self.prefix = "r%s" % round_number
        self.count = 0

    def emit(self, kind, name, parent=None, **attrs):
        self.count += 1
        span_id = "%s-%d" % (self.prefix, self.count)
        if not self.path:
            return span_id
        event = {"ts": time.time_ns() if hasattr(time, "time_ns") else int(time.time() * 1e9),
                 "kind": kind, "name": name, "span_id": span_id, "parent_id": parent,
                 "attrs": attrs}
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(event, sort_keys=True, default=str) + "\n")
        except OSError as exc:
            sys.stderr.write("rule_agent: cannot write trace %s: %s\n" % (self.path, exc))
            self.path = None
        return span_id


def load_task(path):
    """The task as a dict; problems are reported, never raised."""
    if not path:
        return {}, "CRUCIBLE_TASK is not set"
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            task = json.load(fh)
    except (OSError, ValueError) as exc:
        return {}, "cannot read task %s: %s" % (path, exc)
    if not isinstance(task, dict):
        return {}, "task %s is not a JSON object" % path
    return task, None


def as_text(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n\n".join(as_text(v) for v in value.values())
    if isinstance(value, list):
        return "\n\n".join(as_text(v) for v in value)
    return str(value)


def is_test_file(rel):
    base = rel.rsplit("/", 1)[-1]
    return (base == "conftest.py" or base.startswith("test_") or base.endswith("_test.py"))


def source_files(root):
    """Relative paths of the non-test .py files under root, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if is_test_file(rel) or os.path.islink(full):
                continue
            try:
                if os.path.getsize(full) > MAX_FILE_BYTES:
                    continue
            except OSError:
                continue
            found.append(rel)
    return sorted(found)


def read(root, rel):
    try:
        with open(os.path.join(root, rel), encoding="utf-8", newline="") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError):
        return None


def write(root, rel, text):
    with open(os.path.join(root, rel), "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def clean_token(token):
    """A value as written in the intent, without sentence punctuation."""
    token = token.strip()
    return token if token[-1:] in ("\"", "'", "`") else token.rstrip(".")


def parse_value(token):
    """(python value, was quoted) for a value written in the intent."""
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] == "`":
        token = token[1:-1].strip()
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        return token[1:-1], True
    token = token.rstrip(".")  # sentence punctuation: "... to 10."
    try:
        return ast.literal_eval(token), False
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return token, False


def last_component(name):
    return name.strip().split(".")[-1]


class Agent:
    def __init__(self, root, trace):
        self.root = root
        self.trace = trace
        self.read_files = set()
        self.edited = []

    def read_event(self, parent, rel):
        text = read(self.root, rel)
        self.trace.emit("TOOL", "read_file", parent, path=rel,
                        bytes=len(text) if text is not None else 0, ok=text is not None)
        self.read_files.add(rel)
        return text

    def edit_event(self, parent, rel, new_text, summary):
        start = time.time()
        write(self.root, rel, new_text)
        self.edited.append(rel)
        self.trace.emit("TOOL", "edit_file", parent, path=rel, files=[rel], summary=summary,
                        latency_ms=int((time.time() - start) * 1000))

    def search(self, parent, word, files):
        pattern = re.compile(r"\b%s\b" % re.escape(word))
        hits = []
        for rel in files:
            text = read(self.root, rel)
            if text is not None and pattern.search(text):
                hits.append(rel)
        self.trace.emit("TOOL", "search", parent, query=word, files=hits)
        return hits

    # -- rule 1 ------------------------------------------------------------

    def rename(self, parent, old, new):
        old, new = last_component(old), last_component(new)
        if not (IDENTIFIER.match(old) and IDENTIFIER.match(new)) or old == new:
            return "not a rename of two identifiers: %r -> %r" % (old, new)
        pattern = re.compile(r"\b%s\b" % re.escape(old))
        files = source_files(self.root)
        hits = self.search(parent, old, files)
        if not hits:
            return "no occurrence of %s in the source files" % old
        for rel in hits:
            text = self.read_event(parent, rel)
            if text is None:
                continue
            new_text, count = pattern.subn(new, text)
            if count:
                self.edit_event(parent, rel, new_text,
                                "rename %s -> %s (%d occurrences)" % (old, new, count))
        return None

    # -- rule 2 ------------------------------------------------------------

    def change_default(self, parent, name, old_token, new_token):
        name = last_component(name)
        if not IDENTIFIER.match(name):
            return "not an identifier: %r" % name
        old_value, _ = parse_value(old_token)
        new_value, _ = parse_value(new_token)
        assignment = re.compile(
            r"^(?P<head>[ \t]*%s[ \t]*(?::[^=\n]*)?=[ \t]*)(?P<value>[^#\n]*?)(?P<tail>[ \t]*(?:#.*)?)$"
            % re.escape(name), re.MULTILINE)
        hits = self.search(parent, name, source_files(self.root))
        changed = False
        for rel in hits:
            text = self.read_event(parent, rel)
            if text is None:
                continue
            pieces = []
            pos = 0
            for match in assignment.finditer(text):
                rhs = match.group("value").strip()
                try:
                    current = ast.literal_eval(rhs)
                except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
                    continue
                if type(current) is bool or type(old_value) is bool:
                    same = current is old_value
                else:
                    same = current == old_value
                if not same:
                    continue
                if isinstance(current, str) or isinstance(new_value, str):
                    quote = rhs[0] if rhs[:1] in ("'", '"') else '"'
                    text_value = str(new_value)
                    if quote in text_value or "\\" in text_value or "\n" in text_value:
                        rendered = repr(text_value)
                    else:
                        rendered = quote + text_value + quote
                else:
                    rendered = new_token.strip().strip("`").strip().rstrip(".")
                pieces.append(text[pos:match.start("value")])
                pieces.append(rendered)
                pos = match.end("value")
            if pieces:
                pieces.append(text[pos:])
                self.edit_event(parent, rel, "".join(pieces),
                                "set %s from %s to %s" % (name, old_token, new_token))
                changed = True
        if not changed:
            return "no assignment %s = %s found" % (name, old_token)
        return None

    # -- rule 3 ------------------------------------------------------------

    def explore(self, parent, intent):
        files = source_files(self.root)
        mentioned = [rel for rel in files if rel in intent]
        words = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_.]*)`", intent))
        chosen = mentioned[:EXPLORE_FILES]
        for rel in files:
            if len(chosen) >= EXPLORE_FILES:
                break
            stem = rel.rsplit("/", 1)[-1][:-3]
            if rel not in chosen and any(stem in w.split(".") for w in words):
                chosen.append(rel)
        for rel in files:
            if len(chosen) >= EXPLORE_FILES:
                break
            if rel not in chosen and not rel.endswith("__init__.py"):
                chosen.append(rel)
        for rel in chosen:
            self.read_event(parent, rel)
        return chosen


def run_tests(root, trace, parent):
    interpreter = sys.executable or "python3"
    cmd = [interpreter, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    start = time.time()
    attrs = {"command": "python3 -m pytest -q -p no:cacheprovider"}
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=TEST_TIMEOUT)
        output = proc.stdout.decode("utf-8", "replace").strip().splitlines()
        attrs.update(passed=proc.returncode == 0, exit_code=proc.returncode,
                     summary=output[-1] if output else "")
    except subprocess.TimeoutExpired:
        attrs.update(passed=False, exit_code=-1, error="timed out after %ds" % TEST_TIMEOUT)
    except OSError as exc:
        attrs.update(passed=False, exit_code=-1, error=str(exc))
    attrs["latency_ms"] = int((time.time() - start) * 1000)
    trace.emit("TOOL", "run_tests", parent, **attrs)
    return attrs["passed"]


def summarize(intent):
    for line in intent.splitlines():
        line = line.strip()
        if line and not line.lower().startswith("merge pull request"):
            return line[:200]
    return ""


def main():
    task, problem = load_task(os.environ.get("CRUCIBLE_TASK"))
    round_number = task.get("round", 1)
    if not isinstance(round_number, int):
        round_number = 1
    trace = Trace(os.environ.get("CRUCIBLE_TRACE"), round_number)
    root_dir = os.getcwd()
    intent = as_text(task.get("intent"))
    feedback = as_text(task.get("feedback"))
    started = time.time()
    root = trace.emit("AGENT", AGENT_NAME, None, agent=AGENT_NAME, version=AGENT_VERSION,
                      repo=as_text(task.get("repo")), round=round_number,
                      workspace=root_dir, has_feedback=bool(feedback))
    if problem:
        trace.emit("CHAIN", "error", root, message=problem)

    renames = RENAME_RULE.findall(intent)
    defaults = [(name, clean_token(old), clean_token(new))
                for name, old, new in DEFAULT_RULE.findall(intent)]
    steps = []
    for old, new in renames:
        steps.append("rename %s to %s in the non-test Python files" % (old, new))
    for name, old, new in defaults:
        steps.append("change the default %s from %s to %s" % (name, old, new))
    if not steps:
        steps.append("explore the repository; no rule matches the intent")
    steps.append("run the visible tests")
    trace.emit("CHAIN", "plan", root, steps=steps, intent_summary=summarize(intent),
               rules=["rename"] * len(renames) + ["change_default"] * len(defaults))

    agent = Agent(root_dir, trace)
    failures = []
    try:
        for old, new in renames:
            failure = agent.rename(root, old, new)
            if failure:
                failures.append(failure)
        for name, old, new in defaults:
            failure = agent.change_default(root, name, old, new)
            if failure:
                failures.append(failure)
        if not renames and not defaults:
            agent.explore(root, intent)
            failures.append("no rule matches the intent")
    except Exception as exc:  # an example agent never crashes on odd input
        failures.append("internal error: %s: %s" % (type(exc).__name__, exc))
    if failures and not agent.edited:
        trace.emit("CHAIN", "give_up", root, reason="; ".join(failures))
    elif failures:
        trace.emit("CHAIN", "error", root, message="; ".join(failures))

    passed = run_tests(root_dir, trace, root)
    trace.emit("AGENT", "finish", root, outcome="edited" if agent.edited else "gave_up",
               files=sorted(set(agent.edited)), tests_passed=passed,
               latency_ms=int((time.time() - started) * 1000))
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except Exception as exc:  # last resort: report, still exit 0
        sys.stderr.write("rule_agent: %s: %s\n" % (type(exc).__name__, exc))
        code = 0
    sys.exit(code)
