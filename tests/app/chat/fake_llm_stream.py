"""A local OpenAI-compatible chat-completions server that streams, for the chat tests.

It speaks the real streaming protocol over a loopback socket: ``POST /v1/chat/completions``
with a bearer key and ``"stream": true`` is answered with ``text/event-stream`` in chunked
transfer encoding, one ``chat.completion.chunk`` per ``data:`` line at a fixed rate, then
``data: [DONE]``. It records every request body (the prompts the service sent) and whether
the client read each answer to the end or hung up first.

The reply plays a compliant model: it answers from the first entry of the knowledge-base
message it was given and cites that entry's ref, so what the tests check is what the service
retrieved, sent and stored, not what the stand-in chose to say.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "sk-test-growbin-chat"
KNOWLEDGE_HEADER = "KNOWLEDGE BASE"


@dataclass
class Exchange:
    body: dict[str, Any]
    finished: threading.Event = field(default_factory=threading.Event)
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


class FakeStreamingLLM:
    def __init__(self, token_interval_seconds: float = 0.0) -> None:
        self.token_interval_seconds = token_interval_seconds
        # Seconds before the first chunk (the model "thinking").
        self.first_token_delay_seconds = 0.0
        # Status to answer the next requests with instead of a stream (e.g. 503).
        self.fail_with_status: int | None = None
        # Drop the connection after this many tokens, without ending the stream.
        self.break_after_tokens: int | None = None
        self.reply = grounded_reply
        self.exchanges: list[Exchange] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeStreamingLLM:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.exchanges.clear()
            self.problems.clear()
        self.token_interval_seconds = 0.0
        self.first_token_delay_seconds = 0.0
        self.fail_with_status = None
        self.break_after_tokens = None
        self.reply = grounded_reply

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                if self.path != "/v1/chat/completions":
                    self._json(404, {"error": {"message": "not found"}})
                    return
                if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                    self._json(401, {"error": {"message": "bad key", "type": "auth"}})
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                exchange = Exchange(body=body)
                fake._record(exchange)
                if body.get("stream") is not True:
                    fake.problems.append("request without stream=true")
                if fake.fail_with_status is not None:
                    self._json(fake.fail_with_status, {"error": {"message": "unavailable"}})
                    exchange.finished.set()
                    return
                try:
                    exchange.completed = self._stream(exchange, fake.reply(exchange))
                except (BrokenPipeError, ConnectionResetError):
                    exchange.hung_up = True
                finally:
                    exchange.finished.set()
                self.close_connection = True

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
                self, exchange: Exchange, created: int, delta: dict, finish: str | None
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
