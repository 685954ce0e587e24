"""Scenario 8 (issue 13, item 7): what unread counts and badges, blocking and quiet hours cost
the fan-out and the send (bench/README.md, scenario 8). None of them can be switched off by
configuration (contract behaviour; a setting only for the benchmark would be wrong), so the
app's own database steps run with and without each feature's queries (`cost_steps.py`),
interleaved repeat by repeat, on data where every feature does its work yet skips nobody
(unread history, quiet hours outside now, blocks of somebody else): the variants create the
same deliveries. Measured in CPU (client + its PostgreSQL backend) and wall time; the
targets (≤ 10 %) are on what the features add to a whole fan-out and a whole send
(`feature_cost_report.py`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from backend.app.auth import CurrentUser
from backend.app.config import sqlalchemy_url
from backend.app.db import create_engine, create_sessionmaker
from backend.app.messenger.messages.service import send_message
from backend.app.messenger.push.fanout import FanOutPolicy, blocked_the_sender
from backend.app.messenger.push.preference_rules import PreferenceRules
from backend.app.messenger.push.vocabulary import SkipReason
from bench.context import Bench
from bench.cost_steps import (
    Cost,
    CpuClock,
    Sender,
    SendStep,
    backend_pid,
    fan_out_step,
    send_steps,
    send_without_read_state,
)
from bench.feature_cost_report import report
from bench.stack import create_conversation, create_devices, log

HISTORY = 20  # earlier messages per conversation, so unread counts are real
SENDS_PER_REPEAT = 100  # sends per variant and repeat (10 in smoke)
# Fan-out steps per variant and repeat, the least CPU kept: on a shared machine a neighbour's
# burst inflates one step's CPU too (caches, shared cores); the best of three is the step's own.
BEST_OF = 3


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
        senders.append(
            Sender(uuid.UUID(conversation), CurrentUser(user, None, frozenset()), members[0])
        )
    sends = 10 if bench.smoke else SENDS_PER_REPEAT
    log(f"feature cost: {len(recipients)} recipients × 2 devices, {repeats} repeats")

    # One connection, used one step after another: its backend's CPU is the step's.
    engine = create_engine(sqlalchemy_url(bench.infra.database_url), pool_size=1)
    sessionmaker = create_sessionmaker(engine)
    variants = policies()
    fan_out: dict[str, list[Cost]] = {name: [] for name in variants}
    arguments = {"client_msg_id": None, "include_content": True}
    send_variants: dict[str, tuple[SendStep, dict[str, object]]] = {
        "with": (send_message, arguments),
        "without": (send_without_read_state, arguments),
    }
    # (variant, kind of send) -> per repeat
    send: dict[tuple[str, str], list[Cost]] = {}
    try:
        pid = await backend_pid(sessionmaker)
        clock = CpuClock(pid)
        for repeat in range(repeats + 1):  # round 0 warms up
            names = list(variants)
            names = names[repeat % len(names) :] + names[: repeat % len(names)]
            best: dict[str, Cost] = {}
            for _ in range(BEST_OF):
                for name in names:
                    cost = await fan_out_step(
                        bench.db,
                        sessionmaker,
                        clock,
                        variants[name],
                        conversation_id=conversation_id,
                        sender=sender,
                    )
                    if name not in best or cost.cpu < best[name].cpu:
                        best[name] = cost
            if repeat:
                for name, cost in best.items():
                    fan_out[name].append(cost)
            for name in ("with", "without") if repeat % 2 else ("without", "with"):
                step, extra = send_variants[name]
                costs = await send_steps(
                    bench.db, sessionmaker, clock, step, senders, sends, **extra
                )
                for kind, cost in costs.items():
                    if repeat:
                        send.setdefault((name, kind), []).append(cost)
        if await backend_pid(sessionmaker) != pid:
            raise RuntimeError("the measuring connection was replaced: its CPU is not the steps'")
    finally:
        await engine.dispose()
    whose = "client + its PostgreSQL backend" if clock.sees_backend else "client only"
    report(bench, fan_out, send, deliveries=2 * len(recipients), sends=sends, whose=whose)
