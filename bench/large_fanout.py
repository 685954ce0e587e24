"""Scenario 9: one message to 100,000 offline recipients (issue 13, item 6).

Setup (direct SQL, not timed): N recipients with one device each, providers in turn FCM,
APNs, Web Push (real emulator subscriptions), all in one conversation, nobody online;
a reference conversation of 1,000 such recipients; a small warm-up one.

One `messenger serve` with its background work in the same process, as the fan-out
scenario (the POST kicks the job there): the 1,000-recipient reference is that scenario's
setup, so the two rates compare like with like. The memory figure is that process's (its
API is idle during the fan-out).

Measured, providers at a 50 ms round trip:
- ack → first acceptance (emulators' own timestamp of the oldest push they hold, read as
  soon as the first push is counted, while they still hold every push); target ≤ 1 s;
- pushes/s from the ack to the last acceptance (the issue's and scenario 1's measure of the
  1,000-recipient figure), against the same figure of the 1,000-recipient reference fan-out
  run just before in the same process, under the same samplers (memory, locks); target ≥
  it. Pushes/s from the first to the last acceptance are reported beside it: a short run
  does most of its fan-out before its first push, a long one while it pushes;
- the process's peak RSS minus its idle baseline (psutil, as scenario 5); target < 100 MiB;
- the longest transaction of the service holding locks (`bench.lock_sampler`); target
  ≤ 1,000 ms.
Every push must arrive exactly once: the emulators' count and the delivered rows must both
equal the number of devices.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

import httpx

from bench.context import Bench
from bench.lock_sampler import LockSampler
from bench.memory import MIB, RssSampler
from bench.report import Figure
from bench.stack import (
    API,
    POLL_SECONDS,
    CpuMeter,
    bearer,
    create_conversation,
    create_devices,
    log,
    service_settings,
    start_service,
    wait_for_job_done,
)

SCENARIO = "9 large fan-out"
LATENCY_MS = 50.0
WARMUP_RECIPIENTS = 30
IDLE_SECONDS = 1.0
MEMORY_LIMIT_MIB = 100
LOCK_LIMIT_SECONDS = 1.0
FIRST_PUSH_LIMIT_SECONDS = 1.0
RATE = "pushes/s (ack → last acceptance, as scenario 1)"
PUSHING_RATE = "pushes/s (first → last acceptance)"


async def _population(bench: Bench, name: str, count: int, sender: str) -> tuple[str, int]:
    users = bench.users(name, count)
    started = time.monotonic()
    devices = await create_devices(bench.db, bench.emulators, users, per_user=1)
    conversation_id = await create_conversation(
        bench.db, title="Large fan-out", owner=sender, members=users
    )
    log(f"large fan-out: {count:,} recipients × 1 device in {time.monotonic() - started:.1f} s")
    return conversation_id, len(devices)


async def _first_acceptance(bench: Bench, within: float) -> float | None:
    """Epoch time of the first push any emulator accepted (None on timeout). Read as soon as
    one is counted, while each emulator still holds all it received (it keeps 1,000)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await bench.emulators.total() > 0:
            return await bench.emulators.first_acceptance(limit=1000)
        await asyncio.sleep(0.01)
    return None


