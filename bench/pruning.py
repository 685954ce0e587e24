"""Scenario 4: `prune_pass` over 1,000,000 device rows, 30 % of them idle.

Setup (not measured): one INSERT ... SELECT generate_series writes the rows, providers
mixed, every tenth row in three idle (last registration 120 days ago, never pushed),
the rest registered yesterday; then ANALYZE, as autovacuum would have by then.
Measured: the app's own `prune_pass` (idle 90 days, the service's batch size) on the
app's engine, every statement timed with SQLAlchemy cursor events.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from backend.app.config import Settings
from backend.app.db import create_engine, create_sessionmaker
from backend.app.messenger.pruning import prune_pass
from bench.context import Bench
from bench.report import Figure
from bench.stack import log

SCENARIO = "4 pruning"

_GENERATE = """
INSERT INTO device_tokens (user_id, token, token_hash, web_push_p256dh, web_push_auth,
                           platform, provider, device_name, created_at, updated_at)
SELECT 'prune-' || (g / 2),
       tok,
       sha256(convert_to(tok, 'UTF8')),
       CASE WHEN g % 3 = 2 THEN 'BPlaceholderKey' END,
       CASE WHEN g % 3 = 2 THEN 'placeholder' END,
       (ARRAY['android', 'ios', 'web'])[g % 3 + 1],
       (ARRAY['fcm', 'apns', 'web_push'])[g % 3 + 1],
       'bench',
       stamp, stamp
FROM (
    SELECT g, 'prune-tok-' || g AS tok,
           CASE WHEN g % 100 < $2 THEN now() - interval '120 days'
                ELSE now() - interval '1 day' END AS stamp
    FROM generate_series(1, $1) AS g
) AS rows
"""


class StatementTimer:
    """Wall time of every statement run through an engine (before/after_cursor_execute)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine.sync_engine
        self.timings: list[tuple[float, str]] = []

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        started = conn.info["bench_started"].pop()
        self.timings.append((time.perf_counter() - started, " ".join(statement.split())))

    def _begin(self, session, transaction, connection) -> None:  # type: ignore[no-untyped-def]
        session.info["bench_begun"] = time.perf_counter()

    def _commit(self, session) -> None:  # type: ignore[no-untyped-def]
        begun = session.info.pop("bench_begun", None)
        if begun is not None:
            self.transactions.append(time.perf_counter() - begun)

    def __enter__(self) -> StatementTimer:
        self.transactions: list[float] = []  # begin → commit done (statements + COMMIT)
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        event.listen(Session, "after_begin", self._begin)
        event.listen(Session, "after_commit", self._commit)
        return self

    def __exit__(self, *exc_info: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)
        event.remove(Session, "after_begin", self._begin)
        event.remove(Session, "after_commit", self._commit)


async def run(bench: Bench) -> None:
    sizes = bench.sizes
    rows = sizes.prune_rows
    idle_percent = round(sizes.prune_idle_share * 100)
    expected = sum(1 for g in range(1, rows + 1) if g % 100 < idle_percent)
    log(f"pruning: generating {rows:,} device rows ({idle_percent} % idle)")
    started = time.perf_counter()
    await bench.db.execute(_GENERATE, rows, idle_percent, timeout=1800)
    await bench.db.execute("ANALYZE device_tokens", timeout=600)
    log(f"pruning: setup took {time.perf_counter() - started:.1f} s")

    settings = Settings(_env_file=None, database_url=bench.infra.database_url)  # type: ignore[call-arg]
    engine = create_engine(settings.database_url, pool_size=2)
    try:
        sessionmaker = create_sessionmaker(engine)
        async with engine.connect():  # open the pool's connection before the clock starts
            pass
        with StatementTimer(engine) as timer:
            started = time.perf_counter()
            removed = await prune_pass(
                sessionmaker,
                idle_days=settings.device_idle_days,
                inactive_days=settings.inactive_device_retention_days,
                batch_size=settings.prune_batch_size,
            )
            elapsed = time.perf_counter() - started
    finally:
        await engine.dispose()
    if removed != expected:
        raise RuntimeError(f"prune_pass removed {removed:,} rows, expected {expected:,}")
    longest, statement = max(timer.timings)
    log(
        f"pruning: {removed:,} rows in {elapsed:.2f} s, {len(timer.timings)} statements, "
        f"longest {longest * 1000:.0f} ms: {statement[:160]}"
    )
    variant = f"{rows:,} rows, {idle_percent} % idle"
    add = bench.results.add
    add(Figure(SCENARIO, variant, "full prune_pass", "s", [elapsed]))
    add(
        Figure(
            SCENARIO,
            variant,
            f"rows deleted per second ({removed:,} deleted)",
            "/s",
            [removed / elapsed],
        )
    )
    add(
        Figure(
            SCENARIO,
            variant,
            f"longest single statement (of {len(timer.timings)}, batch {settings.prune_batch_size:,})",
            "ms",
            [longest * 1000],
            target="< 1,000 ms",
            met=longest < 1.0,
            note=f"longest statement: {statement[:200]}",
        )
    )
    add(
        Figure(
            SCENARIO,
            variant,
            f"longest transaction, statement + COMMIT (of {len(timer.transactions)})",
            "ms",
            [max(timer.transactions) * 1000],
        )
    )
    by_kind: dict[str, list[float]] = {}
    for seconds, text in timer.timings:
        by_kind.setdefault(text.split()[0].upper(), []).append(seconds)
    bench.results.setup["pruning_statements"] = {
        kind: {"count": len(v), "total_s": round(sum(v), 3), "max_ms": round(max(v) * 1000, 1)}
        for kind, v in by_kind.items()
    }
