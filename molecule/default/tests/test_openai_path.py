"""The model path on the running platform: scans and chat through an OpenAI-compatible API.

The local platform has no model key, so everything else in this scenario sees the offline
classifier and answerer. Here the OpenAI stand-in of the application tests
(tests/fakes/openai_server.py) runs on this machine at the gateway of the platform's Docker
network, so the nodes' requests never leave the project's own network; the app stage is
re-run with ``growbin_llm_api_key``/``growbin_llm_base_url`` pointing at it, and a scan and a
chat question go through the edge. A finalizer always re-runs the app stage without those
variables, so the platform is offline again for whatever runs next.
"""

from __future__ import annotations

import secrets
import selectors
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from growbin_client import REPO, Platform, User, photo_of_a_cup
from growbin_nodes import run_site

# The host's address on the `growbin` Docker network (inventories/local, growbin_local_subnet).
GATEWAY = "172.29.77.1"
SERVER_START_SECONDS = 30
# The nodes whose settings decide the two model paths.
MODEL_NODES = ("worker-ai", "api-chat-llm")
# What the stand-in answers for any photo: a clear PET bottle. The offline model calls the
# cup of growbin_client.photo_of_a_cup ceramic, so the category tells the two paths apart.
MODEL_CATEGORY = "clear-pet"


@dataclass
class ModelServer:
    process: subprocess.Popen[str]
    base_url: str
    api_key: str

    def received(self) -> dict[str, Any]:
        """What the stand-in was sent so far: ``requests`` (summaries) and ``problems``."""
        root = self.base_url.removesuffix("/v1")
        response = httpx.get(f"{root}/_fake/requests", timeout=10)
        response.raise_for_status()
        return response.json()

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [request for request in self.received()["requests"] if request["kind"] == kind]


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def has_model_key(node: str) -> bool:
    """Whether the node's settings file names a model key (never prints the file)."""
    found = subprocess.run(
        [
            "docker",
            "exec",
            f"growbin-{node}",
            "grep",
            "-q",
            "^GROWBIN_LLM__API_KEY=",
            "/etc/growbin/growbin.env",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert found.returncode in (0, 1), found.stderr
    return found.returncode == 0


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    """The stand-in as its own process on the gateway address, with a random key."""
    api_key = f"sk-e2e-{secrets.token_urlsafe(24)}"
    log = tmp_path_factory.mktemp("model-server") / "stderr.log"
    errors = log.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.openai_server",
            "--host",
            GATEWAY,
            "--port",
            "0",
            "--api-key",
            api_key,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(SERVER_START_SECONDS)
        base_url = process.stdout.readline().strip() if ready else ""
        if not base_url.startswith("http://"):
            stop(process)
            pytest.fail(f"the model stand-in did not start: {log.read_text()[-2000:]}")
        yield ModelServer(process, base_url, api_key)
    finally:
        stop(process)
        errors.close()


@pytest.fixture(scope="module")
def model_platform(
    request: pytest.FixtureRequest,
    platform: Platform,
    model_server: ModelServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> User:
    """The platform with its LLM settings on the stand-in; offline again afterwards."""
    logs = tmp_path_factory.mktemp("openai-path")
    watcher = platform.new_user()

    def restore_offline() -> None:
        run_site(logs / "restore.log", "--tags", "app")
        watcher.wait_until_serving()
        assert not any(has_model_key(node) for node in MODEL_NODES), "model key left behind"

    # Registered before anything changes, so a failure half-way still restores.
    request.addfinalizer(restore_offline)
    run_site(
        logs / "configure.log",
        "--tags",
        "app",
        growbin_llm_api_key=model_server.api_key,
        growbin_llm_base_url=model_server.base_url,
    )
    assert all(has_model_key(node) for node in MODEL_NODES)
    watcher.wait_until_serving()
    return watcher


def test_a_scan_is_classified_by_the_model(
    model_platform: User, platform: Platform, model_server: ModelServer
) -> None:
    user = platform.new_user()
    before = len(model_server.of_kind("classification"))
    accepted = user.upload_photo(photo_of_a_cup())
    assert accepted.status_code == 202, accepted.text
    scan_id = accepted.json()["id"]
    progress = user.follow_scan(scan_id)
    assert progress.names[-1] == "completed", progress.names

    scan = user.wait_for_scan(scan_id)
    assert scan["status"] == "completed", scan
    classified = model_server.of_kind("classification")[before:]
    assert classified, "the worker did not call the model"
    model = classified[-1]["model"]
    result = scan["result"]
    assert result["classifier"] == f"openai:{model}", result
    assert result["category"]["slug"] == MODEL_CATEGORY, result
    assert result["confidence"] == pytest.approx(0.93)
    assert progress.events[-1].data["result"] == result
    assert model_server.received()["problems"] == []


def test_a_chat_answer_streams_from_the_model(
    model_platform: User, platform: Platform, model_server: ModelServer
) -> None:
    user = platform.new_user()
    created = user.start_conversation("model path")
    assert created.status_code == 201, created.text
    conversation_id = created.json()["id"]
    question = f"How do I put out a clear PET water bottle? ({secrets.token_hex(4)})"

    answer = user.ask(conversation_id, question)
    names = answer.names
    assert names[0] == "start" and names[-1] == "done", names
    assert set(names[1:-1]) == {"token"} and len(names) - 2 > 1, names
    start, done = answer.events[0].data, answer.events[-1].data
    assert start["answerer"] == "model" and done["answerer"] == "model", (start, done)
    assert done["status"] == "complete", done
    text = "".join(event.data["text"] for event in answer.events[1:-1])

    (asked,) = [r for r in model_server.of_kind("chat") if r["question"] == question]
    assert asked["completed"], asked
    # What the user read is what the stand-in streamed, and what the conversation keeps.
    assert text == asked["reply"] and text.strip()
    messages = user.messages(conversation_id)
    assert messages.status_code == 200, messages.text
    stored = {m["id"]: m for m in messages.json()["items"]}[start["message_id"]]
    assert stored["status"] == "complete" and stored["content"] == text
    assert model_server.received()["problems"] == []
