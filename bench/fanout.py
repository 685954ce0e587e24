"""Scenario 1: fan-out of one message to 1,000 offline recipients × 2 devices.

Three ways of pushing the same notifications, interleaved repeat by repeat (so machine
noise hits all three alike), at each simulated provider round trip:

- pipeline: the service itself (`messenger serve` subprocess). Clock: from the POST
  /messages response to the last acceptance any emulator recorded (the control `count`
  endpoints are polled every 5 ms until they total the expected number; the newest
  recorded answer's timestamp is the end).
- ceiling: the project's own adapters (`PushProvider.send`) sending the same pushes
  straight from this process, one Semaphore per provider (the adapter's own concurrency:
  `PUSH_CONCURRENCY_PER_PROVIDER`, `APNS_CONCURRENCY` for APNs), no database, no Redis, no
  bookkeeping.
- naive: written here the way the simplest design would be: per recipient one settings
  query, one presence lookup (a Redis call), one device query, then one awaited send
  after another (same adapters). On a subset of recipients (it is slow by design).
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
import uuid
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.config import Settings
from backend.app.db import create_engine, create_sessionmaker
from backend.app.main import create_redis
from backend.app.messenger.presence import connections_key
from backend.app.messenger.push.dispatcher import PushDispatcher
from backend.app.messenger.push.payloads import Notification, message_notification
from backend.app.messenger.push.providers.base import PushProvider, Target, Verdict
from bench.context import Bench
from bench.report import Figure
from bench.stack import (
    API,
    CpuMeter,
    Device,
    bearer,
    create_conversation,
    create_devices,
    log,
    service_settings,
    start_service,
    wait_for_job_done,
)

SCENARIO = "1 fan-out"
CONTENT = "Benchmark fan-out: the quick brown fox jumps over the lazy dog."
SENDER_NAME = "Bench Sender"
TITLE = "Bench"


def service_like_settings(bench: Bench) -> Settings:
    """The settings the service runs with, for the adapters used in this process."""
    env = service_settings(bench.infra, bench.emulators)
    return Settings(_env_file=None, **{k.lower(): v for k, v in env.items()})  # type: ignore[arg-type]


def notification_for(conversation_id: str, sender_id: str) -> Notification:
    """What the service would push for one message (collapse id included)."""
    message_id = uuid.uuid4()
    notification = message_notification(
        sender_name=SENDER_NAME,
        conversation_title=TITLE,
        content=CONTENT,
        include_content=True,
        conversation_id=conversation_id,
        message_id=str(message_id),
        sender_id=sender_id,
    )
    return dataclasses.replace(notification, collapse_id=message_id.hex)


def target_of(device: Device, registered_at: Any) -> Target:
    return Target(
        device_id=device.id,
        token=device.token,
        registered_at=registered_at,
        p256dh=device.p256dh,
        auth=device.auth,
    )


class Ceiling:
    """The adapters alone: same construction as the service's (PushDispatcher.start builds
    the aiohttp session and the three providers), a Semaphore per provider, nothing else."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dispatcher = PushDispatcher(settings=settings, sessionmaker=None, redis=None)  # type: ignore[arg-type]
        self.providers: dict[str, PushProvider] = {}

    async def start(self) -> None:
        await self.dispatcher.start(run_workers=False)
        channels = self.dispatcher.registry.channels
        missing = [f"{p}/{a}" for (p, a), c in channels.items() if c.provider is None]
        if missing:
            raise RuntimeError(f"providers failed to start in the bench process: {missing}")
        self.providers = {
            p.value: c.provider for (p, a), c in channels.items() if c.provider is not None
        }

    async def send_all(self, targets: list[tuple[str, Target]], notification: Notification) -> int:
        """Send every push concurrently (bounded per provider); returns how many were delivered."""
        limits = {
            name: asyncio.Semaphore(provider.concurrency)
            for name, provider in self.providers.items()
        }

        async def one(provider: str, target: Target) -> bool:
            async with limits[provider]:
                result = await self.providers[provider].send(target, notification)
            return result.outcome is Verdict.DELIVERED

        outcomes = await asyncio.gather(*(one(p, t) for p, t in targets))
        return sum(outcomes)

    async def close(self) -> None:
        await self.dispatcher.stop()


