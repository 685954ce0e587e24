"""The read-state migration numbers existing messages and starts every member caught up."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from alembic.script import ScriptDirectory

from backend.app.schema_migrations import run_migrations
from backend.devtools import infra as test_infra
from backend.tests.test_operations import alembic_config

READ_STATE_REVISION = "0006"


async def _seed(url: str) -> tuple[uuid.UUID, uuid.UUID, list[uuid.UUID]]:
    busy, empty = uuid.uuid4(), uuid.uuid4()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # Inserted out of time order: numbering follows created_at, not insertion.
    messages = [uuid.uuid4() for _ in range(3)]
    connection = await asyncpg.connect(url)
    try:
        for conversation in (busy, empty):
            await connection.execute(
                "INSERT INTO conversations (id, created_by) VALUES ($1, 'alice')", conversation
            )
            await connection.executemany(
                "INSERT INTO conversation_participants (conversation_id, user_id) VALUES ($1, $2)",
                [(conversation, "alice"), (conversation, "bob")],
            )
        for index in (2, 0, 1):
            await connection.execute(
                "INSERT INTO messages (id, conversation_id, sender_id, content, created_at)"
                " VALUES ($1, $2, 'alice', 'hi', $3)",
                messages[index],
                busy,
                start + timedelta(minutes=index),
            )
    finally:
        await connection.close()
    return busy, empty, messages


async def _state(url: str) -> tuple[dict, dict, set]:
    connection = await asyncpg.connect(url)
    try:
        seqs = {r["id"]: r["seq"] for r in await connection.fetch("SELECT id, seq FROM messages")}
        last = {
            r["id"]: r["last_seq"]
            for r in await connection.fetch("SELECT id, last_seq FROM conversations")
        }
        positions = {
            (r["conversation_id"], r["user_id"], r["last_read_seq"], r["last_read_message_id"])
            for r in await connection.fetch("SELECT * FROM conversation_participants")
        }
    finally:
        await connection.close()
    return seqs, last, positions


def test_migration_backfills_seqs_and_read_positions(
    infrastructure: test_infra.TestInfrastructure,
) -> None:
    name = test_infra.create_database(infrastructure, prefix="messenger_read_state")
    url = infrastructure.database_url(name)
    try:
        script = ScriptDirectory.from_config(alembic_config(url))
        previous = script.get_revision(READ_STATE_REVISION).down_revision
        run_migrations(url, str(previous))
        busy, empty, messages = asyncio.run(_seed(url))

        run_migrations(url, READ_STATE_REVISION)
        seqs, last, positions = asyncio.run(_state(url))

        assert [seqs[m] for m in messages] == [1, 2, 3]
        assert last == {busy: 3, empty: 0}
        assert positions == {
            (busy, "alice", 3, messages[2]),
            (busy, "bob", 3, messages[2]),
            (empty, "alice", 0, None),
            (empty, "bob", 0, None),
        }
    finally:
        test_infra.drop_database(infrastructure, name)
