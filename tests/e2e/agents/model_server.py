#!/usr/bin/env python3
"""model_server: a scripted model server (Anthropic Messages API, OpenAI
Responses API) for offline agent tests.

Usage: model_server.py --port-file FILE --log FILE [--script FILE] [--port N]

Listens on 127.0.0.1 (port N, 0 by default: any free port, written to the
port file once the server accepts connections) and answers:

  POST /v1/messages               the next turn of a fixed conversation, as
                                  server-sent events when the request says
                                  "stream": true, as one JSON message otherwise
  POST /v1/messages/count_tokens  an estimate of the request's input tokens
  POST /v1/responses              the next turn in the OpenAI Responses API
                                  (Codex CLI), streamed when asked
  anything else (HEAD /, GET ...) 200 with an empty JSON object

Every request is appended to the log, one JSON object a line: method, path,
what the server took it for ("turn", "side", "count_tokens", "other"), the
model asked for and, for a turn, its number.

The conversation (the script, a JSON list; a built-in one when none is given)
is a list of assistant turns, each {"text": "..."} and/or {"tool": NAME,
"input": {...}}; the Responses API has a script of its own (--responses-script,
a built-in one for Codex CLI by default). A request is a turn of the main
conversation when it offers the client's tools (Bash, Read, Edit or Write; for
the Responses API exec_command or shell); its number is the count of tool calls
(Messages: assistant messages) it already holds, so whatever the tool results
say, the client gets the next turn (the last turn again when the script has run
out). Any other request (a title, a topic check, a quota probe) is a side
request: it gets a short text answer.

Usage figures are estimates from the sizes of the request and the reply
(4 characters a token), so a client can price them.
"""

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The sample repository's PR #4 task: read the config, raise the threshold,
# run the tests, report.
DEFAULT_SCRIPT = [
    {"text": "Plan: read inventory/config.py, change LOW_STOCK_THRESHOLD from 5 to 10, "
             "then run the test suite.",
     "tool": "Read", "input": {"file_path": "/workspace/inventory/config.py"}},
    {"tool": "Edit", "input": {"file_path": "/workspace/inventory/config.py",
                               "old_string": "LOW_STOCK_THRESHOLD = 5",
                               "new_string": "LOW_STOCK_THRESHOLD = 10"}},
    {"tool": "Bash", "input": {"command": "cd /workspace && python3 -m pytest -q -p no:cacheprovider",
                               "description": "Run the test suite"}},
    {"text": "LOW_STOCK_THRESHOLD is now 10 in inventory/config.py and the tests pass."},
]

# The same task for Codex CLI, whose tools are a shell (exec_command) and
# apply_patch, invoked through that shell.
DEFAULT_RESPONSES_SCRIPT = [
    {"text": "Plan: read inventory/config.py, change LOW_STOCK_THRESHOLD from 5 to 10, "
             "then run the test suite.",
     "tool": "exec_command", "input": {"cmd": "cat inventory/config.py"}},
    {"tool": "exec_command", "input": {"cmd": "apply_patch <<'EOF'\n*** Begin Patch\n"
                                              "*** Update File: inventory/config.py\n@@\n"
                                              "-LOW_STOCK_THRESHOLD = 5\n"
                                              "+LOW_STOCK_THRESHOLD = 10\n"
                                              "*** End Patch\nEOF"}},
    {"tool": "exec_command", "input": {"cmd": "python3 -m pytest -q -p no:cacheprovider"}},
    {"text": "LOW_STOCK_THRESHOLD is now 10 in inventory/config.py and the tests pass."},
]

# Tools that mark a request as the main conversation of a coding client.
MAIN_TOOLS = {"Bash", "Read", "Edit", "Write"}
RESPONSES_MAIN_TOOLS = {"exec_command", "shell", "apply_patch"}


