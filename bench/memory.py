"""Scenario 5: peak resident memory of the process doing a fan-out, 10,000 vs 1,000 recipients.

An API-only `messenger serve --no-background` takes the POST; a real `messenger worker`
subprocess (fresh for every measurement) does the fan-out and the sends. Its RSS is
sampled with psutil every ~10 ms from a thread. Each worker first does a small warm-up
fan-out (connections, provider tokens, lazily built code paths), then idles for a second:
the median RSS of that second is the baseline; the figure is peak minus baseline during
the measured fan-out (until the emulators accepted every push and the job's deliveries
are all recorded). Sizes alternate run by run.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time

import httpx
import psutil

from bench.context import Bench
from bench.report import Figure
from bench.stack import (
    API,
    bearer,
    create_conversation,
    create_devices,
    log,
    service_settings,
    start_service,
    wait_for_job_done,
)

SCENARIO = "5 memory"
MIB = 2**20
WARMUP_RECIPIENTS = 30
IDLE_SECONDS = 1.0


class RssSampler:
    """Samples a process's RSS every `interval` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), self.process.memory_info().rss))
            except psutil.Error:
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def between(self, start: float, end: float) -> list[int]:
        return [rss for at, rss in self.samples if start <= at <= end]


async def run(bench: Bench) -> None:
    sizes = bench.sizes
    small, large = sizes.memory_recipients
    sender = bench.users("mem-sender", 1)[0]
    conversations: dict[int, tuple[str, int]] = {}
    for count in (WARMUP_RECIPIENTS, small, large):
        users = bench.users(f"mem{count}", count)
        log(f"memory: creating {count:,} recipients × 2 devices")
        devices = await create_devices(bench.db, bench.emulators, users, per_user=2)
        conversation_id = await create_conversation(
            bench.db, title="Memory", owner=sender, members=users
        )
        conversations[count] = (conversation_id, len(devices))

    settings = service_settings(bench.infra, bench.emulators)
    api = await start_service("serve", settings, bench.workdir, name="memory-api", background=False)
    growth: dict[int, list[float]] = {small: [], large: []}
    baselines: dict[int, list[float]] = {small: [], large: []}
    durations: dict[int, list[float]] = {small: [], large: []}
    headers = bearer(sender, name="Memory Sender")
    try:
        async with httpx.AsyncClient(base_url=api.url + API, timeout=120) as http:

            async def fan_out(count: int) -> None:
                conversation_id, expected = conversations[count]
                await bench.emulators.reset(sizes.memory_latency_ms)
                response = await http.post(
                    f"/conversations/{conversation_id}/messages",
                    json={"content": f"memory benchmark, {count} recipients"},
                    headers=headers,
                )
                response.raise_for_status()
                timeout = 60 + expected * 0.02
                last = await bench.emulators.wait_for_total(expected, within=timeout)
                done = await wait_for_job_done(bench.db, response.json()["id"], timeout)
                if last is None or not done:
                    raise RuntimeError(
                        f"fan-out to {count} recipients did not finish within {timeout:.0f} s "
                        f"({await bench.emulators.total()} of {expected} accepted)"
                    )

            for repeat in range(sizes.memory_repeats):
                order = (small, large) if repeat % 2 == 0 else (large, small)
                for count in order:
                    worker = await start_service(
                        "worker", settings, bench.workdir, name=f"memory-worker-{count}-{repeat}"
                    )
                    try:
                        with RssSampler(worker.pid) as sampler:
                            await fan_out(WARMUP_RECIPIENTS)
                            idle_from = time.monotonic()
                            await asyncio.sleep(IDLE_SECONDS)
                            started = time.monotonic()
                            await fan_out(count)
                            finished = time.monotonic()
                        baseline = statistics.median(sampler.between(idle_from, started))
                        peak = max(sampler.between(started, finished))
                    finally:
                        await worker.stop()
                    growth[count].append((peak - baseline) / MIB)
                    baselines[count].append(baseline / MIB)
                    durations[count].append(finished - started)
                    log(
                        f"memory: {count:,} recipients: baseline {baseline / MIB:.1f} MiB, "
                        f"peak {peak / MIB:.1f} MiB (+{(peak - baseline) / MIB:.1f}), "
                        f"fan-out {finished - started:.1f} s"
                    )
    finally:
        await api.stop()

    add = bench.results.add
    for count in (small, large):
        variant = f"{count:,} recipients × 2"
        add(Figure(SCENARIO, variant, "worker RSS idle baseline", "MiB", baselines[count]))
        add(Figure(SCENARIO, variant, "worker peak RSS − baseline", "MiB", growth[count]))
        add(Figure(SCENARIO, variant, "fan-out duration (sampled window)", "s", durations[count]))
    size_ratio = large / small
    ratios = [
        b / a if a > 0 else float("inf") for a, b in zip(growth[small], growth[large], strict=True)
    ]
    limit = size_ratio / 2
    add(
        Figure(
            SCENARIO,
            f"{large:,} vs {small:,}",
            f"growth ratio (recipients ×{size_ratio:g}; linear = {size_ratio:g})",
            "x",
            ratios,
            target=f"≤ {limit:g} (well under linear)",
            met=statistics.median(ratios) <= limit,
        )
    )