async def run(bench: Bench) -> None:
    sizes = bench.sizes
    sender = bench.users("big-sender", 1)[0]
    warmup = await _population(bench, "big-warm", WARMUP_RECIPIENTS, sender)
    reference = await _population(bench, "big-ref", sizes.large_fanout_reference, sender)
    large = await _population(bench, "big", sizes.large_fanout_recipients, sender)
    await bench.db.execute("ANALYZE")

    settings = service_settings(bench.infra, bench.emulators)
    service = await start_service("serve", settings, bench.workdir, name="large-fanout")
    headers = bearer(sender, name="Large Sender")
    runs: dict[str, list[float]] = {}
    problems: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=service.url + API, timeout=120) as http:

            async def fan_out(
                target: tuple[str, int], latency: float, poll: float, key: str | None = None
            ) -> None:
                """One message; with `key`, its figures are kept under that name."""
                conversation_id, expected = target
                await bench.emulators.reset(latency)
                meter = CpuMeter(service=service.pid, emulators=bench.emulators.process.pid)
                meter.start()
                response = await http.post(
                    f"/conversations/{conversation_id}/messages",
                    json={"content": f"large fan-out to {expected:,} devices"},
                    headers=headers,
                )
                acked = time.time()
                response.raise_for_status()
                timeout = 120 + expected * 0.01
                first = await _first_acceptance(bench, timeout)
                last = await bench.emulators.wait_for_total(expected, within=timeout, poll=poll)
                message_id = response.json()["id"]
                if (
                    first is None
                    or last is None
                    or not await wait_for_job_done(bench.db, message_id, timeout)
                ):
                    raise RuntimeError(
                        f"fan-out to {expected:,} devices did not finish within {timeout:.0f} s "
                        f"({await bench.emulators.total()} accepted)"
                    )
                meter.stop()
                await _check_exactly_once(bench, message_id, expected, problems)
                if key is not None:
                    # Whether the service, the emulators or PostgreSQL took the cores.
                    bench.results.diagnose("large fan-out cpu seconds", key, meter.seconds)
                    log(f"  cpu s during {key}: {meter.summary()}")
                    runs.setdefault(f"{key} first", []).append(first - acked)
                    runs.setdefault(f"{key} last", []).append(last - acked)
                    runs.setdefault(f"{key} rate", []).append(expected / max(last - acked, 1e-6))
                    runs.setdefault(f"{key} pushing rate", []).append(
                        expected / max(last - first, 1e-6)
                    )

            await fan_out(warmup, 0.0, POLL_SECONDS)
            own = [bench.db.get_server_pid()]
            # The reference runs under the same samplers as the large one (their figures are
            # not used): they poll PostgreSQL and the process, on the same two cores.
            with RssSampler(service.pid):
                locks = await LockSampler(bench.infra.database_url, own).start()
                try:
                    for _ in range(sizes.large_fanout_reference_repeats):
                        await fan_out(reference, LATENCY_MS, POLL_SECONDS, key="reference")
                finally:
                    await locks.stop()
            log(f"large fan-out: reference pushes/s from the ack {runs['reference rate']}")
            with RssSampler(service.pid) as rss:
                await fan_out(warmup, 0.0, POLL_SECONDS)
                idle_from = time.monotonic()
                await asyncio.sleep(IDLE_SECONDS)
                locks = await LockSampler(bench.infra.database_url, own).start()
                started = time.monotonic()
                try:
                    await fan_out(large, LATENCY_MS, 0.1, key="large")
                finally:
                    finished = time.monotonic()
                    await locks.stop()
            baseline = statistics.median(rss.between(idle_from, started))
            growth = (max(rss.between(started, finished)) - baseline) / MIB
    finally:
        await service.stop()

    log(
        f"large fan-out: first push {runs['large first'][0]:.3f} s after the ack, "
        f"{runs['large rate'][0]:.0f} pushes/s from the ack "
        f"({runs['large pushing rate'][0]:.0f} from the first push), RSS +{growth:.1f} MiB over "
        f"{baseline / MIB:.1f}, longest transaction {locks.any.seconds * 1000:.0f} ms "
        f"({locks.any.query}), longest writing one {locks.writing.seconds * 1000:.0f} ms "
        f"({locks.writing.query}), {locks.samples} samples"
    )
    _report(bench, runs, large[1], reference[1], growth, locks)
    if problems:
        bench.results.figures[-1].note = "; ".join(problems)
        raise RuntimeError("large fan-out: " + "; ".join(problems))


async def _check_exactly_once(
    bench: Bench, message_id: str, expected: int, problems: list[str]
) -> None:
    """Nothing lost, nothing sent twice: emulator count and delivered rows both equal."""
    await asyncio.sleep(0.2)  # a duplicate would arrive after the last expected push
    accepted = await bench.emulators.total()
    delivered = await bench.db.fetchval(
        "SELECT count(*) FROM push_deliveries d JOIN push_jobs j ON j.id = d.job_id "
        "WHERE j.message_id = $1 AND d.status = 'delivered'",
        uuid.UUID(message_id),
    )
    if accepted != expected or delivered != expected:
        problems.append(f"{expected:,} devices: {accepted:,} accepted, {delivered:,} delivered")


def _report(
    bench: Bench,
    runs: dict[str, list[float]],
    devices: int,
    reference_devices: int,
    growth: float,
    locks: LockSampler,
) -> None:
    variant = f"{devices:,} recipients × 1 device @{LATENCY_MS:g} ms"
    reference = f"reference: {reference_devices:,} recipients × 1 device @{LATENCY_MS:g} ms"
    floor = statistics.median(runs["reference rate"])
    first, rate = runs["large first"], runs["large rate"]
    longest = locks.any.seconds * 1000
    rows: list[tuple[str, str, str, list[float], str | None, bool | None, str | None]] = [
        (reference, "ack → first acceptance", "s", runs["reference first"], None, None, None),
        (reference, RATE, "/s", runs["reference rate"], None, None, None),
        (reference, PUSHING_RATE, "/s", runs["reference pushing rate"], None, None, None),
        (variant, "ack → last acceptance", "s", runs["large last"], None, None, None),
        (
            variant,
            "ack → first acceptance",
            "s",
            first,
            f"≤ {FIRST_PUSH_LIMIT_SECONDS:g}",
            max(first) <= FIRST_PUSH_LIMIT_SECONDS,
            None,
        ),
        (
            variant,
            RATE,
            "/s",
            rate,
            f"≥ {floor:,.0f} (reference)",
            statistics.median(rate) >= floor,
            None,
        ),
        (variant, PUSHING_RATE, "/s", runs["large pushing rate"], None, None, None),
        (
            variant,
            "process peak RSS − idle baseline",
            "MiB",
            [growth],
            f"< {MEMORY_LIMIT_MIB}",
            growth < MEMORY_LIMIT_MIB,
            None,
        ),
        (
            variant,
            "longest lock-holding transaction of the service",
            "ms",
            [longest],
            f"≤ {LOCK_LIMIT_SECONDS * 1000:,.0f}",
            longest <= LOCK_LIMIT_SECONDS * 1000,
            locks.any.query,
        ),
        (
            variant,
            "longest writing transaction (row locks)",
            "ms",
            [locks.writing.seconds * 1000],
            None,
            None,
            locks.writing.query,
        ),
    ]
    for name_of, name, unit, values, target, met, note in rows:
        bench.results.add(Figure(SCENARIO, name_of, name, unit, values, target, met, note))
