"""Scenario 8 (issue 13, item 7): what unread counts and badges, blocking and quiet hours cost
the fan-out and the send. None of them can be switched off by configuration (they are the
contract's behaviour, and a setting only for the benchmark would be wrong), so their cost is
measured directly: the app's own database step with and without that feature's queries,
interleaved repeat by repeat (variant order rotating) so machine noise hits all alike.

- Fan-out: `FanOutPolicy.candidates` + `badges` + `create_deliveries` + `mark_fanned_out`
  (the dispatcher's two transactions) for one message to N offline recipients × 2 devices.
  Policies: every feature; without badges (`with_badges=False`); without the block filter;
  without the preference filters (`push: false` and quiet hours are one query); none. The data
  makes every feature work without skipping anyone (every recipient has quiet hours set
  outside now, blocks somebody else, has unread history), so all variants create the same
  deliveries and differ only by the features' queries. Presence (Redis) and sending are left
  out: unchanged by these features, they would only dilute the ratio (so it is an upper bound
  of the throughput cost).
- Send: the app's `send_message` (seq claim moving the sender's read position, message, push
  job, clear-on-read check) against the same transaction without the read-state work (a claim
  that does not move the position, no clear-on-read). Blocks and quiet hours have no query on
  the send path (the contract keeps messages between blockers visible).

Ratios with ÷ without (time per step, i.e. the inverse throughput ratio), paired per repeat;
target ≤ 1.10 for all features together.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.auth import CurrentUser
from backend.app.config import sqlalchemy_url
from backend.app.db import create_engine, create_sessionmaker
from backend.app.messenger.messages.models import Message
from backend.app.messenger.messages.service import send_message
from backend.app.messenger.push import repository
from backend.app.messenger.push.fanout import FanOutPolicy, blocked_the_sender
from backend.app.messenger.push.outbox import enqueue_message_push
from backend.app.messenger.push.preference_rules import PreferenceRules
from backend.app.messenger.push.vocabulary import SkipReason
from bench.context import Bench
from bench.report import Figure
from bench.stack import create_conversation, create_devices, log

SCENARIO = "8 feature cost"
HISTORY = 20  # earlier messages per conversation, so unread counts are real
SENDS_PER_REPEAT = 100  # sends per variant and repeat (10 in smoke)
LEASE = 30.0


def policies() -> dict[str, FanOutPolicy]:
    """Every variant of the fan-out policy, the app's filters minus the feature left out."""
    preferences = PreferenceRules()
    return {
        "all features": FanOutPolicy(),
        "no badges": FanOutPolicy(with_badges=False),
        "no blocks": FanOutPolicy(
            {
                SkipReason.PUSH_DISABLED: preferences.push_disabled,
                SkipReason.QUIET_HOURS: preferences.quiet_hours,
            }
        ),
        "no preferences (push off, quiet hours)": FanOutPolicy(
            {SkipReason.BLOCKED: blocked_the_sender}
        ),
        "none": FanOutPolicy({}, with_badges=False),
    }


async def seed_features(bench: Bench, users: list[str]) -> None:
    """Quiet hours outside now and one block of somebody else, for every user."""
    start = (datetime.now(UTC) + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    end = (datetime.now(UTC) + timedelta(hours=3)).time().replace(second=0, microsecond=0)
    await bench.db.copy_records_to_table(
        "notification_preferences",
        records=[(u, start, end, "UTC") for u in users],
        columns=["user_id", "quiet_start", "quiet_end", "quiet_timezone"],
    )
    await bench.db.copy_records_to_table(
        "user_blocks",
        records=[(u, f"{u}-blocked") for u in users],
        columns=["blocker_id", "blocked_id"],
    )


async def seed_history(bench: Bench, conversation_id: str, sender: str) -> None:
    await bench.db.executemany(
        "INSERT INTO messages (id, conversation_id, sender_id, content, seq) "
        "VALUES ($1, $2, $3, 'x', $4)",
        [(uuid.uuid4(), uuid.UUID(conversation_id), sender, s) for s in range(1, HISTORY + 1)],
    )
    await bench.db.execute(
        "UPDATE conversations SET last_seq = $2 WHERE id = $1", uuid.UUID(conversation_id), HISTORY
    )


async def fan_out_step(
    bench: Bench, sessionmaker: async_sessionmaker[AsyncSession], policy: FanOutPolicy, **job: str
) -> float:
    """Seconds of the dispatcher's database step for one fresh message job (lease not timed)."""
    job_id = await bench.db.fetchval(
        "INSERT INTO push_jobs (kind, conversation_id, sender_id, title, body, data) "
        "VALUES ('message', $1, $2, 't', 'b', '{}') RETURNING id",
        uuid.UUID(job["conversation_id"]),
        job["sender"],
    )
    async with sessionmaker.begin() as session:
        claimed = await repository.claim_job(session, job_id=job_id, lease=LEASE)
    if claimed is None:
        raise RuntimeError(f"push job {job_id} could not be claimed")
    started = time.perf_counter()
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
    return time.perf_counter() - started


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
    session: AsyncSession, *, conversation_id: uuid.UUID, sender: CurrentUser, content: str
) -> None:
    """`send_message` minus the sender's read move and the clear-on-read check."""
    message_id = uuid.uuid4()
    claim = (
        await session.execute(
            _CLAIM_WITHOUT_READ,
            {"conversation_id": conversation_id, "sender_id": sender.id, "message_id": message_id},
        )
    ).one()
    row = {
        "id": message_id,
        "conversation_id": conversation_id,
        "sender_id": sender.id,
        "content": content,
        "client_msg_id": None,
        "seq": claim.last_seq,
    }
    message = (await session.scalars(_INSERT_MESSAGE, [row])).one()
    await enqueue_message_push(
        session,
        message=message,
        sender_name=sender.display_name,
        conversation_title=claim.title,
        include_content=True,
    )