_NAIVE_SETTINGS = text(
    """
    SELECT muted, muted_until, push_enabled FROM conversation_participants
    WHERE conversation_id = :conversation_id AND user_id = :user_id
    """
)
_NAIVE_DEVICES = text(
    """
    SELECT id, provider, token, web_push_p256dh, web_push_auth, updated_at
    FROM device_tokens WHERE user_id = :user_id AND is_active
    """
)


async def naive_fan_out(
    session: AsyncSession,
    redis: Redis,
    providers: dict[str, PushProvider],
    *,
    conversation_id: str,
    recipients: list[str],
    notification: Notification,
) -> int:
    """The simplest design: everything per recipient, one await after another."""
    delivered = 0
    for user_id in recipients:
        settings = (
            await session.execute(
                _NAIVE_SETTINGS, {"conversation_id": conversation_id, "user_id": user_id}
            )
        ).one_or_none()
        if settings is None or not settings.push_enabled:
            continue
        if settings.muted_until is not None:
            if settings.muted_until.timestamp() > time.time():
                continue
        elif settings.muted:
            continue
        if await redis.zcount(connections_key(user_id), f"({time.time()!r}", "+inf"):
            continue
        for device in (await session.execute(_NAIVE_DEVICES, {"user_id": user_id})).all():
            target = Target(
                device_id=device.id,
                token=device.token,
                registered_at=device.updated_at,
                p256dh=device.web_push_p256dh,
                auth=device.web_push_auth,
            )
            result = await providers[device.provider].send(target, notification)
            delivered += result.outcome is Verdict.DELIVERED
    return delivered


# Issue 13's per-provider targets at a 50 ms provider round trip (pushes/s).
ALONE_LATENCY_MS = 50.0
PER_PROVIDER = {"apns": 2000, "fcm": 1400, "web_push": 1000}
MIX_TARGET = 1500


