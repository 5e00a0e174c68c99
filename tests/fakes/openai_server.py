"""A local OpenAI-compatible chat-completions server standing in for the model.

It speaks the real protocol over a socket (``POST /v1/chat/completions`` with a bearer key)
and plays both of Growbin's uses of the model on one base URL, told apart by the request:

- **classification** (the scan worker, ``growbin.vision.openai_classifier``): no ``stream``,
  a strict ``json_schema`` ``response_format`` and a JPEG data URL in the last message. The
  request is checked, and the answer is one JSON document (``answer``) that satisfies the
  schema the client sent.
- **chat** (``growbin.chat.service``): ``"stream": true``. The answer is ``text/event-stream``
  in chunked transfer encoding, one ``chat.completion.chunk`` per ``data:`` line at a fixed
  rate, then ``data: [DONE]``. The reply plays a compliant model: it answers from the first
  entry of the knowledge-base message it was given and cites that entry's ref, so what a test
  checks is what the service retrieved, sent and stored, not what the stand-in chose to say.

Anything else is a problem (recorded in ``problems``) and answered with HTTP 400.

Tests script it: latencies (``latency_seconds`` before a classification,
``first_token_delay_seconds`` and ``token_interval_seconds`` for a stream), a queue of
``faults`` served before normal answers (``"500"``, ``"429"``, ``"hang:<seconds>"`` — longer
than the client's timeout), ``fail_with_status`` for every request while set, and
``break_after_tokens`` to drop a stream mid-answer. It records every request body
(``requests``) and, per stream, whether the client read it to the end or hung up
(``exchanges``).

Run on its own (the benchmarks, the whole-platform Molecule scenario)::

    python -m tests.fakes.openai_server --host 127.0.0.1 --port 0 [--api-key KEY]

prints its base URL on the first line of stdout and serves until SIGTERM or SIGINT;
``GET /_fake/requests`` lists what it received, for a test in another process.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "sk-test-growbin"
KNOWLEDGE_HEADER = "KNOWLEDGE BASE"
COMPLETIONS_PATH = "/v1/chat/completions"
REQUESTS_PATH = "/_fake/requests"


def request_kind(body: dict[str, Any]) -> str:
    """``chat`` (a streamed answer), ``classification`` (a structured one) or ``unknown``."""
    if body.get("stream") is True:
        return "chat"
    if "response_format" in body:
        return "classification"
    return "unknown"


@dataclass
class Exchange:
    """One streamed chat request and how its answer went."""

    body: dict[str, Any]
    finished: threading.Event = field(default_factory=threading.Event)
    # The whole reply, of which ``tokens_sent`` pieces were streamed.
    text: str = ""
    completed: bool = False
    hung_up: bool = False
    tokens_sent: int = 0

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body["messages"]

    def knowledge(self) -> list[dict[str, Any]]:
        for message in self.messages:
            if message["role"] == "system" and message["content"].startswith(KNOWLEDGE_HEADER):
                return json.loads(message["content"].split("\n", 1)[1])
        raise AssertionError("no knowledge-base message in the prompt")

    def refs(self) -> list[str]:
        return [entry["ref"] for entry in self.knowledge()]


def grounded_reply(exchange: Exchange) -> str:
    entries = exchange.knowledge()
    if not entries:
        return "I do not know that from the knowledge base; please ask your district office."
    entry = entries[0]
    steps = " ".join(f"{n}. {step['en']}" for n, step in enumerate(entry["steps"], 1))
    return (
        f"{entry['name']['en']} goes out as {entry['category']['en']}. {steps} "
        f"Local district rules may differ. [{entry['ref']}]"
    )


def default_answer() -> dict[str, Any]:
    return {
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


def summary(body: dict[str, Any], exchange: Exchange | None) -> dict[str, Any]:
    """What ``GET /_fake/requests`` shows of a request (not the image it carried)."""
    kind = request_kind(body)
    item: dict[str, Any] = {"kind": kind, "model": body.get("model")}
    if kind == "classification":
        item["schema"] = body["response_format"].get("json_schema", {}).get("name")
    if exchange is not None:
        messages = exchange.messages
        item["question"] = messages[-1].get("content") if messages else None
        item["reply"] = exchange.text
        item["completed"] = exchange.completed
    return item


class FakeOpenAI:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        # Classification: the document answered, and the seconds before answering.
        self.answer: dict[str, Any] = default_answer()
        self.latency_seconds = 0.0
        # Chat: the text streamed, the seconds before the first chunk (the model
        # "thinking") and between chunks, and a token count after which the connection is
        # dropped without ending the stream.
        self.reply: Callable[[Exchange], str] = grounded_reply
        self.first_token_delay_seconds = 0.0
        self.token_interval_seconds = 0.0
        self.break_after_tokens: int | None = None
        # Both: faults served one per request before normal answers, and a status to answer
        # every request with while set (e.g. 503).
        self.faults: deque[str] = deque()
        self.fail_with_status: int | None = None
        # What was received: every request body, the chat streams, and what was wrong.
        self.requests: list[dict[str, Any]] = []
        self.exchanges: list[Exchange] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler())
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
        """Forget what was received and undo every script (not ``answer``)."""
        with self._lock:
            self.faults.clear()
            self.requests.clear()
            self.exchanges.clear()
            self.problems.clear()
        self.latency_seconds = 0.0
        self.first_token_delay_seconds = 0.0
        self.token_interval_seconds = 0.0
        self.break_after_tokens = None
        self.fail_with_status = None
        self.reply = grounded_reply

    def next_fault(self) -> str | None:
        with self._lock:
            return self.faults.popleft() if self.faults else None

    def _record(self, body: dict[str, Any]) -> Exchange | None:
        with self._lock:
            self.requests.append(body)
            if request_kind(body) != "chat":
                return None
            exchange = Exchange(body=body)
            self.exchanges.append(exchange)
            return exchange

    def _problem(self, problem: str) -> None:
        with self._lock:
            self.problems.append(problem)

    def _classification(self, body: dict[str, Any]) -> dict[str, Any]:
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

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _json(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str, kind: str) -> None:
                headers = {"Retry-After": "0"} if status == 429 else None
                self._json(status, {"error": {"message": message, "type": kind}}, headers)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path != REQUESTS_PATH:
                    self._error(404, "not found", "invalid")
                    return
                with fake._lock:
                    streams = {id(exchange.body): exchange for exchange in fake.exchanges}
                    received = [summary(body, streams.get(id(body))) for body in fake.requests]
                    problems = list(fake.problems)
                self._json(200, {"requests": received, "problems": problems})

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != COMPLETIONS_PATH:
                    self._error(404, "not found", "invalid")
                    return
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._error(401, "bad key", "auth")
                    return
                body = json.loads(raw)
                exchange = fake._record(body)
                try:
                    self._answer(body, exchange)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                    if exchange is not None:
                        exchange.hung_up = True
                finally:
                    if exchange is not None:
                        # A stream ends with its connection (no Content-Length to reuse it).
                        self.close_connection = True
                        exchange.finished.set()

            def _answer(self, body: dict[str, Any], exchange: Exchange | None) -> None:
                fault = fake.next_fault()
                if fault == "500":
                    self._error(500, "model crashed", "server")
                    return
                if fault == "429":
                    self._error(429, "slow down", "rate_limit")
                    return
                if fault is not None and fault.startswith("hang:"):
                    time.sleep(float(fault.split(":", 1)[1]))
                if fake.fail_with_status is not None:
                    self._error(fake.fail_with_status, "unavailable", "server")
                    return
                if exchange is not None:
                    self._chat(exchange)
                elif request_kind(body) == "classification":
                    self._classify(body)
                else:
                    fake._problem("neither a streamed chat nor a structured classification")
                    self._error(400, "bad request", "invalid")

            def _classify(self, body: dict[str, Any]) -> None:
                time.sleep(fake.latency_seconds)
                try:
                    payload = fake._classification(body)
                except (AssertionError, KeyError, TypeError, IndexError) as exc:
                    fake._problem(repr(exc))
                    self._error(400, "bad request", "invalid")
                    return
                self._json(200, payload)

            def _chat(self, exchange: Exchange) -> None:
                try:
                    text = fake.reply(exchange)
                except (AssertionError, KeyError, TypeError, IndexError, ValueError) as exc:
                    fake._problem(repr(exc))
                    self._error(400, "bad request", "invalid")
                    return
                exchange.text = text
                exchange.completed = self._stream(exchange, text)

            def _stream(self, exchange: Exchange, text: str) -> bool:
                """Stream ``text``; False if the stream was broken off on purpose."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                created = int(time.time())
                pieces = re.findall(r"\S+\s*", text)
                time.sleep(fake.first_token_delay_seconds)
                for index, piece in enumerate(pieces):
                    if index == fake.break_after_tokens:
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return False
                    delta: dict[str, Any] = {"content": piece}
                    if index == 0:
                        delta["role"] = "assistant"
                    self._event(exchange, created, delta, None)
                    exchange.tokens_sent += 1
                    time.sleep(fake.token_interval_seconds)
                self._event(exchange, created, {}, "stop")
                self._chunk(b"data: [DONE]\n\n")
                self._chunk(b"")
                return True

            def _event(
                self, exchange: Exchange, created: int, delta: dict[str, Any], finish: str | None
            ) -> None:
                chunk = {
                    "id": f"chatcmpl-{id(exchange):x}",
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": exchange.body.get("model", "fake"),
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
                self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())

        return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free one)")
    parser.add_argument("--api-key", default=API_KEY, help="bearer key the clients must send")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per classification")
    parser.add_argument(
        "--first-token-delay", type=float, default=0.0, help="seconds before a stream's first chunk"
    )
    parser.add_argument(
        "--token-interval", type=float, default=0.0, help="seconds between streamed chunks"
    )
    args = parser.parse_args(argv)
    server = FakeOpenAI(args.host, args.port, args.api_key)
    server.latency_seconds = args.latency
    server.first_token_delay_seconds = args.first_token_delay
    server.token_interval_seconds = args.token_interval
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    server.start()
    print(server.base_url, flush=True)
    try:
        stopping.wait()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
