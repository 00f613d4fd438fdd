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

In the review loop (round 2 and later, with "feedback" from CI and review)
it also:
  - reverts a file a review comment of kind out_of_scope or reformat names to
    what it was before the agent's first edit of it (the originals are kept
    in rule_agent_state.json beside the task file, written before each
    file's first edit);
  - after a rename with failing tests: renames in the test files too, the
    failing tests' files first;
  - after a default change with failing tests: in the failing test
    functions, replaces the old default by the new one where an assert
    compares with it or a line names the setting.
$RULE_AGENT_STYLE picks how it treats feedback: "minimal" (the default, as
above), "tidy" (round 1 also appends a line to README.md, out of the task's
scope, and reverts it when the review names it) or "stubborn" (tidies like
"tidy" and ignores feedback: every round redoes round 1's work).

Standard library only; runs under any Python 3.6+ (fixing test expectations
needs 3.8+, for the positions of expressions in the syntax tree).
"""

import ast
import json
import os
import re
import subprocess
import sys
import time

AGENT_NAME = "rule_agent"
AGENT_VERSION = "1.1"
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
RENAME_RULE = re.compile(r"\brename\s+`([^`\n]+)`\s+to\s+`([^`\n]+)`", re.IGNORECASE)
VALUE = r"(\"[^\"\n]*\"|'[^'\n]*'|`[^`\n]*`|[^\s,;()]+)"
DEFAULT_RULE = re.compile(
    r"\bchange\s+the\s+default\s+`([^`\n]+)`\s+from\s+" + VALUE + r"\s+to\s+" + VALUE,
    re.IGNORECASE)
SKIP_DIRS = {".git", ".hg", ".svn", "tests", "test", "__pycache__", "node_modules",
             ".venv", "venv", ".tox", "build", "dist"}
TEST_DIRS = {"tests", "test"}
MAX_FILE_BYTES = 1 << 20
EXPLORE_FILES = 3
TEST_TIMEOUT = 600

STYLES = ("minimal", "tidy", "stubborn")
STATE_NAME = "rule_agent_state.json"
STATE_VERSION = 1
MAX_STATE_BYTES = 4 << 20      # the originals kept, all files together
MAX_FEEDBACK_ITEMS = 200       # failing tests and review comments read
MAX_TEST_ID = 1000             # characters of a test id
MAX_MESSAGE = 500              # characters of a problem reported in the trace
MAX_LISTED = 10                # ids and comments listed in the feedback event
REVERT_KINDS = ("out_of_scope", "reformat")
TIDY_FILE = "README.md"
TIDY_LINE = "Tidied by rule_agent."


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

    def problem(self, parent, source, message):
        """A CHAIN error event: something in the input was wrong; the agent goes on."""
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + "..."
        return self.emit("CHAIN", "error", parent, source=source, message=message)


def load_task(path):
    """The task as a dict; problems are reported, never raised."""
    if not path:
        return {}, "CRUCIBLE_TASK is not set"
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            task = json.load(fh)
    except (OSError, ValueError, RecursionError) as exc:
        return {}, "cannot read task %s: %s" % (path, exc)
    if not isinstance(task, dict):
        return {}, "task %s is not a JSON object" % path
    return task, None


def json_type(value):
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def as_text(value, depth=0):
    if value is None or depth > 20:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n\n".join(as_text(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return "\n\n".join(as_text(v, depth + 1) for v in value)
    return str(value)


def is_test_file(rel):
    base = rel.rsplit("/", 1)[-1]
    return (base == "conftest.py" or base.startswith("test_") or base.endswith("_test.py"))


def python_files(root, want_tests):
    """Relative paths of the .py files under root, sorted: the non-test ones,
    or (want_tests) the test files and everything under tests/ or test/."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        skip = SKIP_DIRS - TEST_DIRS if want_tests else SKIP_DIRS
        dirnames[:] = sorted(d for d in dirnames if d not in skip and not d.startswith("."))
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            in_test_dir = any(part in TEST_DIRS for part in rel.split("/")[:-1])
            if (is_test_file(rel) or in_test_dir) != want_tests or os.path.islink(full):
                continue
            try:
                if os.path.getsize(full) > MAX_FILE_BYTES:
                    continue
            except OSError:
                continue
            found.append(rel)
    return sorted(found)


def source_files(root):
    """Relative paths of the non-test .py files under root, sorted."""
    return python_files(root, False)


def test_files(root):
    """Relative paths of the test .py files under root, sorted."""
    return python_files(root, True)


def read(root, rel):
    try:
        with open(os.path.join(root, rel), encoding="utf-8", newline="") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError):
        return None