SendStep = Callable[..., Awaitable[object]]


async def send_steps(
    sessionmaker: async_sessionmaker[AsyncSession],
    step: SendStep,
    senders: list[tuple[uuid.UUID, CurrentUser]],
    count: int,
    **extra: object,
) -> float:
    """Seconds per send, `count` sends one after another, the senders in turn."""
    started = time.perf_counter()
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
    return (time.perf_counter() - started) / count


async def run(bench: Bench) -> None:
    sizes = bench.sizes
    repeats = 3 * sizes.fanout_repeats
    sender = bench.users("cost-sender", 1)[0]
    recipients = bench.users("cost", sizes.fanout_recipients)
    await create_devices(bench.db, None, recipients, per_user=2)
    conversation_id = await create_conversation(
        bench.db, title="Cost", owner=sender, members=recipients
    )
    await seed_history(bench, conversation_id, sender)
    await seed_features(bench, recipients)
    # Send: ten senders, each in its own conversation of five with unread history.
    senders = []
    for index, user in enumerate(bench.users("cost-send", 10)):
        members = bench.users(f"cost-send-{index}", 4)
        await create_devices(bench.db, None, [user, *members], per_user=1)
        conversation = await create_conversation(
            bench.db, title=f"Cost {index}", owner=members[0], members=[user, *members[1:]]
        )
        await seed_history(bench, conversation, members[0])
        senders.append((uuid.UUID(conversation), CurrentUser(user, None, frozenset())))
    sends = 10 if bench.smoke else SENDS_PER_REPEAT
    log(f"feature cost: {len(recipients)} recipients × 2 devices, {repeats} repeats")

    engine = create_engine(sqlalchemy_url(bench.infra.database_url), pool_size=2)
    sessionmaker = create_sessionmaker(engine)
    variants = policies()
    fan_out: dict[str, list[float]] = {name: [] for name in variants}
    send: dict[str, list[float]] = {"with": [], "without": []}
    send_variants: dict[str, tuple[SendStep, dict[str, object]]] = {
        "with": (send_message, {"client_msg_id": None, "include_content": True}),
        "without": (send_without_read_state, {}),
    }
    try:
        for repeat in range(repeats + 1):  # round 0 warms up
            names = list(variants)
            names = names[repeat % len(names) :] + names[: repeat % len(names)]
            for name in names:
                elapsed = await fan_out_step(
                    bench,
                    sessionmaker,
                    variants[name],
                    conversation_id=conversation_id,
                    sender=sender,
                )
                if repeat:
                    fan_out[name].append(elapsed)
            for name in ("with", "without") if repeat % 2 else ("without", "with"):
                step, extra = send_variants[name]
                elapsed = await send_steps(sessionmaker, step, senders, sends, **extra)
                if repeat:
                    send[name].append(elapsed)
    finally:
        await engine.dispose()
    report(bench, fan_out, send, deliveries=2 * len(recipients), sends=sends)


def report(
    bench: Bench,
    fan_out: dict[str, list[float]],
    send: dict[str, list[float]],
    *,
    deliveries: int,
    sends: int,
) -> None:
    add = bench.results.add
    variant = f"fan-out DB step, {deliveries} deliveries"
    for name, times in fan_out.items():
        add(Figure(SCENARIO, f"{variant}, {name}", "step time", "ms", [t * 1000 for t in times]))
    full = fan_out["all features"]
    for name in ("no badges", "no blocks", "no preferences (push off, quiet hours)", "none"):
        ratio = [w / o for w, o in zip(full, fan_out[name], strict=True)]
        together = name == "none"
        feature = name.removeprefix("no ").split(" (")[0]
        add(
            Figure(
                SCENARIO,
                variant,
                "all features ÷ none (time, paired per repeat)"
                if together
                else f"cost of {feature}: all ÷ without it (time, paired)",
                "x",
                ratio,
                target="≤ 1.10" if together else None,
                met=statistics.median(ratio) <= 1.10 if together else None,
            )
        )
    send_variant = f"send transaction ({sends} sequential sends per repeat)"
    for name, times in send.items():
        label = "with read state" if name == "with" else "without read state"
        add(
            Figure(
                SCENARIO,
                f"{send_variant}, {label}",
                "time per send",
                "ms",
                [t * 1000 for t in times],
            )
        )
    ratio = [w / o for w, o in zip(send["with"], send["without"], strict=True)]
    add(
        Figure(
            SCENARIO,
            send_variant,
            "unread/badge work on the send: with ÷ without (time, paired)",
            "x",
            ratio,
            target="≤ 1.10",
            met=statistics.median(ratio) <= 1.10,
        )
    )
