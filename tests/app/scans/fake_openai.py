"""A local OpenAI-compatible chat-completions server standing in for OpenAI in tests.

It speaks the real protocol over a loopback socket (``POST /v1/chat/completions`` with a
bearer key), checks that requests carry an image and a strict JSON schema, and answers with
a JSON document that satisfies that schema. Tests script it: a fixed latency, and a queue of
faults (HTTP 500, 429, a hang longer than the client's timeout) served before normal answers.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "sk-test-growbin"


class FakeOpenAI:
    def __init__(self) -> None:
        self.answer: dict[str, Any] = {
            "category": "clear-pet",
            "item": "water-bottle",
            "item_guess": "a clear plastic water bottle",
            "confidence": 0.93,
            "candidates": [
                {"category": "clear-pet", "confidence": 0.93},
                {"category": "plastic", "confidence": 0.05},
            ],
            "undecided_reasons": [],
        }
        self.latency_seconds = 0.0
        self.faults: deque[str] = deque()
        self.requests: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self.requests.clear()
            self.problems.clear()
            self.latency_seconds = 0.0

    def next_fault(self) -> str | None:
        with self._lock:
            return self.faults.popleft() if self.faults else None

    def _check(self, body: dict[str, Any]) -> dict[str, Any]:
        schema = body["response_format"]["json_schema"]
        assert schema["strict"] is True
        properties = schema["schema"]["properties"]
        content = body["messages"][-1]["content"]
        images = [part for part in content if part.get("type") == "image_url"]
        assert images and images[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
        # The answer must satisfy the schema the client sent.
        assert self.answer["category"] in properties["category"]["enum"], self.answer
        assert self.answer["item"] in properties["item"]["enum"], self.answer
        return {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {
                        "role": "assistant",
                        "content": json.dumps(self.answer),
                        "refusal": None,
                    },
                }
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def _send(self, status: int, payload: dict[str, Any], headers: dict | None = None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found", "type": "invalid"}})
                    return
                if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                    self._send(401, {"error": {"message": "bad key", "type": "auth"}})
                    return
                body = json.loads(raw)
                with fake._lock:
                    fake.requests.append(body)
                fault = fake.next_fault()
                if fault == "500":
                    self._send(500, {"error": {"message": "model crashed", "type": "server"}})
                    return
                if fault == "429":
                    self._send(
                        429,
                        {"error": {"message": "slow down", "type": "rate_limit"}},
                        {"Retry-After": "0"},
                    )
                    return
                if fault is not None and fault.startswith("hang:"):
                    time.sleep(float(fault.split(":", 1)[1]))
                time.sleep(fake.latency_seconds)
                try:
                    payload = fake._check(body)
                except (AssertionError, KeyError, TypeError, IndexError) as exc:
                    fake.problems.append(repr(exc))
                    self._send(400, {"error": {"message": "bad request", "type": "invalid"}})
                    return
                try:
                    self._send(200, payload)
                except (BrokenPipeError, ConnectionResetError):
                    return

        return Handler


def main() -> None:
    """Run the stand-in on its own (the scan benchmark uses it with a fixed latency)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per answer")
    args = parser.parse_args()
    server = FakeOpenAI()
    server.latency_seconds = args.latency
    server.start()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
