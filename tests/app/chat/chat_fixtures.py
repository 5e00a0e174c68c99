"""Fixtures of the chat tests (imported by the test modules, like recycling_fixtures: a
conftest.py here would shadow tests/app/conftest.py, which they import helpers from).

The chat and auth domains run under a real uvicorn server on a loopback socket, in the test
session's event loop (so a test can also look at the server's asyncio tasks). The model is
tests.fakes.openai_server.FakeOpenAI; ``model_answers`` / ``offline_answers`` switch the
service between it and the offline answerer by changing the one settings object.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from growbin.auth.service import issue_access_token
from growbin.core.app import create_app, load_domain
from growbin.core.llm import get_async_llm_client
from growbin.core.settings import get_settings
from growbin.recycling.seed import seed
from pydantic import SecretStr

from tests.fakes.openai_server import API_KEY, FakeOpenAI


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session", name="fake_llm")
def fake_llm_fixture() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="session", name="knowledge_base")
async def knowledge_base_fixture(migrated_databases: list[str]) -> str:
    # The same loader `growbin seed recycling` runs; a no-op when the catalog is loaded.
    return await seed()


@pytest.fixture(scope="session", name="chat_server")
async def chat_server_fixture(knowledge_base: str) -> AsyncIterator[str]:
    application = create_app([load_domain("chat")], service="chat")
    port = _free_port()
    config = uvicorn.Config(
        application, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        if serving.done():
            serving.result()
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(serving, 15)


def use_model(base_url: str | None) -> None:
    settings = get_settings().llm
    settings.api_key = SecretStr(API_KEY) if base_url else None
    settings.base_url = base_url
    settings.timeout_seconds = 10
    get_async_llm_client.cache_clear()


@pytest.fixture(name="model_answers")
def model_answers_fixture(fake_llm: FakeOpenAI) -> Iterator[FakeOpenAI]:
    fake_llm.reset()
    use_model(fake_llm.base_url)
    yield fake_llm
    use_model(None)
    assert not fake_llm.problems, fake_llm.problems


@pytest.fixture(name="offline_answers")
def offline_answers_fixture() -> None:
    use_model(None)


@pytest.fixture(name="http")
async def http_fixture(chat_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=chat_server, timeout=20) as client:
        yield client


@dataclass
class StreamedAnswer:
    status_code: int
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    body: dict[str, Any] | None = None

    def of(self, name: str) -> list[dict[str, Any]]:
        return [data for event, data in self.events if event == name]

    @property
    def start(self) -> dict[str, Any]:
        return self.of("start")[0]

    @property
    def done(self) -> dict[str, Any]:
        (done,) = self.of("done")
        return done

    @property
    def text(self) -> str:
        return "".join(data["text"] for data in self.of("token"))


async def read_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Parse a text/event-stream body into (event, data) pairs as they arrive."""
    event, data = "message", []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


class Chatter:
    """One signed-up user talking to the chat API."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.user_id = uuid.uuid4()
        # A real access token, signed the way the auth service signs them (no password
        # hashing per test user: chat only verifies the token).
        token, _ = issue_access_token(self.user_id, uuid.uuid4())
        self.headers = {"Authorization": f"Bearer {token}"}

    async def new_conversation(self, title: str | None = None) -> str:
        response = await self.http.post(
            "/api/v1/chat/conversations",
            json={"title": title} if title else {},
            headers=self.headers,
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    async def ask(
        self, conversation_id: str, content: str, scan_id: str | None = None
    ) -> StreamedAnswer:
        body: dict[str, Any] = {"content": content}
        if scan_id:
            body["scan_id"] = scan_id
        async with self.http.stream(
            "POST",
            f"/api/v1/chat/conversations/{conversation_id}/messages",
            json=body,
            headers=self.headers,
        ) as response:
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                answer = StreamedAnswer(response.status_code)
                async for pair in read_events(response):
                    answer.events.append(pair)
                return answer
            await response.aread()
            return StreamedAnswer(response.status_code, body=response.json())

    async def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        response = await self.http.get(
            f"/api/v1/chat/conversations/{conversation_id}/messages", headers=self.headers
        )
        assert response.status_code == 200, response.text
        return response.json()["items"]


@pytest.fixture(name="new_chatter")
def new_chatter_fixture(http: httpx.AsyncClient):
    async def factory() -> Chatter:
        return Chatter(http)

    return factory
