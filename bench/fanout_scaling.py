"""Scenario 1b: fan-out across `messenger worker` processes, 1 vs 2 (issue 13, item 3).

The deployment where the API and the push work are apart: `messenger serve
--no-background` takes the POST, two `messenger worker` processes run the push work. One
message goes into a conversation of the fan-out scenario's size (1,000 offline recipients
× 2 devices, providers mixed), emulators at a 50 ms round trip. Each repeat runs once with
one worker and once with both (order alternating), back to back, so machine noise hits the
pair alike.

- One worker: the other is paused (SIGSTOP) for the run. Both processes stay up for the
  whole scenario, so both keep their connections and provider tokens warm, and a paused
  process can take no work and spends no CPU. Each is warmed up alone first.
- Clock: as in `fanout.py`, from the POST response to the emulators' own timestamp of the
  last acceptance (`Emulators.wait_for_total`), so polling never enters the figure.
- CPU: seconds of each worker, the API, the emulators, PostgreSQL and this process during
  each run (`CpuMeter`), and of the whole machine (`psutil.cpu_times`: on a shared machine
  others' work too); divided by the run's wall time they say what was saturated.

Workers find a new job on their sweep (an API-only process never kicks them), so the
sweep interval is lowered to 0.1 s here: the default 1 s would add 0-1 s of pickup to a
run of about a second and a half.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass

import httpx
import psutil

from bench.context import Bench
from bench.fanout import CONTENT, SENDER_NAME, TITLE
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
    wait_for_job_done,
)

SCENARIO = "1b fan-out across workers"
LATENCY_MS = 50.0
SWEEP_SECONDS = "0.1"
VARIANTS = {1: "1 worker", 2: "2 workers"}


@dataclass(frozen=True)
class Run:
    """One fan-out: emulator timestamps relative to the POST response, and CPU seconds."""

    pushes: int
    first: float  # ack → first acceptance (s)
    last: float  # ack → last acceptance (s)
    cpu: dict[str, float]  # per process, plus "wall" (the meter's window)

    @property
    def rate(self) -> float:
        return self.pushes / self.last

    @property
    def delivery_rate(self) -> float:
        """Pushes/s once the first push went out: without the sweep's pickup."""
        return self.pushes / (self.last - self.first)

    @property
    def worker_cpu(self) -> float:
        return sum(v for k, v in self.cpu.items() if k.startswith("worker"))

    def busy(self, *names: str) -> float:
        """Cores kept busy by these processes during the run (CPU seconds ÷ wall seconds)."""
        seconds = sum(self.worker_cpu if n == "workers" else self.cpu[n] for n in names)
        return seconds / self.cpu["wall"]


