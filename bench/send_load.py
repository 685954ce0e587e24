"""Scenario 2: POST /messages latency under load, with push delivery on vs providers off.

100 closed-loop clients, each posting into its own conversation of 50 members (the
sender + 49 recipients, all offline, one device each, providers mixed evenly), for 20 s
after a short warm-up. Two `messenger serve` processes (API and background work in one
process, the default deployment), one after the other on the same data:

- pushes off: started without provider credentials (every device gets
  `provider_not_configured`: fan-out and bookkeeping run, nothing is sent);
- pushes on: started with the emulators' credentials, simulated round trip 50 ms.

Between the two, unfinished push work is discarded so the second server inherits nothing.
Before them, the bare ceiling and the API-only server (`--no-background`); on the latter, the
open-loop runs of `open_loop.py` (REST, then WebSocket) at half its closed-loop rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import statistics
import time
from pathlib import Path

import aiohttp
import httpx
import psutil

from bench.context import Bench
from bench.open_loop import CONTENT, percentile, rest_open_loop, ws_open_loop
from bench.report import Figure
from bench.stack import (
    API,
    CpuMeter,
    Service,
    bearer,
    child_env,
    create_conversation,
    create_devices,
    discard_push_backlog,
    free_port,
    log,
    service_settings,
    spawn,
    start_service,
)

SCENARIO = "2 send latency"
BARE = "bare ceiling"
API_ONLY = "api only (--no-background)"
# The bare ceiling and the API-only process (workers separate, none running: the jobs stay
# durable in the outbox) measure the send path alone; the two full `serve` processes measure
# latency with the background work in the same process.
API_TWO = "api only, 2 processes (--workers 2)"
MODES = (BARE, API_ONLY, API_TWO, "pushes off", "pushes on")


async def create_load_conversations(
    bench: Bench, tag: str = "load"
) -> list[tuple[str, dict[str, str]]]:
    """One conversation per client (the sender and its offline recipients, one device each),
    with the sender's token: what `_load` posts into. `tag` keeps user ids apart per scenario."""
    sizes = bench.sizes
    clients = bench.users(f"{tag}-sender", sizes.load_clients)
    members = sizes.load_members - 1
    recipients = bench.users(tag, sizes.load_clients * members)
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
    return conversations


def window_figures(
    latencies: list[float], window: float, cpu_seconds: dict[str, float]
) -> dict[str, float]:
    """messages/s, p50/p95/p99 (ms) and the server's and PostgreSQL's CPU ms per message of
    one window; every `service*` entry of `cpu_seconds` counts as the server (`--workers`
    children)."""
    rate = len(latencies) / window
    p50, p95, p99 = (percentile(latencies, p) * 1000 for p in (50, 95, 99))
    service_cpu = sum(v for k, v in cpu_seconds.items() if k.startswith("service"))
    cpu_ms = service_cpu * 1000 / max(1, len(latencies))
    postgres_ms = cpu_seconds.get("postgres", 0.0) * 1000 / max(1, len(latencies))
    return {
        "rate": rate,
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "cpu_ms": cpu_ms,
        "postgres_ms": postgres_ms,
    }