async def run(bench: Bench) -> None:
    sizes = bench.sizes
    emulators = bench.emulators
    sender = bench.users("fan", 1, start=10**6)[0]
    recipients = bench.users("fan", sizes.fanout_recipients)
    log(f"fan-out: creating {len(recipients)} recipients × 2 devices")
    devices = await create_devices(bench.db, emulators, recipients, per_user=2)
    conversation_id = await create_conversation(
        bench.db, title=TITLE, owner=sender, members=recipients
    )
    expected = len(devices)
    naive_users = recipients[: sizes.naive_recipients]
    naive_expected = sum(d.user_id in set(naive_users) for d in devices)
    registered_at = await bench.db.fetchval("SELECT now()")
    targets = [(d.provider, target_of(d, registered_at)) for d in devices]

    # Each provider alone: its own recipients (same size, every device of that provider).
    alone: dict[str, tuple[str, int]] = {}
    for provider in PER_PROVIDER:
        users = bench.users(f"fan-{provider}", sizes.fanout_recipients)
        provider_devices = await create_devices(
            bench.db, emulators, users, per_user=2, only=provider
        )
        alone[provider] = (
            await create_conversation(bench.db, title=TITLE, owner=sender, members=users),
            len(provider_devices),
        )

    prefix = bench.profile_prefix("fanout")
    service = await start_service(
        "serve",
        service_settings(bench.infra, emulators),
        bench.workdir,
        name="fanout-serve",
        profile_path=prefix,
    )
    settings = service_like_settings(bench)
    ceiling = Ceiling(settings)
    await ceiling.start()
    engine = create_engine(settings.database_url, pool_size=2)
    sessionmaker = create_sessionmaker(engine)
    redis = create_redis(settings.redis_url)
    headers = bearer(sender, name=SENDER_NAME)
    timeout = 60 + expected * 0.05
    runs: dict[tuple[str, float], list[float]] = {}
    problems: list[str] = []
    profiles = 0
    try:
        async with httpx.AsyncClient(base_url=service.url + API, timeout=60) as http:

            async def pipeline_once(
                latency: float,
                profile_as: str | None = None,
                *,
                conversation_id: str = conversation_id,
                expected: int = expected,
            ) -> float:
                nonlocal profiles
                await emulators.reset(latency)
                if profile_as:
                    service.profile_start()
                meter = CpuMeter(service=service.pid, emulators=emulators.process.pid)
                meter.start()
                response = await http.post(
                    f"/conversations/{conversation_id}/messages",
                    json={"content": CONTENT},
                    headers=headers,
                )
                acked = time.time()
                response.raise_for_status()
                last = await emulators.wait_for_total(expected, within=timeout)
                done = await wait_for_job_done(bench.db, response.json()["id"], timeout)
                meter.stop()
                diagnose(f"pipeline @{latency:g} ms", meter)
                if profile_as:
                    service.profile_stop()
                    profiles += 1
                    await bench.collect_profile(prefix, profiles, profile_as)
                if last is None or not done:
                    raise RuntimeError(
                        f"pipeline fan-out did not finish within {timeout:.0f} s "
                        f"(emulators saw {await emulators.total()} of {expected})"
                    )
                first = await emulators.first_acceptance(limit=expected)
                if measuring:
                    runs.setdefault(("first", latency), []).append(first - acked)
                delivered = await bench.db.fetchval(
                    "SELECT count(*) FROM push_deliveries d JOIN push_jobs j ON j.id = d.job_id "
                    "WHERE j.message_id = $1 AND d.status = 'delivered'",
                    uuid.UUID(response.json()["id"]),
                )
                if delivered != expected:
                    problems.append(f"pipeline @{latency:g} ms: {delivered}/{expected} delivered")
                return last - acked

            async def ceiling_once(latency: float) -> float:
                await emulators.reset(latency)
                notification = notification_for(conversation_id, sender)
                with CpuMeter(service=service.pid, emulators=emulators.process.pid) as meter:
                    started = time.time()
                    delivered = await ceiling.send_all(targets, notification)
                    last = await emulators.wait_for_total(expected, within=timeout)
                diagnose(f"ceiling @{latency:g} ms", meter)
                if delivered != expected or last is None:
                    problems.append(f"ceiling @{latency:g} ms: {delivered}/{expected} delivered")
                return (last or time.time()) - started

            async def naive_once(latency: float) -> float:
                await emulators.reset(latency)
                notification = notification_for(conversation_id, sender)
                with CpuMeter(service=service.pid, emulators=emulators.process.pid) as meter:
                    async with sessionmaker() as session:
                        started = time.time()
                        delivered = await naive_fan_out(
                            session,
                            redis,
                            ceiling.providers,
                            conversation_id=conversation_id,
                            recipients=naive_users,
                            notification=notification,
                        )
                    last = await emulators.wait_for_total(naive_expected, within=timeout)
                diagnose(f"naive @{latency:g} ms", meter)
                if delivered != naive_expected or last is None:
                    problems.append(
                        f"naive @{latency:g} ms: {delivered}/{naive_expected} delivered"
                    )
                return (last or time.time()) - started

            measuring = False

            def diagnose(key: str, meter: CpuMeter) -> None:
                if measuring:
                    bench.results.diagnose("fanout cpu seconds", key, meter.seconds)
                    log(f"  cpu s during {key}: {meter.summary()}")

            # Warm-up (not measured): connections, OAuth/provider tokens, code paths, caches.
            log("fan-out: warm-up")
            await pipeline_once(0.0)
            await ceiling_once(0.0)
            await naive_once(0.0)
            measuring = True

            for latency in sizes.fanout_latencies_ms:
                for repeat in range(sizes.fanout_repeats):
                    profile_as = f"fanout-{latency:g}ms" if repeat == 0 and prefix else None
                    p = await pipeline_once(latency, profile_as)
                    c = await ceiling_once(latency)
                    n = await naive_once(latency)
                    for kind, value in (("pipeline", p), ("ceiling", c), ("naive", n)):
                        runs.setdefault((kind, latency), []).append(value)
                    log(
                        f"fan-out @{latency:g} ms #{repeat + 1}: pipeline {p:.3f} s, "
                        f"ceiling {c:.3f} s, naive {n:.3f} s ({naive_expected} pushes)"
                    )
            measuring = False  # the per-provider runs record only their own rates
            for provider, (alone_id, alone_expected) in alone.items():
                await pipeline_once(0.0, conversation_id=alone_id, expected=alone_expected)
                for _ in range(sizes.fanout_repeats):
                    t = await pipeline_once(
                        ALONE_LATENCY_MS, conversation_id=alone_id, expected=alone_expected
                    )
                    runs.setdefault(("alone", provider), []).append(alone_expected / t)
                log(f"fan-out {provider} alone: {runs[('alone', provider)]}")
    finally:
        await ceiling.close()
        await redis.aclose()
        await engine.dispose()
        await service.stop()

    for latency in sizes.fanout_latencies_ms:
        variant = f"@{latency:g} ms"
        pipeline = runs[("pipeline", latency)]
        ceiling_times = runs[("ceiling", latency)]
        naive_times = runs[("naive", latency)]
        pipeline_rate = [expected / t for t in pipeline]
        ceiling_rate = [expected / t for t in ceiling_times]
        naive_rate = [naive_expected / t for t in naive_times]
        add = bench.results.add
        add(
            Figure(
                SCENARIO,
                f"pipeline {variant}",
                f"ack → last acceptance ({expected} pushes)",
                "s",
                pipeline,
            )
        )
        add(
            Figure(
                SCENARIO,
                f"pipeline {variant}",
                "ack → first acceptance",
                "s",
                runs[("first", latency)],
            )
        )
        add(Figure(SCENARIO, f"pipeline {variant}", "pushes/s", "/s", pipeline_rate))
        add(Figure(SCENARIO, f"ceiling {variant}", "pushes/s (adapters only)", "/s", ceiling_rate))
        add(
            Figure(
                SCENARIO,
                f"naive {variant}",
                f"pushes/s (subset: first {len(naive_users)} recipients = {naive_expected} pushes)",
                "/s",
                naive_rate,
            )
        )
        vs_ceiling = [p / c for p, c in zip(pipeline_rate, ceiling_rate, strict=True)]
        add(
            Figure(
                SCENARIO,
                f"pipeline {variant}",
                "pipeline ÷ ceiling (pushes/s, paired per repeat)",
                "x",
                vs_ceiling,
                target="≥ 0.80",
                met=statistics.median(vs_ceiling) >= 0.8,
            )
        )
        vs_naive = [p / n for p, n in zip(pipeline_rate, naive_rate, strict=True)]
        target = latency == 50.0
        add(
            Figure(
                SCENARIO,
                f"pipeline {variant}",
                "pipeline ÷ naive (pushes/s, paired per repeat)",
                "x",
                vs_naive,
                target="≥ 20" if target else None,
                met=statistics.median(vs_naive) >= 20 if target else None,
            )
        )
    mixed = [expected / t for t in runs[("pipeline", ALONE_LATENCY_MS)]]
    for provider, minimum in (*PER_PROVIDER.items(), ("mix", MIX_TARGET)):
        rates = mixed if provider == "mix" else runs[("alone", provider)]
        bench.results.add(
            Figure(
                SCENARIO,
                f"pipeline @{ALONE_LATENCY_MS:g} ms, {provider}"
                + (" (even thirds)" if provider == "mix" else " alone"),
                "pushes/s (target)",
                "/s",
                rates,
                target=f"≥ {minimum:,}",
                met=statistics.median(rates) >= minimum,
            )
        )
    if problems:
        bench.results.figures[-1].note = "; ".join(problems)
        raise RuntimeError("fan-out pushes were not all delivered: " + "; ".join(problems))
