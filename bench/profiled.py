"""Run a module under pyinstrument, profiling only between SIGUSR1 (start) and SIGUSR2 (stop).

    python -m bench.profiled OUT_PREFIX -- backend.app.cli serve --port 8001

Each SIGUSR2 writes, for the window since the last SIGUSR1 (so the report shows the
fan-out and not start-up or idle time between runs):

- `OUT_PREFIX-<n>.txt` / `.html` / `.pyisession`: pyinstrument's call tree (wall-clock
  sampling of the main thread, where the event loop runs: time the loop waits for I/O
  shows under the loop's run frame, CPU work under its functions);
- `OUT_PREFIX-<n>.sql.txt`: every SQL statement of the window (SQLAlchemy cursor events
  on all engines: start offset, duration including event-loop delays), summed per
  statement, then as a timeline;
- garbage-collector pauses of the window (count and total per generation) and the time
  connection checkouts waited for the pool, at the top of the `.sql.txt` file.

`BENCH_GC_FREEZE=1` (an experiment, not what the service does) calls `gc.freeze()` when the
first window starts, to measure what the collector costs the service.

`BENCH_PROFILE_SAMPLING=0` skips pyinstrument (only the SQL/GC statistics, at a fraction of
its overhead, so their timings stay close to an unprofiled run).

Nothing in the application is changed: the hooks are class-level SQLAlchemy events and
`gc.callbacks` and a timing wrapper around `QueuePool._do_get`, installed by this wrapper
before the application is imported.
"""

from __future__ import annotations

import gc
import json
import os
import runpy
import signal
import sys
import time
from pathlib import Path
from typing import Any


class WindowStats:
    def __init__(self) -> None:
        self.active = False
        self.started = self.ended = 0.0
        self.statements: list[tuple[float, float, str]] = []  # (offset, seconds, statement)
        self.gc: dict[int, list[float]] = {}
        self.gc_intervals: list[tuple[float, float, int]] = []  # wall-clock (start, end, gen)
        self._gc_started = 0.0
        self._gc_started_wall = 0.0
        self.tracked_objects = 0
        self.pool_waits: list[float] = []

    def start(self) -> None:
        self.statements, self.gc, self.gc_intervals, self.pool_waits = [], {}, [], []
        self.tracked_objects = len(gc.get_objects())
        self.started = time.perf_counter()
        self.active = True

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if not self.active:
            return
        if phase == "start":
            self._gc_started = time.perf_counter()
            self._gc_started_wall = time.time()
        else:
            generation = info.get("generation", -1)
            self.gc.setdefault(generation, []).append(time.perf_counter() - self._gc_started)
            self.gc_intervals.append((self._gc_started_wall, time.time(), generation))

    def before(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def after(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        started = conn.info["bench_started"].pop()
        if self.active:
            text = " ".join(statement.split())
            self.statements.append((started - self.started, time.perf_counter() - started, text))

    def stop(self) -> None:
        self.active = False
        self.ended = time.perf_counter()

    def report(self) -> str:
        window = self.ended - self.started
        lines = [
            f"window {window:.3f} s",
            f"objects tracked by the garbage collector at the start: {self.tracked_objects:,}",
        ]
        for generation, pauses in sorted(self.gc.items()):
            lines.append(
                f"gc generation {generation}: {len(pauses)} collections, "
                f"{sum(pauses) * 1000:.1f} ms total, longest {max(pauses) * 1000:.1f} ms"
            )
        if self.pool_waits:
            waits = sorted(self.pool_waits)
            lines.append(
                f"connection pool checkouts: {len(waits)}, waited {sum(waits):.3f} s in total, "
                f"p50 {waits[len(waits) // 2] * 1000:.1f} ms, "
                f"p99 {waits[int(len(waits) * 0.99)] * 1000:.1f} ms, max {waits[-1] * 1000:.1f} ms"
            )
        totals: dict[str, list[float]] = {}
        for _, seconds, text in self.statements:
            totals.setdefault(text[:110], []).append(seconds)
        lines.append("")
        lines.append("statements (count, total ms, max ms, statement):")
        for text, values in sorted(totals.items(), key=lambda kv: -sum(kv[1])):
            lines.append(
                f"{len(values):6d} {sum(values) * 1000:9.1f} {max(values) * 1000:8.1f}  {text}"
            )
        lines.append("")
        lines.append("timeline (start offset ms, duration ms, statement):")
        for offset, seconds, text in self.statements:
            lines.append(f"{offset * 1000:9.1f} {seconds * 1000:8.1f}  {text[:110]}")
        return "\n".join(lines) + "\n"


def _time_pool_checkouts(stats: WindowStats) -> None:
    """How long each connection checkout waited for the pool (QueuePool._do_get)."""
    from sqlalchemy.pool import QueuePool

    original = QueuePool._do_get

    def timed(self: QueuePool) -> Any:
        started = time.perf_counter()
        try:
            return original(self)
        finally:
            if stats.active:
                stats.pool_waits.append(time.perf_counter() - started)

    QueuePool._do_get = timed  # type: ignore[method-assign]


def main() -> None:
    from pyinstrument import Profiler
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if len(sys.argv) < 4 or sys.argv[2] != "--":
        raise SystemExit("usage: python -m bench.profiled OUT_PREFIX -- MODULE [ARGS...]")
    prefix = Path(sys.argv[1])
    module, args = sys.argv[3], sys.argv[4:]
    stats = WindowStats()
    gc.callbacks.append(stats.on_gc)
    event.listen(Engine, "before_cursor_execute", stats.before)
    event.listen(Engine, "after_cursor_execute", stats.after)
    _time_pool_checkouts(stats)
    state: dict[str, Any] = {"profiler": None, "n": 0}

    sampling = os.environ.get("BENCH_PROFILE_SAMPLING", "1") != "0"

    freeze = os.environ.get("BENCH_GC_FREEZE") == "1"

    def start(*_: object) -> None:
        if not stats.active:
            if freeze:  # what-if experiment: start-up objects out of the collector's way
                gc.freeze()
            stats.start()
            if sampling:
                profiler = Profiler(interval=0.001, async_mode="disabled")
                profiler.start()
                state["profiler"] = profiler

    def stop(*_: object) -> None:
        if not stats.active:
            return
        profiler = state["profiler"]
        state["profiler"] = None
        if profiler is not None:
            profiler.stop()
        stats.stop()
        state["n"] += 1
        out = prefix.parent / f"{prefix.name}-{state['n']}"
        if profiler is not None:
            out.with_suffix(".txt").write_text(profiler.output_text(show_all=False))
            profiler.last_session.save(str(out.with_suffix(".pyisession")))
            out.with_suffix(".html").write_text(profiler.output_html())
            out.with_suffix(".gc.json").write_text(json.dumps(stats.gc_intervals))
        out.with_suffix(".sql.txt").write_text(stats.report())  # written last: "done" marker

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
