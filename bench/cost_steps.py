"""The steps scenario 8 (`feature_cost.py`) measures, and its clock.

- The fan-out's database step: the dispatcher's two transactions for one message job.
- The send transaction: the app's `send_message` moves the sender's read position in its seq
  claim and checks for clear-on-read pushes; `send_without_read_state` is the same
  transaction without the check, and with or without the move.
- `CpuClock`: CPU seconds of this process plus its one PostgreSQL backend, the capacity a
  step costs (a shared machine stretches wall time, not CPU time).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.auth import CurrentUser
from backend.app.messenger.conversations.message_seq import claim_message_seq
from backend.app.messenger.messages.models import Message
from backend.app.messenger.push import repository
from backend.app.messenger.push.fanout import FanOutPolicy
from backend.app.messenger.push.outbox import enqueue_message_push

LEASE = 30.0


@dataclass(frozen=True)
class Cost:
    wall: float  # seconds
    cpu: float  # seconds of CPU: this process + its PostgreSQL backend


class CpuClock:
    """CPU seconds of this process (all threads) plus one PostgreSQL backend, read from
    /proc/<pid>/schedstat (nanoseconds; /proc/<pid>/stat counts 10 ms ticks, too coarse for
    a 50 ms step). A remote PostgreSQL is invisible: then this process alone."""

    def __init__(self, backend_pid: int) -> None:
        self.backend = Path(f"/proc/{backend_pid}/schedstat")
        self.sees_backend = self.backend.exists()

    def __call__(self) -> float:
        own = time.process_time()
        if not self.sees_backend:
            return own
        return own + int(self.backend.read_text().split()[0]) / 1e9


async def backend_pid(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def fan_out_step(
    db: asyncpg.Connection,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: CpuClock,
    policy: FanOutPolicy,
    *,
    conversation_id: str,
    sender: str,
) -> Cost:
    """The dispatcher's database step for one fresh message job (creating and leasing it is
    not measured): `candidates`, then `badges` + `create_deliveries` + `mark_fanned_out`."""
    job_id = await db.fetchval(
        "INSERT INTO push_jobs (kind, conversation_id, sender_id, title, body, data) "
        "VALUES ('message', $1, $2, 't', 'b', '{}') RETURNING id",
        uuid.UUID(conversation_id),
        sender,
    )
    async with sessionmaker.begin() as session:
        claimed = await repository.claim_job(session, job_id=job_id, lease=LEASE)
    if claimed is None:
        raise RuntimeError(f"push job {job_id} could not be claimed")
    cpu, started = clock(), time.perf_counter()
    async with sessionmaker.begin() as session:
        audience = await policy.candidates(session, claimed)
    async with sessionmaker.begin() as session:
        badges = await policy.badges(session, audience)
        await repository.create_deliveries(
            session,
            job_id=claimed.id,
            user_ids=audience.user_ids,
            lease=LEASE,
            owned=False,
            badges=badges,
        )
        await repository.mark_fanned_out(session, job_id=claimed.id)
    return Cost(time.perf_counter() - started, clock() - cpu)


# The send's seq claim without its read-state work: membership, next seq, title, members.
_CLAIM_WITHOUT_READ = text(
    """
    WITH member AS (
        SELECT 1 FROM conversation_participants
        WHERE conversation_id = :conversation_id AND user_id = :sender_id
    ), bumped AS (
        UPDATE conversations SET last_seq = last_seq + 1
        WHERE id = :conversation_id AND EXISTS (SELECT 1 FROM member)
        RETURNING title, last_seq
    )
    SELECT bumped.title, bumped.last_seq, ARRAY(
        SELECT user_id FROM conversation_participants
        WHERE conversation_id = :conversation_id ORDER BY user_id
    ) AS participant_ids
    FROM bumped
    """
)
_INSERT_MESSAGE = insert(Message).returning(Message)


async def send_without_read_state(
    session: AsyncSession,
    *,
    conversation_id: uuid.UUID,
    sender: CurrentUser,
    content: str,
    move_read: bool = False,
) -> None:
    """`send_message` minus the clear-on-read check, and minus the sender's read move unless
    `move_read` (then the claim is the app's own `claim_message_seq`)."""
    message_id = uuid.uuid4()
    if move_read:
        claimed = await claim_message_seq(
            session, conversation_id=conversation_id, sender_id=sender.id, message_id=message_id
        )
        seq, title = claimed.seq, claimed.title
    else:
        claim = (
            await session.execute(
                _CLAIM_WITHOUT_READ,
                {"conversation_id": conversation_id, "sender_id": sender.id},
            )
        ).one()
        seq, title = claim.last_seq, claim.title
    row = {
        "id": message_id,
        "conversation_id": conversation_id,
        "sender_id": sender.id,
        "content": content,
        "client_msg_id": None,
        "seq": seq,
    }
    message = (await session.scalars(_INSERT_MESSAGE, [row])).one()
    await enqueue_message_push(
        session,
        message=message,
        sender_name=sender.display_name,
        conversation_title=title,
        include_content=True,
    )


SendStep = Callable[..., Awaitable[object]]


async def send_steps(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: CpuClock,
    step: SendStep,
    senders: list[tuple[uuid.UUID, CurrentUser]],
    count: int,
    **extra: object,
) -> Cost:
    """Per send, `count` sends one after another, the senders in turn."""
    cpu, started = clock(), time.perf_counter()
    for index in range(count):
        conversation_id, sender = senders[index % len(senders)]
        async with sessionmaker.begin() as session:
            await step(
                session,
                conversation_id=conversation_id,
                sender=sender,
                content="Feature cost: hello.",
                **extra,
            )
    return Cost((time.perf_counter() - started) / count, (clock() - cpu) / count)
