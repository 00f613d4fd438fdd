#!/usr/bin/env python3
"""Tests of model_server.py: a real server process on loopback, real HTTP."""

import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = [{"name": n, "input_schema": {"type": "object"}} for n in ("Bash", "Read", "Edit")]


def sse_events(body):
    """(event, data) pairs of a server-sent event stream."""
    out = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((fields["event"], json.loads(fields["data"])))
    return out


class ModelServerTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.log = os.path.join(self.dir.name, "requests.jsonl")
        port_file = os.path.join(self.dir.name, "port")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "model_server.py"), "--port-file", port_file,
             "--log", self.log])
        deadline = time.monotonic() + 30
        while not (os.path.exists(port_file) and os.path.getsize(port_file)):
            self.assertIsNone(self.proc.poll(), "the server exited")
            self.assertLess(time.monotonic(), deadline, "the server did not start")
            time.sleep(0.05)
        with open(port_file) as fh:
            self.port = int(fh.read())

    def tearDown(self):
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.dir.cleanup()

    def request(self, method, path, body=None, raw=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        return resp.status, resp.getheader("Content-Type"), payload

    def logged(self):
        with open(self.log) as fh:
            return [json.loads(line) for line in fh]

    def messages(self, assistant_turns, stream=True):
        msgs = [{"role": "user", "content": "Change the threshold"}]
        for i in range(assistant_turns):
            msgs.append({"role": "assistant", "content": [
                {"type": "tool_use", "id": "t%d" % i, "name": "Read", "input": {}}]})
            msgs.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t%d" % i, "content": "ok"}]})
        return {"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": stream,
                "system": [{"type": "text", "text": "You are Claude Code"}], "tools": TOOLS,
                "messages": msgs}

    def test_streamed_turns_follow_the_script_by_assistant_count(self):
        status, ctype, body = self.request("POST", "/v1/messages?beta=true", self.messages(0))
        self.assertEqual(status, 200)
        self.assertEqual(ctype, "text/event-stream")
        events = sse_events(body)
        names = [e for e, _ in events]
        self.assertEqual(names[0], "message_start")
        self.assertEqual(names[-2:], ["message_delta", "message_stop"])
        self.assertEqual(names.count("content_block_start"), names.count("content_block_stop"))
        starts = [d["content_block"] for e, d in events if e == "content_block_start"]
        self.assertEqual([b["type"] for b in starts], ["text", "tool_use"])
        self.assertEqual(starts[1]["name"], "Read")
        partial = [d["delta"]["partial_json"] for e, d in events
                   if e == "content_block_delta" and d["delta"]["type"] == "input_json_delta"]
        self.assertEqual(json.loads("".join(partial))["file_path"],
                         "/workspace/inventory/config.py")
        delta = [d for e, d in events if e == "message_delta"][0]
        self.assertEqual(delta["delta"]["stop_reason"], "tool_use")
        self.assertGreater(delta["usage"]["output_tokens"], 0)
        start = [d for e, d in events if e == "message_start"][0]
        self.assertGreater(start["message"]["usage"]["input_tokens"], 0)

        # Turn 1 edits, turn 2 runs the tests, turn 3 (and any later) ends.
        want = {1: "Edit", 2: "Bash"}
        for turn, tool in want.items():
            _, _, body = self.request("POST", "/v1/messages", self.messages(turn))
            blocks = [d["content_block"] for e, d in sse_events(body) if e == "content_block_start"]
            self.assertEqual(blocks[-1]["name"], tool)
        for turn in (3, 7):
            _, _, body = self.request("POST", "/v1/messages", self.messages(turn))
            events = sse_events(body)
            self.assertEqual([d["delta"]["stop_reason"] for e, d in events if e == "message_delta"],
                             ["end_turn"])
        self.assertEqual([r["turn"] for r in self.logged()], [0, 1, 2, 3, 7])

    def test_non_streaming_answer_is_one_message(self):
        status, ctype, body = self.request("POST", "/v1/messages", self.messages(1, stream=False))
        self.assertEqual(status, 200)
        self.assertEqual(ctype, "application/json")
        msg = json.loads(body)
        self.assertEqual(msg["type"], "message")
        self.assertEqual(msg["content"][-1]["name"], "Edit")
        self.assertEqual(msg["stop_reason"], "tool_use")

    def test_side_requests_get_brief_answers_and_other_paths_succeed(self):
        quota = {"model": "claude-haiku-4-5", "max_tokens": 1,
                 "messages": [{"role": "user", "content": "quota"}]}
        _, _, body = self.request("POST", "/v1/messages", dict(quota, stream=False))
        self.assertEqual(json.loads(body)["content"][0]["text"], "OK")
        topic = {"model": "claude-haiku-4-5", "max_tokens": 50, "stream": False,
                 "system": "Analyze if this message indicates a new conversation topic. "
                           "Format your response as a JSON object with two fields: 'isNewTopic' "
                           "(boolean) and 'title'",
                 "messages": [{"role": "user", "content": "fix it"}]}
        _, _, body = self.request("POST", "/v1/messages", topic)
        self.assertEqual(json.loads(json.loads(body)["content"][0]["text"])["isNewTopic"], False)
        status, _, body = self.request("POST", "/v1/messages/count_tokens", self.messages(0))
        self.assertEqual(status, 200)
        self.assertGreater(json.loads(body)["input_tokens"], 0)
        self.assertEqual(self.request("HEAD", "/")[0], 200)
        self.assertEqual(self.request("GET", "/v1/models")[0], 200)
        kinds = [(r["method"], r["path"], r["kind"]) for r in self.logged()]
        self.assertEqual(kinds, [("POST", "/v1/messages", "side"), ("POST", "/v1/messages", "side"),
                                 ("POST", "/v1/messages/count_tokens", "count_tokens"),
                                 ("HEAD", "/", "other"), ("GET", "/v1/models", "other")])

    def test_a_body_that_is_not_json_is_a_logged_400(self):
        status, _, body = self.request("POST", "/v1/messages", raw=b"{not json")
        self.assertEqual(status, 400)
        self.assertIn("not a JSON object", json.loads(body)["error"]["message"])
        status, _, _ = self.request("POST", "/v1/responses", raw=b"[1, 2]")
        self.assertEqual(status, 400)
        self.assertEqual([r["kind"] for r in self.logged()], ["bad_request", "bad_request"])
        # The server goes on answering.
        self.assertEqual(self.request("POST", "/v1/messages", self.messages(0))[0], 200)

    def test_responses_api_turns_follow_the_script_by_function_call_count(self):
        def body(calls):
            items = [{"type": "message", "role": "user",
                      "content": [{"type": "input_text", "text": "Change the threshold"}]}]
            for i in range(calls):
                items.append({"type": "function_call", "call_id": "c%d" % i,
                              "name": "exec_command", "arguments": "{}"})
                items.append({"type": "function_call_output", "call_id": "c%d" % i,
                              "output": "ok"})
            return {"model": "gpt-5.5", "stream": True, "input": items,
                    "tools": [{"type": "function", "name": "exec_command"}]}

        status, ctype, payload = self.request("POST", "/v1/responses", body(0))
        self.assertEqual((status, ctype), (200, "text/event-stream"))
        events = sse_events(payload)
        self.assertEqual(events[0][0], "response.created")
        self.assertEqual(events[-1][0], "response.completed")
        done = [d["item"] for e, d in events if e == "response.output_item.done"]
        self.assertEqual([i["type"] for i in done], ["message", "function_call"])
        self.assertEqual(json.loads(done[1]["arguments"])["cmd"], "cat inventory/config.py")
        usage = events[-1][1]["response"]["usage"]
        self.assertGreater(usage["input_tokens"], 0)
        self.assertGreater(usage["output_tokens"], 0)

        _, _, payload = self.request("POST", "/v1/responses", body(1))
        done = [d["item"] for e, d in sse_events(payload) if e == "response.output_item.done"]
        self.assertIn("apply_patch", json.loads(done[-1]["arguments"])["cmd"])
        _, _, payload = self.request("POST", "/v1/responses", dict(body(3), stream=False))
        response = json.loads(payload)
        self.assertEqual([i["type"] for i in response["output"]], ["message"])
        self.assertEqual([r["turn"] for r in self.logged()], [0, 1, 3])


if __name__ == "__main__":
    unittest.main()
