"""What every scenario gets: the stack, the sizes of this mode, and where figures go."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bench.report import Results
from bench.stack import Emulators, Infrastructure, log


@dataclass(frozen=True)
class Sizes:
    fanout_recipients: int
    fanout_latencies_ms: tuple[float, ...]
    fanout_repeats: int
    naive_recipients: int
    load_clients: int
    load_seconds: float
    load_warmup_seconds: float
    load_members: int
    load_push_latency_ms: float
    presence_ids: int
    presence_online_share: float
    presence_calls: int
    prune_rows: int
    prune_idle_share: float
    memory_recipients: tuple[int, int]
    memory_repeats: int
    memory_latency_ms: float
    digest_users: int
    broadcast_users: int
    large_fanout_recipients: int
    large_fanout_reference: int
    large_fanout_reference_repeats: int


FULL = Sizes(
    fanout_recipients=1000,
    fanout_latencies_ms=(0.0, 50.0),
    fanout_repeats=5,
    naive_recipients=100,
    load_clients=100,
    load_seconds=20.0,
    load_warmup_seconds=2.0,
    load_members=50,
    load_push_latency_ms=50.0,
    presence_ids=10_000,
    presence_online_share=0.1,
    presence_calls=20,
    prune_rows=1_000_000,
    prune_idle_share=0.3,
    memory_recipients=(1000, 10_000),
    memory_repeats=3,
    memory_latency_ms=0.0,
    digest_users=100_000,
    broadcast_users=100_000,
    large_fanout_recipients=100_000,
    large_fanout_reference=1000,
    large_fanout_reference_repeats=3,
)

SMOKE = Sizes(
    fanout_recipients=30,
    fanout_latencies_ms=(0.0, 50.0),
    fanout_repeats=1,
    naive_recipients=10,
    load_clients=5,
    load_seconds=2.0,
    load_warmup_seconds=0.3,
    load_members=5,
    load_push_latency_ms=50.0,
    presence_ids=1000,
    presence_online_share=0.1,
    presence_calls=5,
    prune_rows=10_000,
    prune_idle_share=0.3,
    memory_recipients=(100, 300),
    memory_repeats=1,
    memory_latency_ms=0.0,
    digest_users=500,
    broadcast_users=1000,
    large_fanout_recipients=2000,
    large_fanout_reference=1000,
    large_fanout_reference_repeats=1,
)


@dataclass
class Bench:
    infra: Infrastructure
    emulators: Emulators
    workdir: Path
    db: asyncpg.Connection
    sizes: Sizes
    smoke: bool
    results: Results
    profile_dir: Path | None = None
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    redis_keys: list[str] = field(default_factory=list)  # deleted at the end

    def users(self, scenario: str, count: int, start: int = 0) -> list[str]:
        """User ids unique to this run (Redis is shared: nothing here may collide)."""
        return [f"bench-{self.run_id}-{scenario}-{i}" for i in range(start, start + count)]

    def profile_prefix(self, name: str) -> Path | None:
        if self.profile_dir is None:
            return None
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        return self.profile_dir / name

    async def collect_profile(self, prefix: Path | None, number: int, name: str) -> None:
        """Rename the `number`-th window written by bench.profiled to `name`.*."""
        if prefix is None:
            return
        for _ in range(300):
            if (prefix.parent / f"{prefix.name}-{number}.sql.txt").exists():
                await asyncio.sleep(0.2)  # written last; let it finish
                for suffix in (".txt", ".sql.txt", ".gc.json", ".pyisession", ".html"):
                    written = prefix.parent / f"{prefix.name}-{number}{suffix}"
                    if written.exists():
                        written.replace(prefix.parent / f"{name}{suffix}")
                log(f"profile written: {prefix.parent / name}.*")
                return
            await asyncio.sleep(0.1)
        log(f"profile {name} was not written")
