"""`python -m bench [--smoke] [--only NAME ...] [--profile]`: run the benchmark suite.

Prints one table on stdout (progress goes to stderr) and writes `bench/results.json`.
Exit status 0 when every scenario produced its figures, 1 when one raised (how fast
anything was never decides the exit status).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

from bench import (
    digest,
    fanout,
    fanout_scaling,
    feature_cost,
    large_fanout,
    memory,
    notifications,
    presence,
    pruning,
    send_cluster,
    send_load,
)
from bench.context import FULL, SMOKE, Bench
from bench.report import Results, machine_info, render_table
from bench.stack import (
    connect_db,
    discard_push_backlog,
    hold_off_pruning,
    log,
    make_workdir,
    postgres_version,
    start_emulators,
    start_infrastructure,
)

BENCH_DIR = Path(__file__).resolve().parent
# Cheap and independent scenarios first; pruning last (its million rows would only slow the
# others' setup, never their measurements: fan-out touches devices by user id).
SCENARIOS = {
    "presence": presence.run,
    "fanout": fanout.run,
    "fanout_scaling": fanout_scaling.run,  # 1 vs 2 `messenger worker` processes
    "send_load": send_load.run,
    "send_cluster": send_cluster.run,  # needs a Redis 7 redis-server, else skipped
    "feature_cost": feature_cost.run,
    "memory": memory.run,
    "digest": digest.run,
    "notifications": notifications.run,
    "large_fanout": large_fanout.run,
    "pruning": pruning.run,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat (CI)")
    parser.add_argument(
        "--only", nargs="+", choices=list(SCENARIOS), help="run only these scenarios"
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="sampling",
        choices=["sampling", "stats"],
        help="run the service under bench.profiled during fan-out and load: pyinstrument "
        "plus SQL/GC statistics ('sampling', the default), or the statistics alone ('stats'); "
        "writes bench/profiles/*; results.json is not written",
    )
    parser.add_argument(
        "--output", type=Path, default=BENCH_DIR / "results.json", help="where to write figures"
    )
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    mode = "smoke" if args.smoke else "full"
    results = Results(mode=mode)
    workdir = make_workdir()
    log(f"mode {mode}; logs of the service and emulators under {workdir}")
    if args.profile:
        os.environ["BENCH_PROFILE_SAMPLING"] = "1" if args.profile == "sampling" else "0"
    infra = await asyncio.to_thread(start_infrastructure)
    emulators = None
    db = None
    try:
        results.machine = machine_info(await postgres_version(infra.database_url))
        results.setup = {"postgres_redis": infra.source, "database": infra.database_name}
        emulators = await start_emulators(workdir)
        db = await connect_db(infra.database_url)
        await hold_off_pruning(db)
        bench = Bench(
            infra=infra,
            emulators=emulators,
            workdir=workdir,
            db=db,
            sizes=SMOKE if args.smoke else FULL,
            smoke=args.smoke,
            results=results,
            profile_dir=BENCH_DIR / "profiles" if args.profile else None,
        )
        for name, scenario in SCENARIOS.items():
            if args.only and name not in args.only:
                continue
            log(f"scenario {name}")
            scenario_started = time.monotonic()
            try:
                # Push work an earlier scenario left in the outbox (API-only servers leave
                # theirs by design) would be sent by this scenario's service and counted.
                await discard_push_backlog(db)
                await scenario(bench)
            except Exception as exc:
                traceback.print_exc()
                results.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            log(f"scenario {name} took {time.monotonic() - scenario_started:.1f} s")
        await presence.cleanup(bench)
    finally:
        if db is not None:
            await db.close()
        if emulators is not None:
            await emulators.close()
        await asyncio.to_thread(infra.close)
    elapsed = time.monotonic() - started
    results.setup["duration_seconds"] = round(elapsed, 1)

    print(render_table(results))
    print()
    print(
        f"mode {mode}, {elapsed:.0f} s; machine: {results.machine.get('cpu_count')} CPUs, "
        f"Python {results.machine.get('python')}, PostgreSQL {results.machine.get('postgres')}"
    )
    if results.errors:
        print("\nERRORS:", *results.errors, sep="\n  ")
    if not args.profile:
        results.write(args.output)
        print(f"figures written to {args.output}")
    if not results.errors:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args(None))))
