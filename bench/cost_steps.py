"""The steps scenario 8 (`feature_cost.py`) measures, and its clock.

- The fan-out's database step: the dispatcher's two transactions for one message job.
- The send transaction: the app's `send_message` (one statement) moves the sender's read
  position in its seq claim (a reply's clear-on-read check runs later, at the push job's
  fan-out); `send_without_read_state` is the same function, its statement without the move.
- `CpuClock`: CPU seconds of this process plus its one PostgreSQL backend, the capacity a
  step costs (a shared machine stretches wall time, not CPU time).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.auth import CurrentUser
from backend.app.messenger.conversations.message_seq import claim_ctes
from backend.app.messenger.messages import send_statement
from backend.app.messenger.messages.send_statement import _SEND, USED_BEFORE
from backend.app.messenger.messages.service import send_message
from backend.app.messenger.push import repository
from backend.app.messenger.push.fanout import FanOutPolicy

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
    cost = Cost(time.perf_counter() - started, clock() - cpu)
    # Never sent: left pending they would pile up into a push backlog that every later step
    # (the send's clear-on-read check among them) would have to look past.
    await db.execute("DELETE FROM push_deliveries WHERE job_id = $1", job_id)
    return cost


# The app's send without its read-state work: `send_message` itself (the same Python, the
# same columns read back) with its one statement (messages/send_statement.py) minus the
# sender's read move. The claim's `previous` CTE no longer locks the sender's row for an
# exact old position and the `moved` CTE is gone; everything else is the app's statement.
# (The push job still records the range a reply passed: two expressions over rows already
# read.)
_MOVED = "), moved AS ("
CLAIM_CTES = claim_ctes(unless=USED_BEFORE)
if CLAIM_CTES.count(_MOVED) != 1 or "FOR UPDATE" not in CLAIM_CTES or CLAIM_CTES not in _SEND.text:
    raise ImportError("the send statement changed shape: update bench/cost_steps.py")
_CLAIM_WITHOUT_READ = CLAIM_CTES.split(_MOVED)[0].replace("FOR UPDATE", "") + ")"
_SEND_WITHOUT_READ = text(_SEND.text.replace(CLAIM_CTES, _CLAIM_WITHOUT_READ))


async def send_without_read_state(session: AsyncSession, **send: Any) -> object:
    """`send_message` running the statement above in place of the app's (the benchmark
    sends one at a time, so swapping the module's statement affects only this call)."""
    app_statement = send_statement._SEND
    send_statement._SEND = _SEND_WITHOUT_READ
    try:
        return await send_message(session, **send)
    finally:
        send_statement._SEND = app_statement


SendStep = Callable[..., Awaitable[object]]


# Another participant writes (not measured), so the sender's next send passes a message of
# someone else, as a reply does.
_OTHER_WRITES = """
    WITH bumped AS (
        UPDATE conversations SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq
    )
    INSERT INTO messages (id, conversation_id, sender_id, content, seq)
    SELECT $2, $1, $3, 'Feature cost: a reply.', last_seq FROM bumped
"""


@dataclass(frozen=True)
class Sender:
    conversation_id: uuid.UUID
    user: CurrentUser
    other: str  # another participant of the conversation


async def send_steps(
    db: asyncpg.Connection,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: CpuClock,
    step: SendStep,
    senders: list[Sender],
    count: int,
    **extra: object,
) -> dict[str, Cost]:
    """Per send, `count` sends one after another, the senders in turn; every other send
    follows a message of another participant ("reply": its push job then carries the range
    the sender passed), the others follow the sender's own ("plain", as in the load test).
    Only the sends are measured; the mean per send of each kind and of both ("mix")."""
    totals = {"plain": [0.0, 0.0], "reply": [0.0, 0.0]}  # wall, cpu
    for index in range(count):
        sender = senders[index % len(senders)]
        kind = "reply" if index % 2 else "plain"
        if kind == "reply":
            await db.execute(_OTHER_WRITES, sender.conversation_id, uuid.uuid4(), sender.other)
        cpu_before, started = clock(), time.perf_counter()
        async with sessionmaker.begin() as session:
            await step(
                session,
                conversation_id=sender.conversation_id,
                sender=sender.user,
                content="Feature cost: hello.",
                **extra,
            )
        totals[kind][0] += time.perf_counter() - started
        totals[kind][1] += clock() - cpu_before
    counts = {"plain": (count + 1) // 2, "reply": count // 2}
    costs = {k: Cost(w / max(1, counts[k]), c / max(1, counts[k])) for k, (w, c) in totals.items()}
    wall = sum(w for w, _ in totals.values()) / count
    costs["mix"] = Cost(wall, sum(c for _, c in totals.values()) / count)
    return costs