async def run(bench: Bench) -> None:
    sizes = bench.sizes
    members = sizes.load_members - 1
    conversations = await create_load_conversations(bench)

    figures: dict[str, dict[str, float]] = {}
    # Smoke (CI) skips the two-process server: starting two more interpreters is its
    # slowest part and says nothing at 5 clients.
    modes = [m for m in MODES if not (bench.smoke and m == API_TWO)]
    # BENCH_SEND_MODES=bare,api: only the modes whose names start with these (for iterating
    # on the send path); the comparison figures need the bare ceiling and the API-only mode.
    if only := os.environ.get("BENCH_SEND_MODES"):
        modes = [m for m in modes if any(m.startswith(w.strip()) for w in only.split(","))]
    for mode in modes:
        on = mode == "pushes on"
        await bench.emulators.reset(sizes.load_push_latency_ms)
        slug = mode.split(" (")[0].replace(" ", "-")
        prefix = bench.profile_prefix(f"send-load-{slug}")
        settings = service_settings(bench.infra, bench.emulators if on else None)
        if mode == BARE:
            service = await start_bare(settings, bench.workdir)
            prefix = None
        else:
            service = await start_service(
                "serve",
                settings,
                bench.workdir,
                name=f"load-{slug}",
                background=mode not in (API_ONLY, API_TWO),
                workers=2 if mode == API_TWO else 1,
                profile_path=prefix,
            )
        # `--workers`: the supervisor's children serve; count their CPU as the service's.
        children = {
            f"service {n}": child.pid
            for n, child in enumerate(psutil.Process(service.pid).children(recursive=True))
        }
        try:
            with CpuMeter(
                service=service.pid, emulators=bench.emulators.process.pid, **children
            ) as meter:
                latencies, errors, window, pushed = await _load(
                    bench, service, conversations, mode, meter
                )
            backlog = await bench.db.fetchrow(
                """
                SELECT (SELECT count(*) FROM push_jobs WHERE fanned_out_at IS NULL) AS jobs,
                       (SELECT count(*) FROM push_deliveries WHERE status = 'pending') AS deliveries
                """
            )
            if mode == API_ONLY and latencies:
                await _open_loops(bench, service, conversations, len(latencies) / window / 2)
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
        figures[mode] = window_figures(latencies, window, meter.seconds)
        rate, p50, p95, p99, cpu_ms = (
            figures[mode][k] for k in ("rate", "p50", "p95", "p99", "cpu_ms")
        )
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
        add(Figure(SCENARIO, variant, "server CPU per message", "ms", [cpu_ms]))
        add(
            Figure(
                SCENARIO,
                variant,
                "PostgreSQL CPU per message (all its processes)",
                "ms",
                [figures[mode]["postgres_ms"]],
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
        if mode in (BARE, API_ONLY, API_TWO):
            continue
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

    if not {API_ONLY, BARE} <= figures.keys():
        return
    api, bare = figures[API_ONLY]["rate"], figures[BARE]["rate"]
    add = bench.results.add
    add(
        Figure(
            SCENARIO,
            API_ONLY,
            "messages/s (target)",
            "/s",
            [api],
            target="≥ 600",
            met=api >= 600,
        )
    )
    add(
        Figure(
            SCENARIO,
            "api only ÷ bare",
            "messages/s of the service ÷ the bare ceiling",
            "x",
            [api / bare],
            target="≥ 0.60",
            met=api / bare >= 0.60,
        )
    )
    if API_TWO in figures:
        add(
            Figure(
                SCENARIO,
                "2 processes ÷ 1",
                "API messages/s scaling (--workers 2 ÷ 1)",
                "x",
                [figures[API_TWO]["rate"] / api],
            )
        )
    if not {"pushes on", "pushes off"} <= figures.keys():
        return
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


async def start_bare(settings: dict[str, str], workdir: Path) -> Service:
    """`bench.bare_send`: the same send without framework or ORM (the ceiling)."""
    port = free_port()
    log_path = workdir / "load-bare.log"
    process = spawn(
        ["-m", "bench.bare_send", str(port)], env=child_env(settings), log_path=log_path
    )
    service = Service(process, f"http://127.0.0.1:{port}", log_path)
    async with httpx.AsyncClient(timeout=2) as http:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"bare ceiling exited at start; see {log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{service.url}/health")).status_code == 200:
                    return service
            await asyncio.sleep(0.05)
    await service.stop()
    raise RuntimeError(f"bare ceiling did not start; see {log_path}")


