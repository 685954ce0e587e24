"""Scenario 2: POST /messages latency under load, with push delivery on vs providers off.

100 closed-loop clients, each posting into its own conversation of 50 members (the
sender + 49 recipients, all offline, one device each, providers mixed evenly), for 20 s
after a short warm-up. Two `messenger serve` processes (API and background work in one
process, the default deployment), one after the other on the same data:

- pushes off: started without provider credentials (every device gets
  `provider_not_configured`: fan-out and bookkeeping run, nothing is sent);
- pushes on: started with the emulators' credentials, simulated round trip 50 ms.

Between the two, unfinished push work is discarded so the second server inherits nothing.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx

from bench.context import Bench
from bench.report import Figure
from bench.stack import (
    API,
    CpuMeter,
    Service,
    bearer,
    create_conversation,
    create_devices,
    discard_push_backlog,
    log,
    service_settings,
    start_service,
)

SCENARIO = "2 send latency"
CONTENT = "Load test message: hello from a benchmark client."


def percentile(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


async def run(bench: Bench) -> None:
    sizes = bench.sizes
    clients = bench.users("load-sender", sizes.load_clients)
    members = sizes.load_members - 1
    recipients = bench.users("load", sizes.load_clients * members)
    log(
        f"send load: {len(clients)} conversations of {sizes.load_members} members, "
        f"{len(recipients)} recipient devices"
    )
    await create_devices(bench.db, bench.emulators, recipients, per_user=1)
    conversations = []
    for index, sender in enumerate(clients):
        group = recipients[index * members : (index + 1) * members]
        conversation_id = await create_conversation(
            bench.db, title=f"Load {index}", owner=sender, members=group
        )
        conversations.append((conversation_id, bearer(sender, name=f"Client {index}")))

    figures: dict[str, dict[str, float]] = {}
    for mode in ("pushes off", "pushes on"):
        on = mode == "pushes on"
        await bench.emulators.reset(sizes.load_push_latency_ms)
        slug = mode.replace(" ", "-")
        prefix = bench.profile_prefix(f"send-load-{slug}")
        service = await start_service(
            "serve",
            service_settings(bench.infra, bench.emulators if on else None),
            bench.workdir,
            name=f"load-{slug}",
            profile_path=prefix,
        )
        try:
            with CpuMeter(service=service.pid, emulators=bench.emulators.process.pid) as meter:
                latencies, errors, window, pushed = await _load(bench, service, conversations, mode)
            backlog = await bench.db.fetchrow(
                """
                SELECT (SELECT count(*) FROM push_jobs WHERE fanned_out_at IS NULL) AS jobs,
                       (SELECT count(*) FROM push_deliveries WHERE status = 'pending') AS deliveries
                """
            )
            bench.results.diagnose("send load cpu seconds", mode, meter.seconds)
            log(f"  cpu s during {mode}: {meter.summary()}")
            if prefix is not None:
                await bench.collect_profile(prefix, 1, f"send-load-{slug}")
        finally:
            await service.stop()
            await discard_push_backlog(bench.db)
        if not latencies:
            raise RuntimeError(f"{mode}: no request completed")
        if errors:
            raise RuntimeError(f"{mode}: {len(errors)} requests failed, first: {errors[0]}")
        rate = len(latencies) / window
        p50, p95, p99 = (percentile(latencies, p) * 1000 for p in (50, 95, 99))
        figures[mode] = {"rate": rate, "p50": p50, "p95": p95, "p99": p99}
        log(
            f"send load, {mode}: {rate:.0f} msg/s, p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
            f"p99 {p99:.0f} ms; {pushed} pushes accepted by the providers in the window"
        )
        variant = mode + (f" ({sizes.load_push_latency_ms:g} ms providers)" if on else "")
        add = bench.results.add
        add(
            Figure(
                SCENARIO,
                variant,
                f"messages/s ({sizes.load_clients} clients, {sizes.load_seconds:g} s)",
                "/s",
                [rate],
            )
        )
        for name, value in (("p50", p50), ("p95", p95), ("p99", p99)):
            add(Figure(SCENARIO, variant, f"POST /messages {name}", "ms", [value]))
        if on:
            add(
                Figure(
                    SCENARIO,
                    variant,
                    f"pushes accepted in the window (demand {members} per message)",
                    "/s",
                    [pushed / window],
                )
            )
        add(
            Figure(
                SCENARIO,
                variant,
                "backlog at the end: messages not fanned out",
                "",
                [backlog["jobs"]],
            )
        )
        add(
            Figure(
                SCENARIO,
                variant,
                "backlog at the end: deliveries pending",
                "",
                [backlog["deliveries"]],
            )
        )

    ratio = figures["pushes on"]["p99"] / figures["pushes off"]["p99"]
    bench.results.add(
        Figure(
            SCENARIO,
            "on ÷ off",
            "p99 with pushes ÷ p99 without",
            "x",
            [ratio],
            target="≤ 1.5",
            met=ratio <= 1.5,
        )
    )


async def _load(
    bench: Bench, service: Service, conversations: list[tuple[str, dict[str, str]]], mode: str
) -> tuple[list[float], list[str], float, int]:
    """Closed loop: every client posts, waits for the answer, posts again.

    Each client has its own connection (its own httpx client), as separate devices would.
    """
    sizes = bench.sizes
    latencies: list[float] = []
    timeline: list[tuple[float, float]] = []
    errors: list[str] = []
    clients = [
        httpx.AsyncClient(
            base_url=service.url + API,  # type: ignore[operator]
            timeout=60,
            limits=httpx.Limits(max_connections=1),
        )
        for _ in conversations
    ]
    try:
        # One request per client first: connections open before the clock starts.
        await asyncio.gather(
            *(
                http.post(f"/conversations/{c}/messages", json={"content": CONTENT}, headers=h)
                for http, (c, h) in zip(clients, conversations, strict=True)
            )
        )
        measure_from = time.perf_counter() + sizes.load_warmup_seconds
        end = measure_from + sizes.load_seconds
        counted_from: int | None = None

        async def client(
            http: httpx.AsyncClient, conversation_id: str, headers: dict[str, str]
        ) -> None:
            url = f"/conversations/{conversation_id}/messages"
            while (started := time.perf_counter()) < end:
                try:
                    response = await http.post(url, json={"content": CONTENT}, headers=headers)
                except httpx.TransportError as exc:
                    errors.append(
                        f"{type(exc).__name__} after {time.perf_counter() - started:.2f} s"
                    )
                    continue
                elapsed = time.perf_counter() - started
                if response.status_code != 201:
                    errors.append(f"HTTP {response.status_code}")
                elif started >= measure_from:
                    latencies.append(elapsed)
                    timeline.append((started - measure_from, elapsed))

        async def window_marks() -> None:
            nonlocal counted_from
            await asyncio.sleep(measure_from - time.perf_counter())
            counted_from = await bench.emulators.total()
            service.profile_start()
            await asyncio.sleep(end - time.perf_counter())
            service.profile_stop()

        marks = asyncio.create_task(window_marks())
        await asyncio.gather(
            *(client(http, c, h) for http, (c, h) in zip(clients, conversations, strict=True))
        )
        await marks
        pushed = await bench.emulators.total() - (counted_from or 0)
        window = max(time.perf_counter() - measure_from, sizes.load_seconds)
    finally:
        await asyncio.gather(*(http.aclose() for http in clients))
    seconds: dict[int, list[float]] = {}
    for offset, latency in timeline:
        seconds.setdefault(int(offset), []).append(latency)
    bench.results.diagnose(
        "send load per second (requests, p50 ms, max ms)",
        mode,
        {
            second: [
                len(values),
                round(statistics.median(values) * 1000),
                round(max(values) * 1000),
            ]
            for second, values in sorted(seconds.items())
        },
    )
    return latencies, errors, window, pushed