def estimate_tokens(text):
    return max(1, len(text) // 4)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, script, responses_script, log_path):
        super().__init__(address, Handler)
        self.script = script
        self.responses_script = responses_script
        self.log_path = log_path
        self.lock = threading.Lock()
        self.counter = 0

    def log(self, entry):
        entry["ts"] = time.time()
        with self.lock:
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")

    def next_id(self):
        with self.lock:
            self.counter += 1
            return self.counter


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "crucible-model-server/1"

    def log_message(self, fmt, *args):  # the request log is ours, not stderr
        pass

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            return raw, json.loads(raw) if raw else {}
        except ValueError:
            return raw, None

    def send_json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_crucible_%d" % self.server.next_id())
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def other(self):
        raw, _ = self.read_body() if self.command in ("POST", "PUT", "PATCH") else (b"", None)
        self.server.log({"method": self.command, "path": self.path, "kind": "other",
                         "bytes": len(raw)})
        self.send_json(200, {})

    do_GET = do_HEAD = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = other

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        if path.endswith("/v1/messages/count_tokens"):
            raw, _ = self.read_body()
            self.server.log({"method": "POST", "path": self.path, "kind": "count_tokens"})
            self.send_json(200, {"input_tokens": estimate_tokens(raw.decode("utf-8", "replace"))})
            return
        if path.endswith("/responses"):
            self.answer_responses()
            return
        if not path.endswith("/v1/messages"):
            self.other()
            return
        raw, body = self.read_body()
        if not isinstance(body, dict):
            self.server.log({"method": "POST", "path": self.path, "kind": "bad_request"})
            self.send_json(400, {"type": "error", "error": {
                "type": "invalid_request_error", "message": "the body is not a JSON object"}})
            return
        model = body.get("model") or "claude-sonnet-4-5"
        tools = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
        messages = body.get("messages") or []
        entry = {"method": "POST", "path": self.path, "model": model,
                 "stream": bool(body.get("stream"))}
        if tools & MAIN_TOOLS:
            turn = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")
            entry.update(kind="turn", turn=turn)
            step = self.server.script[min(turn, len(self.server.script) - 1)]
            blocks = []
            if step.get("text"):
                blocks.append({"type": "text", "text": step["text"]})
            if step.get("tool"):
                blocks.append({"type": "tool_use", "id": "toolu_crucible_%02d" % turn,
                               "name": step["tool"], "input": step.get("input", {})})
            stop = "tool_use" if step.get("tool") else "end_turn"
        else:
            entry["kind"] = "side"
            blocks = [{"type": "text", "text": self.side_answer(body)}]
            stop = "end_turn"
        self.server.log(entry)
        usage = {"input_tokens": estimate_tokens(raw.decode("utf-8", "replace")),
                 "output_tokens": estimate_tokens(json.dumps(blocks)),
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        message = {"id": "msg_crucible_%d" % self.server.next_id(), "type": "message",
                   "role": "assistant", "model": model, "content": blocks,
                   "stop_reason": stop, "stop_sequence": None, "usage": usage}
        if body.get("stream"):
            self.stream(message)
        else:
            self.send_json(200, message)

    def answer_responses(self):
        """The OpenAI Responses API (Codex CLI's wire API)."""
        raw, body = self.read_body()
        if not isinstance(body, dict):
            self.server.log({"method": "POST", "path": self.path, "kind": "bad_request"})
            self.send_json(400, {"error": {"type": "invalid_request_error",
                                           "message": "the body is not a JSON object"}})
            return
        model = body.get("model") or "gpt-5-codex"
        tools = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
        items = body.get("input") or []
        if isinstance(items, str):
            items = [{"type": "message", "role": "user", "content": items}]
        entry = {"method": "POST", "path": self.path, "model": model,
                 "stream": bool(body.get("stream"))}
        n = self.server.next_id()
        output = []
        if tools & RESPONSES_MAIN_TOOLS:
            turn = sum(1 for i in items if isinstance(i, dict) and
                       i.get("type") in ("function_call", "custom_tool_call", "local_shell_call"))
            entry.update(kind="turn", turn=turn)
            script = self.server.responses_script
            step = script[min(turn, len(script) - 1)]
            if step.get("text"):
                output.append({"type": "message", "id": "msg_crucible_%d" % n,
                               "role": "assistant", "status": "completed",
                               "content": [{"type": "output_text", "text": step["text"],
                                            "annotations": []}]})
            if step.get("tool"):
                output.append({"type": "function_call", "id": "fc_crucible_%02d" % turn,
                               "call_id": "call_crucible_%02d" % turn, "name": step["tool"],
                               "arguments": json.dumps(step.get("input", {})),
                               "status": "completed"})
        else:
            entry["kind"] = "side"
            output.append({"type": "message", "id": "msg_crucible_%d" % n, "role": "assistant",
                           "status": "completed",
                           "content": [{"type": "output_text", "text": self.side_answer(body),
                                        "annotations": []}]})
        self.server.log(entry)
        tokens_in = estimate_tokens(raw.decode("utf-8", "replace"))
        tokens_out = estimate_tokens(json.dumps(output))
        response = {"id": "resp_crucible_%d" % n, "object": "response",
                    "created_at": int(time.time()), "status": "completed", "model": model,
                    "output": output,
                    "usage": {"input_tokens": tokens_in,
                              "input_tokens_details": {"cached_tokens": 0},
                              "output_tokens": tokens_out,
                              "output_tokens_details": {"reasoning_tokens": 0},
                              "total_tokens": tokens_in + tokens_out}}
        if not body.get("stream"):
            self.send_json(200, response)
            return
        self.start_events()
        self.event("response.created", {"type": "response.created", "response": dict(
            response, status="in_progress", output=[], usage=None)})
        for i, item in enumerate(output):
            self.event("response.output_item.added", {"type": "response.output_item.added",
                                                      "output_index": i, "item": item})
            if item["type"] == "message":
                self.event("response.output_text.delta", {
                    "type": "response.output_text.delta", "item_id": item["id"],
                    "output_index": i, "content_index": 0,
                    "delta": item["content"][0]["text"]})
            self.event("response.output_item.done", {"type": "response.output_item.done",
                                                     "output_index": i, "item": item})
        self.event("response.completed", {"type": "response.completed", "response": response})

    def start_events(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_header("request-id", "req_crucible_%d" % self.server.next_id())
        self.end_headers()
        self.close_connection = True

    def event(self, name, data):
        self.wfile.write(("event: %s\ndata: %s\n\n" % (name, json.dumps(data))).encode())
        self.wfile.flush()

    @staticmethod
    def side_answer(body):
        """A brief answer to a request outside the conversation."""
        text = json.dumps(body.get("system", "")) + json.dumps(body.get("messages", []))
        text += json.dumps(body.get("instructions", "")) + json.dumps(body.get("input", ""))
        if "isNewTopic" in text:
            return json.dumps({"isNewTopic": False, "title": None})
        if "title" in text.lower():
            return "Raise the low-stock threshold"
        return "OK"

    def stream(self, message):
        self.start_events()
        event = self.event
        usage = message["usage"]
        start = dict(message, content=[], stop_reason=None,
                     usage=dict(usage, output_tokens=1))
        event("message_start", {"type": "message_start", "message": start})
        for i, block in enumerate(message["content"]):
            if block["type"] == "text":
                event("content_block_start", {"type": "content_block_start", "index": i,
                                              "content_block": {"type": "text", "text": ""}})
                event("content_block_delta", {"type": "content_block_delta", "index": i,
                                              "delta": {"type": "text_delta",
                                                        "text": block["text"]}})
            else:
                event("content_block_start", {"type": "content_block_start", "index": i,
                                              "content_block": dict(block, input={})})
                event("content_block_delta", {"type": "content_block_delta", "index": i,
                                              "delta": {"type": "input_json_delta",
                                                        "partial_json": json.dumps(block["input"])}})
            event("content_block_stop", {"type": "content_block_stop", "index": i})
        event("message_delta", {"type": "message_delta",
                                "delta": {"stop_reason": message["stop_reason"],
                                          "stop_sequence": None},
                                "usage": {"output_tokens": usage["output_tokens"]}})
        event("message_stop", {"type": "message_stop"})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--script")
    parser.add_argument("--responses-script")
    args = parser.parse_args()
    scripts = []
    for path, default in ((args.script, DEFAULT_SCRIPT),
                          (args.responses_script, DEFAULT_RESPONSES_SCRIPT)):
        script = default
        if path:
            with open(path, encoding="utf-8") as fh:
                script = json.load(fh)
            if not isinstance(script, list) or not script:
                print("model_server: %s: the script must be a non-empty JSON list" % path,
                      file=sys.stderr)
                return 2
        scripts.append(script)
    server = Server(("127.0.0.1", args.port), scripts[0], scripts[1], args.log)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("%d\n" % server.server_address[1])
    os.replace(tmp, args.port_file)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