async def _open_loops(
    bench: Bench, service: Service, conversations: list[tuple[str, dict[str, str]]], rate: float
) -> None:
    """Item 2: at half the closed-loop maximum, the REST send, then the WebSocket send (each
    sender's own connection), on the same server and conversations; p99 ≤ 50 ms each."""
    seconds = bench.sizes.load_seconds / 2
    for path, figure, measure in (
        ("REST", "POST /messages p99", rest_open_loop),
        ("WebSocket", "WebSocket message.send → message.ack p99", ws_open_loop),
    ):
        result = await measure(service, conversations, rate=rate, seconds=seconds)
        log(
            f"  open loop, {path}, at {rate:.0f} msg/s: p99 {result.p99_ms:.0f} ms, "
            f"{result.answered} answered, {result.failures} failed"
        )
        bench.results.diagnose(
            "send load open loop", path, {"rate": rate, **dataclasses.asdict(result)}
        )
        bench.results.add(
            Figure(
                SCENARIO,
                f"{API_ONLY}, open loop at ½ max ({rate:.0f}/s)",
                figure,
                "ms",
                [result.p99_ms],
                target="≤ 50",
                met=result.p99_ms <= 50 and not result.failures,
                note=f"{result.failures} failed" if result.failures else None,
            )
        )


async def _load(
    bench: Bench,
    service: Service,
    conversations: list[tuple[str, dict[str, str]]],
    mode: str,
    meter: CpuMeter | None = None,
) -> tuple[list[float], list[str], float, int]:
    """Closed loop: every client posts, waits for the answer, posts again.

    `meter` is restarted and stopped with the measured window, so CPU per message divides
    the window's CPU by the window's messages (not the warm-up's too).

    Each client has its own connection (its own aiohttp session), as separate devices would.
    """
    sizes = bench.sizes
    latencies: list[float] = []
    timeline: list[tuple[float, float]] = []
    errors: list[str] = []
    # aiohttp, one connection per client: httpx cost the benchmark process ~2.7 ms of CPU per
    # request, more than the bare ceiling's server, on the same 2 cores.
    base = service.url + API  # type: ignore[operator]
    clients = [
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1), timeout=aiohttp.ClientTimeout(total=60)
        )
        for _ in conversations
    ]

    async def post(
        http: aiohttp.ClientSession, conversation_id: str, headers: dict[str, str]
    ) -> int:
        url = f"{base}/conversations/{conversation_id}/messages"
        async with http.post(url, json={"content": CONTENT}, headers=headers) as response:
            await response.read()
            return response.status

    try:
        # One request per client first: connections open before the clock starts, 10 ms
        # apart as real clients would (opened at once, `serve --workers N` would see one
        # process accept them all: asyncio accepts every pending connection per wake-up).
        async def first_post(
            index: int, http: aiohttp.ClientSession, c: str, h: dict[str, str]
        ) -> int:
            await asyncio.sleep(index * 0.01)
            return await post(http, c, h)

        await asyncio.gather(
            *(
                first_post(i, http, c, h)
                for i, (http, (c, h)) in enumerate(zip(clients, conversations, strict=True))
            )
        )
        measure_from = time.perf_counter() + sizes.load_warmup_seconds
        end = measure_from + sizes.load_seconds
        counted_from: int | None = None

        async def client(
            http: aiohttp.ClientSession, conversation_id: str, headers: dict[str, str]
        ) -> None:
            while (started := time.perf_counter()) < end:
                try:
                    status = await post(http, conversation_id, headers)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors.append(
                        f"{type(exc).__name__} after {time.perf_counter() - started:.2f} s"
                    )
                    continue
                elapsed = time.perf_counter() - started
                if status != 201:
                    errors.append(f"HTTP {status}")
                elif started >= measure_from:
                    latencies.append(elapsed)
                    timeline.append((started - measure_from, elapsed))

        async def window_marks() -> None:
            nonlocal counted_from
            await asyncio.sleep(measure_from - time.perf_counter())
            counted_from = await bench.emulators.total()
            service.profile_start()
            if meter is not None:
                meter.start()
            await asyncio.sleep(end - time.perf_counter())
            if meter is not None:
                meter.stop()
            service.profile_stop()

        marks = asyncio.create_task(window_marks())
        await asyncio.gather(
            *(client(http, c, h) for http, (c, h) in zip(clients, conversations, strict=True))
        )
        await marks
        pushed = await bench.emulators.total() - (counted_from or 0)
        window = max(time.perf_counter() - measure_from, sizes.load_seconds)
    finally:
        await asyncio.gather(*(http.close() for http in clients))
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
