"""How long the service's transactions hold locks, sampled from `pg_stat_activity`.

A separate connection samples every ~50 ms the transactions of the benchmark's database,
except its own and the benchmark's, that are running or `idle in transaction` and hold a
lock other than their own virtual transaction id (a relation they read or wrote, a row, a
transaction id): how long such a transaction has been open bounds how long its statements
kept others waiting. A figure is therefore at most one interval short. Writing transactions
(with a transaction id) are also reported apart: their row locks are what others queue on.
The connection pool's pre-ping (`BEGIN; ;` then ROLLBACK) holds no such lock.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import asyncpg

from bench.stack import connect_db

_SAMPLE = """
SELECT pid, backend_xid IS NOT NULL AS wrote, state,
       extract(epoch FROM clock_timestamp() - xact_start) AS age, left(query, 160) AS query
FROM pg_stat_activity
WHERE datname = current_database() AND xact_start IS NOT NULL
  AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')
  AND pid <> ALL($1::int[])
  AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = pg_stat_activity.pid AND l.granted
              AND l.locktype <> 'virtualxid')
"""


@dataclass
class Longest:
    seconds: float = 0.0
    query: str = ""


@dataclass
class LockSampler:
    """Longest lock-holding transaction seen (any, and those that wrote) between start and stop."""

    database_url: str
    exclude_pids: list[int]
    interval: float = 0.05
    any: Longest = field(default_factory=Longest)
    writing: Longest = field(default_factory=Longest)
    samples: int = 0
    _task: asyncio.Task[None] | None = None
    _db: asyncpg.Connection | None = None

    async def start(self) -> LockSampler:
        self._db = await connect_db(self.database_url)
        pid = self._db.get_server_pid()
        self._task = asyncio.create_task(self._run([*self.exclude_pids, pid]))
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._db is not None:
            await self._db.close()

    async def _run(self, exclude: list[int]) -> None:
        assert self._db is not None
        while True:
            for row in await self._db.fetch(_SAMPLE, exclude):
                age = float(row["age"])
                if age > self.any.seconds:
                    self.any = Longest(age, f"[{row['state']}] {row['query']}")
                if row["wrote"] and age > self.writing.seconds:
                    self.writing = Longest(age, f"[{row['state']}] {row['query']}")
            self.samples += 1
            await asyncio.sleep(self.interval)
