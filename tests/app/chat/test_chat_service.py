"""The chat service process: its app, its readiness checks, its migration."""

from __future__ import annotations

import asyncio

from chat_fixtures import chat_server_fixture, http_fixture, knowledge_base_fixture  # noqa: F401
from growbin.core import migrations


def test_chat_service_mounts_only_chat() -> None:
    from growbin.services import chat

    assert list(chat.app.state.domains) == ["chat"]
    paths = chat.app.openapi()["paths"]
    send = paths["/api/v1/chat/conversations/{conversation_id}/messages"]["post"]
    assert "text/event-stream" in send["responses"]["200"]["content"]


async def test_ready_checks_the_databases_answers_read(http) -> None:
    response = await http.get("/ready")

    assert response.status_code == 200, response.text
    # Answers read the knowledge base and the user's scans besides the chat database.
    assert sorted(response.json()["checks"]) == [
        "database:chat",
        "database:recycling",
        "database:scans",
        "redis",
    ]


async def test_chat_migration_is_reversible(migrated_databases) -> None:
    await asyncio.to_thread(migrations.downgrade, "chat", "base")
    await asyncio.to_thread(migrations.upgrade, "chat")