def write(root, rel, text):
    with open(os.path.join(root, rel), "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def relative_path(path):
    """A workspace-relative path as a review names it ("./a.py",
    "/workspace/a.py"), or None when it is not one (absolute elsewhere, "..")."""
    if not isinstance(path, str):
        return None
    path = path.strip().replace("\\", "/")
    if path.startswith("/workspace/"):
        path = path[len("/workspace/"):]
    while path.startswith("./"):
        path = path[2:]
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return None
    return path


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


def literal(node_or_text):
    """(True, value) when an expression (source text or syntax node) is a
    Python literal, else (False, None)."""
    try:
        return True, ast.literal_eval(node_or_text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return False, None


def same_value(current, wanted):
    if type(current) is bool or type(wanted) is bool:
        return current is wanted
    try:
        return current == wanted
    except Exception:  # an odd __eq__ of a literal cannot be: be safe anyway
        return False


def render_value(written, current, new_value, new_token):
    """The text that replaces `written` (a literal whose value is `current`)
    by the new value, keeping a string's quote style."""
    if isinstance(current, str) or isinstance(new_value, str):
        quote = written[0] if written[:1] in ("'", '"') else '"'
        text_value = str(new_value)
        if quote in text_value or "\\" in text_value or "\n" in text_value:
            return repr(text_value)
        return quote + text_value + quote
    return new_token.strip().strip("`").strip().rstrip(".")


def last_component(name):
    return name.strip().split(".")[-1]


def split_test_id(test_id):
    """(module part, names) of a failing test's id: a JUnit id
    ("tests.test_x::test_y", "tests.test_x.TestC::test_y") or a pytest node
    id ("tests/test_x.py::TestC::test_y[param]")."""
    head, _, rest = test_id.partition("::")
    names = [re.sub(r"\[.*\]\Z", "", n) for n in rest.split("::") if n] if rest else []
    return head.strip(), names


def test_location(root, test_id):
    """(relative file, names inside it) of a failing test, or None when no
    file of the workspace holds it."""
    head, names = split_test_id(test_id)
    candidates = []
    if head.endswith(".py"):
        candidates.append((head, names))
    else:
        parts = head.split(".")
        for k in range(len(parts), 0, -1):
            candidates.append(("/".join(parts[:k]) + ".py", parts[k:] + names))
    for rel, inner in candidates:
        rel = relative_path(rel)
        if rel is None:
            continue
        full = os.path.join(root, rel)
        if os.path.isfile(full) and not os.path.islink(full):
            return rel, inner
    return None


class Feedback:
    """What the agent could use of the task's "feedback"; problems are kept
    as sentences, never raised."""

    def __init__(self, value):
        self.present = False
        self.ci_passed = None
        self.failing = []   # test ids, in the order given
        self.review = []    # (kind, file or None, line or None)
        self.problems = []
        if value is None:
            return
        if not isinstance(value, dict):
            self.problems.append("feedback is %s, not an object: ignored" % json_type(value))
            return
        self.present = True
        ci = value.get("ci")
        if isinstance(ci, dict):
            if isinstance(ci.get("passed"), bool):
                self.ci_passed = ci["passed"]
            self.failing = self.items("feedback.ci.failing", ci.get("failing"), self.test_id)
        elif ci is not None:
            self.problems.append("feedback.ci is %s, not an object: ignored" % json_type(ci))
        self.review = self.items("feedback.review", value.get("review"), self.comment)
        review = value.get("review")
        review = review[:MAX_FEEDBACK_ITEMS] if isinstance(review, list) else []
        outside = [item.get("file") for item in review
                   if isinstance(item, dict) and isinstance(item.get("file"), str) and
                   item["file"].strip() and relative_path(item["file"]) is None]
        if outside:
            self.problems.append("feedback.review: %d comment(s) name a file outside the "
                                 "workspace, the first %r" % (len(outside), outside[0][:200]))

    def items(self, where, value, take):
        if value is None:
            return []
        if not isinstance(value, list):
            self.problems.append("%s is %s, not an array: ignored" % (where, json_type(value)))
            return []
        if len(value) > MAX_FEEDBACK_ITEMS:
            self.problems.append("%s has %d items; only the first %d are read" %
                                 (where, len(value), MAX_FEEDBACK_ITEMS))
        out, bad = [], []
        for index, item in enumerate(value[:MAX_FEEDBACK_ITEMS]):
            got = take(item)
            if got is None:
                bad.append(index)
            else:
                out.append(got)
        if bad:
            self.problems.append("%s: %d unusable item(s), the first at index %d (%s)" %
                                 (where, len(bad), bad[0], json_type(value[bad[0]])))
        return out

    @staticmethod
    def test_id(item):
        test = item.get("test") if isinstance(item, dict) else item
        if isinstance(test, str) and test.strip() and len(test) <= MAX_TEST_ID:
            return test.strip()
        return None

    @staticmethod
    def comment(item):
        if not isinstance(item, dict) or not isinstance(item.get("kind"), str):
            return None
        line = item.get("line")
        return (item["kind"], relative_path(item.get("file")),
                line if isinstance(line, int) and not isinstance(line, bool) else None)


class State:
    """The originals of the files the agent edited, kept between rounds in
    rule_agent_state.json beside the task file (never in the workspace).
    Problems are kept as sentences; an unusable state disables reverts."""

    def __init__(self, task_path, root):
        self.path = None
        self.originals = {}  # relative path -> {"existed": bool, "text": str}
        self.reverted = []
        self.size = 0
        self.problems = []
        if not task_path:
            self.problems.append("CRUCIBLE_TASK is not set: originals are not kept, "
                                 "no file can be reverted")
            return
        directory = os.path.dirname(os.path.abspath(task_path))
        real_dir, real_root = os.path.realpath(directory), os.path.realpath(root)
        if real_dir == real_root or real_dir.startswith(real_root.rstrip("/") + "/"):
            self.problems.append("the task file is inside the workspace: the state file would "
                                 "be part of the diff, so originals are not kept")
            return
        self.path = os.path.join(directory, STATE_NAME)

    def open(self, round_number):
        """Round 1 starts a new state file; later rounds read it."""
        if not self.path:
            return
        if round_number <= 1:
            self.save()
            return
        try:
            with open(self.path, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return self.disable("state file %s is missing (round 1 writes it)" % self.path)
        except (OSError, ValueError, RecursionError) as exc:
            return self.disable("state file %s is corrupt: %s" % (self.path, exc))
        problem = self.take(data)
        if problem:
            self.originals, self.reverted, self.size = {}, [], 0
            self.disable("state file %s is corrupt: %s" % (self.path, problem))

    def take(self, data):
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            return "not an object with \"version\": %d" % STATE_VERSION
        originals, reverted = data.get("originals"), data.get("reverted", [])
        if not isinstance(originals, dict) or not isinstance(reverted, list):
            return "\"originals\" is not an object or \"reverted\" not an array"
        for rel, entry in originals.items():
            if (relative_path(rel) != rel or not isinstance(entry, dict) or
                    not isinstance(entry.get("existed"), bool) or
                    not isinstance(entry.get("text"), str)):
                return "bad entry for %r in \"originals\"" % rel[:100]
            self.originals[rel] = {"existed": entry["existed"], "text": entry["text"]}
            self.size += len(entry["text"].encode("utf-8", "replace"))
        self.reverted = [r for r in reverted if isinstance(r, str) and relative_path(r) == r]
        return None

    def disable(self, message):
        self.problems.append(message + ": earlier originals are unknown, no file is reverted "
                             "and the state file is left as it is")
        self.path = None

    def usable(self):
        return self.path is not None

    def remember(self, rel, text):
        """Keeps `text` (None: the file did not exist) as the original of rel
        unless one is kept already. Returns a problem or None."""
        if not self.path or rel in self.originals:
            return None
        cost = len(text.encode("utf-8", "replace")) if text is not None else 0
        if self.size + cost > MAX_STATE_BYTES:
            return ("the original of %s is not kept: the state file would exceed %d bytes" %
                    (rel, MAX_STATE_BYTES))
        self.originals[rel] = {"existed": text is not None, "text": text or ""}
        self.size += cost
        return self.save()

    def save(self):
        if not self.path:
            return None
        data = {"version": STATE_VERSION, "originals": self.originals,
                "reverted": self.reverted}
        tmp = self.path + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.replace(tmp, self.path)
        except (OSError, ValueError) as exc:
            problem = "cannot write state file %s: %s" % (self.path, exc)
            self.disable(problem)
            return problem
        return None


class Agent:
    def __init__(self, root, trace, state):
        self.root = root
        self.trace = trace
        self.state = state
        self.read_files = set()
        self.edited = []
        self.reverted = []
        self.notes = []
        # Files a review made the agent revert: its rules leave them alone.
        self.protected = set(state.reverted)

    def read_event(self, parent, rel):
        text = read(self.root, rel)
        self.trace.emit("TOOL", "read_file", parent, path=rel,
                        bytes=len(text) if text is not None else 0, ok=text is not None)
        self.read_files.add(rel)
        return text

    def edit_event(self, parent, rel, old_text, new_text, summary):
        """Writes new_text to rel after keeping old_text (None: no such file)
        as its original. False when the file is one a review had reverted."""
        if rel in self.protected:
            self.notes.append("left %s alone: it was reverted on review" % rel)
            return False
        problem = self.state.remember(rel, old_text)
        if problem:
            self.trace.problem(parent, "state", problem)
        start = time.time()
        write(self.root, rel, new_text)
        self.edited.append(rel)
        self.trace.emit("TOOL", "edit_file", parent, path=rel, files=[rel], summary=summary,
                        latency_ms=int((time.time() - start) * 1000))
        return True

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

    def rename(self, parent, old, new, files=None):
        """Renames old to new in `files` (default: the source files).
        Returns a failure or None."""
        old, new = last_component(old), last_component(new)
        if not (IDENTIFIER.match(old) and IDENTIFIER.match(new)) or old == new:
            return "not a rename of two identifiers: %r -> %r" % (old, new)
        pattern = re.compile(r"\b%s\b" % re.escape(old))
        where = "source" if files is None else "test"
        files = source_files(self.root) if files is None else files
        hits = self.search(parent, old, files)
        if not hits:
            if self.search(parent, new, files):
                self.notes.append("the %s files use %s already" % (where, new))
                return None
            return "no occurrence of %s in the %s files" % (old, where)
        for rel in hits:
            text = self.read_event(parent, rel)
            if text is None:
                continue
            new_text, count = pattern.subn(new, text)
            if count:
                self.edit_event(parent, rel, text, new_text,
                                "rename %s -> %s (%d occurrences)" % (old, new, count))
        return None

    def rename_in_tests(self, parent, old, new, failing_files):
        """Round 2+: the rename in the test files, the failing tests' first."""
        files = [f for f in failing_files if f.endswith(".py")]
        files += [f for f in test_files(self.root) if f not in files]
        return self.rename(parent, old, new, files)

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
        changed = already = False
        for rel in hits:
            text = self.read_event(parent, rel)
            if text is None:
                continue
            pieces = []
            pos = 0
            for match in assignment.finditer(text):
                rhs = match.group("value").strip()
                ok, current = literal(rhs)
                if not ok:
                    continue
                if same_value(current, new_value):
                    already = True
                if not same_value(current, old_value):
                    continue
                pieces.append(text[pos:match.start("value")])
                pieces.append(render_value(rhs, current, new_value, new_token))
                pos = match.end("value")
            if pieces:
                pieces.append(text[pos:])
                if self.edit_event(parent, rel, text, "".join(pieces),
                                   "set %s from %s to %s" % (name, old_token, new_token)):
                    changed = True
        if not changed:
            if already:
                self.notes.append("%s is %s already" % (name, new_token))
                return None
            return "no assignment %s = %s found" % (name, old_token)
        return None

    def fix_expectations(self, parent, name, old_token, new_token, failing):
        """Round 2+: in the failing test functions, the old default becomes
        the new one where an assert compares with it or a line names NAME."""
        name = last_component(name)
        old_value, _ = parse_value(old_token)
        new_value, _ = parse_value(new_token)
        by_file = {}
        for rel, names in failing:
            if names:
                by_file.setdefault(rel, []).append(names)
        if not by_file:
            return "no failing test function to update"
        mentions = re.compile(r"\b%s\b" % re.escape(name))
        changed = False
        for rel, tests in by_file.items():
            text = self.read_event(parent, rel)
            if text is None:
                continue
            try:
                tree = ast.parse(text)
            except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
                self.notes.append("cannot parse %s: %s" % (rel, exc))
                continue
            lines = text.split("\n")
            spots = {}
            for names in tests:
                func = find_function(tree, names)
                if func is None:
                    self.notes.append("no test function %s in %s" % ("::".join(names), rel))
                    continue
                for node in expectation_nodes(func, lines, mentions, old_value):
                    spots[(node.lineno, node.col_offset, node.end_col_offset)] = node
            fixed = 0
            for (lineno, start, end) in sorted(spots, reverse=True):
                raw = lines[lineno - 1].encode("utf-8")
                written = raw[start:end].decode("utf-8", "replace")
                ok, current = literal(written)
                if not ok or not same_value(current, old_value):
                    continue  # positions that do not match the text: leave the line
                rendered = render_value(written, current, new_value, new_token).encode("utf-8")
                lines[lineno - 1] = (raw[:start] + rendered + raw[end:]).decode("utf-8")
                fixed += 1
            if fixed and self.edit_event(
                    parent, rel, text, "\n".join(lines),
                    "expect %s = %s instead of %s in %d place(s) of the failing tests" %
                    (name, new_token, old_token, fixed)):
                changed = True
        if not changed:
            return "no expectation of %s = %s found in the failing tests" % (name, old_token)
        return None

    # -- feedback: reverts ---------------------------------------------------

    def revert(self, parent, rel, kind):
        """Puts rel back as it was before the agent's first edit of it."""
        if not self.state.usable():
            return "cannot revert %s (%s): no state file with the originals" % (rel, kind)
        original = self.state.originals.get(rel)
        if original is None:
            if rel in self.state.reverted:
                self.notes.append("%s was reverted already" % rel)
                return None
            return "cannot revert %s (%s): the agent did not edit it" % (rel, kind)
        full = os.path.join(self.root, rel)
        if os.path.islink(full):
            return "cannot revert %s: it is a symbolic link now" % rel
        current = self.read_event(parent, rel) if os.path.lexists(full) else None
        try:
            if original["existed"]:
                if current != original["text"]:
                    write(self.root, rel, original["text"])
            elif os.path.lexists(full):
                os.remove(full)
        except OSError as exc:
            return "cannot revert %s: %s" % (rel, exc)
        del self.state.originals[rel]
        self.state.size -= len(original["text"].encode("utf-8", "replace"))
        self.state.reverted.append(rel)
        self.protected.add(rel)
        self.reverted.append(rel)
        self.trace.emit("TOOL", "revert", parent, path=rel, files=[rel], reason=kind,
                        summary="%s as before the first edit (review: %s)" %
                        ("restored" if original["existed"] else "removed", kind))
        problem = self.state.save()
        if problem:
            self.trace.problem(parent, "state", problem)
        return None

    # -- the "tidy" style ----------------------------------------------------

    def tidy(self, parent):
        """Appends a line to the readme, out of any task's scope; does
        nothing when the line is there already."""
        text = self.read_event(parent, TIDY_FILE) if os.path.exists(
            os.path.join(self.root, TIDY_FILE)) else None
        current = text or ""
        if current.rstrip("\n").endswith(TIDY_LINE):
            self.notes.append("%s is tidy already" % TIDY_FILE)
            return
        if os.path.islink(os.path.join(self.root, TIDY_FILE)):
            return
        if current and not current.endswith("\n"):
            current += "\n"
        self.edit_event(parent, TIDY_FILE, text, current + "\n" + TIDY_LINE + "\n",
                        "tidy the readme")

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


def find_function(tree, names):
    """The test function `names` (["TestC", "test_y"] or ["test_y"]) of a
    module: by its path, else any function of that name."""
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    body, node = tree.body, None
    for name in names:
        node = next((n for n in body if isinstance(n, kinds) and n.name == name), None)
        if node is None:
            break
        body = getattr(node, "body", [])
    if node is not None and not isinstance(node, ast.ClassDef):
        return node
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == names[-1]:
            return node
    return None


def expectation_nodes(func, lines, mentions, old_value):
    """The literals equal to old_value in func that state an expectation: a
    side of a comparison in an assert, or any literal on a line that names
    the setting. Only literals on one line, with known positions."""
    found = []

    def consider(node):
        if getattr(node, "end_col_offset", None) is None or node.end_lineno != node.lineno:
            return
        if isinstance(node, (ast.Constant, ast.UnaryOp)):
            ok, value = literal(node)
            if ok and same_value(value, old_value):
                found.append(node)

    for node in ast.walk(func):
        if isinstance(node, ast.Assert):
            for sub in ast.walk(node.test):
                if isinstance(sub, ast.Compare):
                    for side in [sub.left] + list(sub.comparators):
                        consider(side)
        elif isinstance(node, (ast.Constant, ast.UnaryOp)):
            lineno = getattr(node, "lineno", 0)
            if 0 < lineno <= len(lines) and mentions.search(lines[lineno - 1]):
                consider(node)
    return found


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


def task_round(task):
    """(round number, problem or None)."""
    value = task.get("round", 1)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 1000:
        return value, None
    return 1, "task \"round\" is %s, not a number from 1: taken as 1" % (
        json_type(value) if not isinstance(value, int) or isinstance(value, bool) else value)


def agent_style():
    """(style, problem or None) from $RULE_AGENT_STYLE."""
    value = os.environ.get("RULE_AGENT_STYLE", "").strip() or "minimal"
    if value in STYLES:
        return value, None
    return "minimal", "RULE_AGENT_STYLE %r is not one of %s: minimal is used" % (
        value[:50], ", ".join(STYLES))


def main():
    task_path = os.environ.get("CRUCIBLE_TASK")
    task, problem = load_task(task_path)
    round_number, round_problem = task_round(task)
    style, style_problem = agent_style()
    trace = Trace(os.environ.get("CRUCIBLE_TRACE"), round_number)
    root_dir = os.getcwd()
    intent = as_text(task.get("intent"))
    started = time.time()
    root = trace.emit("AGENT", AGENT_NAME, None, agent=AGENT_NAME, version=AGENT_VERSION,
                      repo=as_text(task.get("repo")), round=round_number, style=style,
                      workspace=root_dir, has_feedback=task.get("feedback") is not None)
    for source, message in (("task", problem), ("task", round_problem),
                            ("style", style_problem)):
        if message:
            trace.problem(root, source, message)

    state = State(task_path, root_dir)
    state.open(round_number)
    for message in state.problems:
        trace.problem(root, "state", message)
    feedback = Feedback(task.get("feedback"))
    for message in feedback.problems:
        trace.problem(root, "feedback", message)
    use_feedback = round_number >= 2 and style != "stubborn" and feedback.present
    failing, reverts = [], []
    if use_feedback:
        unknown = []
        for test_id in feedback.failing:
            where = test_location(root_dir, test_id)
            if where is None:
                unknown.append(test_id)
            elif where not in failing:
                failing.append(where)
        for test_id in unknown[:MAX_LISTED]:
            trace.problem(root, "feedback", "failing test %r: no such test file in the "
                          "workspace" % test_id[:200])
        if len(unknown) > MAX_LISTED:
            trace.problem(root, "feedback", "%d more failing tests with no test file in the "
                          "workspace" % (len(unknown) - MAX_LISTED))
        for kind, rel, _ in feedback.review:
            if kind in REVERT_KINDS and rel and (rel, kind) not in reverts:
                reverts.append((rel, kind))
    if round_number >= 2 or feedback.present:
        trace.emit("CHAIN", "feedback", root, round=round_number, received=feedback.present,
                   used=use_feedback, ci_passed=feedback.ci_passed,
                   failing=feedback.failing[:MAX_LISTED], failing_count=len(feedback.failing),
                   review=[{"kind": k, "file": f, "line": n}
                           for k, f, n in feedback.review[:MAX_LISTED]],
                   review_count=len(feedback.review),
                   ignored_because="style stubborn" if style == "stubborn" and
                   feedback.present else None)

    renames = RENAME_RULE.findall(intent)
    defaults = [(name, clean_token(old), clean_token(new))
                for name, old, new in DEFAULT_RULE.findall(intent)]
    failing_files = []
    for rel, _ in failing:
        if rel not in failing_files:
            failing_files.append(rel)
    fix_tests = bool(failing_files)
    do_tidy = bool(renames or defaults) and (style == "stubborn" or
                                             (style == "tidy" and round_number == 1))
    # Plan steps name no file: a plan that names some files is held against
    # every file of the diff (docs/scoring.md).
    steps = []
    if reverts:
        steps.append("revert what the review named out of scope or reformatted")
    for old, new in renames:
        steps.append("rename %s to %s in the non-test Python files" % (old, new))
        if fix_tests:
            steps.append("rename %s to %s in the test files too, the failing tests' first" %
                         (old, new))
    for name, old, new in defaults:
        steps.append("change the default %s from %s to %s" % (name, old, new))
        if fix_tests:
            steps.append("expect %s instead of %s in the failing tests" % (new, old))
    if not renames and not defaults:
        steps.append("explore the repository; no rule matches the intent")
    if do_tidy:
        steps.append("tidy the readme")
    steps.append("run the visible tests")
    trace.emit("CHAIN", "plan", root, steps=steps, intent_summary=summarize(intent),
               rules=["rename"] * len(renames) + ["change_default"] * len(defaults))

    agent = Agent(root_dir, trace, state)
    failures = []
    try:
        for rel, kind in reverts:
            failure = agent.revert(root, rel, kind)
            if failure:
                trace.problem(root, "revert", failure)
        for old, new in renames:
            failure = agent.rename(root, old, new)
            if not failure and fix_tests:
                failure = agent.rename_in_tests(root, old, new, failing_files)
            if failure:
                failures.append(failure)
        for name, old, new in defaults:
            failure = agent.change_default(root, name, old, new)
            if not failure and fix_tests:
                failure = agent.fix_expectations(root, name, old, new, failing)
            if failure:
                failures.append(failure)
        if not renames and not defaults:
            agent.explore(root, intent)
            failures.append("no rule matches the intent")
        if do_tidy:
            agent.tidy(root)
    except Exception as exc:  # an example agent never crashes on odd input
        failures.append("internal error: %s: %s" % (type(exc).__name__, exc))
    changed = agent.edited or agent.reverted
    if failures and not changed:
        trace.emit("CHAIN", "give_up", root, reason="; ".join(failures))
    elif failures:
        trace.emit("CHAIN", "error", root, message="; ".join(failures))

    passed = run_tests(root_dir, trace, root)
    outcome = "edited" if changed else "gave_up" if failures else "unchanged"
    trace.emit("AGENT", "finish", root, outcome=outcome, files=sorted(set(agent.edited)),
               reverted=agent.reverted, notes=agent.notes[:MAX_LISTED], tests_passed=passed,
               latency_ms=int((time.time() - started) * 1000))
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except Exception as exc:  # last resort: report, still exit 0
        sys.stderr.write("rule_agent: %s: %s\n" % (type(exc).__name__, exc))
        code = 0
    sys.exit(code)