def machine_cpu() -> float:
    """CPU seconds every process of the machine spent so far (ours and anyone else's)."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq


def pause(worker: Service, paused: bool) -> None:
    os.kill(worker.pid, signal.SIGSTOP if paused else signal.SIGCONT)


async def run(bench: Bench) -> None:
    sizes = bench.sizes
    emulators = bench.emulators
    sender = bench.users("fscale", 1, start=10**6)[0]
    recipients = bench.users("fscale", sizes.fanout_recipients)
    log(f"fan-out scaling: creating {len(recipients)} recipients × 2 devices")
    devices = await create_devices(bench.db, emulators, recipients, per_user=2)
    conversation_id = await create_conversation(
        bench.db, title=TITLE, owner=sender, members=recipients
    )
    expected = len(devices)
    timeout = 60 + expected * 0.05
    await discard_push_backlog(bench.db)  # the workers must find this scenario's jobs only
    settings = service_settings(bench.infra, emulators, PUSH_SWEEP_INTERVAL_SECONDS=SWEEP_SECONDS)
    api = await start_service("serve", settings, bench.workdir, name="fscale-api", background=False)
    workers: list[Service] = []
    paused: set[int] = set()
    runs: dict[int, list[Run]] = {1: [], 2: []}
    try:
        for name in ("a", "b"):
            workers.append(
                await start_service("worker", settings, bench.workdir, name=f"fscale-worker-{name}")
            )
        async with httpx.AsyncClient(base_url=api.url + API, timeout=60) as http:

            async def once(active: list[Service]) -> Run:
                for worker in workers:
                    if worker not in active:
                        pause(worker, True)
                        paused.add(worker.pid)
                try:
                    await emulators.reset(LATENCY_MS)
                    pids = {f"worker_{n}": w.pid for n, w in zip("ab", workers, strict=True)}
                    with CpuMeter(**pids, api=api.pid, emulators=emulators.process.pid) as meter:
                        machine = machine_cpu()
                        response = await http.post(
                            f"/conversations/{conversation_id}/messages",
                            json={"content": CONTENT},
                            headers=bearer(sender, name=SENDER_NAME),
                        )
                        acked = time.time()
                        response.raise_for_status()
                        message_id = response.json()["id"]
                        last = await emulators.wait_for_total(expected, within=timeout)
                        done = await wait_for_job_done(bench.db, message_id, timeout)
                        machine = machine_cpu() - machine
                finally:
                    for worker in workers:
                        if worker.pid in paused:
                            pause(worker, False)
                            paused.discard(worker.pid)
                if last is None or not done:
                    raise RuntimeError(
                        f"fan-out with {len(active)} worker(s) did not finish within "
                        f"{timeout:.0f} s (emulators saw {await emulators.total()} of {expected})"
                    )
                delivered = await bench.db.fetchval(
                    "SELECT count(*) FROM push_deliveries d JOIN push_jobs j ON j.id = d.job_id "
                    "WHERE j.message_id = $1 AND d.status = 'delivered'",
                    uuid.UUID(message_id),
                )
                if delivered != expected:
                    raise RuntimeError(f"{delivered} of {expected} pushes recorded as delivered")
                first = await emulators.first_acceptance(limit=expected)
                cpu = {**meter.seconds, "machine": round(machine, 3)}
                return Run(expected, first - acked, last - acked, cpu)

            log("fan-out scaling: warm-up of each worker alone")
            for worker in workers:
                await once([worker])
            for repeat in range(sizes.fanout_repeats):
                order = (1, 2) if repeat % 2 == 0 else (2, 1)
                for count in order:
                    active = workers if count == 2 else [workers[repeat % 2]]
                    result = await once(active)
                    runs[count].append(result)
                    bench.results.diagnose(
                        "fanout_scaling cpu seconds", VARIANTS[count], result.cpu
                    )
                    log(
                        f"fan-out scaling #{repeat + 1}, {VARIANTS[count]}: "
                        f"{result.rate:,.0f} pushes/s (ack → last {result.last:.3f} s, "
                        f"pickup {result.first:.3f} s); cpu s: "
                        + ", ".join(f"{k} {v:.2f}" for k, v in result.cpu.items())
                    )
    finally:
        for worker in workers:
            if worker.pid in paused:
                pause(worker, False)
            await worker.stop()
        await api.stop()
    report(bench, runs, expected)


def report(bench: Bench, runs: dict[int, list[Run]], expected: int) -> None:
    add = bench.results.add
    for count, variant in VARIANTS.items():
        done = runs[count]
        add(
            Figure(
                SCENARIO,
                variant,
                f"pushes/s (ack → last acceptance, {expected} pushes @{LATENCY_MS:g} ms)",
                "/s",
                [r.rate for r in done],
            )
        )
        add(
            Figure(
                SCENARIO,
                variant,
                "pushes/s (first → last acceptance)",
                "/s",
                [r.delivery_rate for r in done],
            )
        )
        add(Figure(SCENARIO, variant, "ack → first acceptance", "s", [r.first for r in done]))
        add(
            Figure(
                SCENARIO,
                variant,
                "worker CPU per push",
                "ms",
                [1000 * r.worker_cpu / r.pushes for r in done],
            )
        )
        for label, names in (
            ("workers", ("workers",)),
            ("emulators", ("emulators",)),
            ("PostgreSQL", ("postgres",)),
            ("whole stack", ("workers", "api", "emulators", "postgres", "bench")),
            ("whole machine (every process)", ("machine",)),
        ):
            values = [r.busy(*names) for r in done]
            add(Figure(SCENARIO, variant, f"cores busy: {label}", "cores", values))
    one, two = runs[1], runs[2]
    add(
        Figure(
            SCENARIO,
            "2 ÷ 1 workers",
            "pushes/s ratio (ack → last, paired per repeat)",
            "x",
            [b.rate / a.rate for a, b in zip(one, two, strict=True)],
        )
    )
    add(
        Figure(
            SCENARIO,
            "2 ÷ 1 workers",
            "pushes/s ratio (first → last, paired per repeat)",
            "x",
            [b.delivery_rate / a.delivery_rate for a, b in zip(one, two, strict=True)],
        )
    )
