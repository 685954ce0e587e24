"""Summarise a profile written by `python -m bench --profile`: where the process's time went.

    python -m bench.profile_report bench/profiles/fanout-0ms [--top 25]

Reads `<name>.pyisession` (pyinstrument samples of the main thread, i.e. the event loop)
and `<name>.gc.json` (garbage-collector pauses of the same window), and prints shares of
the window: idle (the loop waiting for I/O), garbage collection (samples that fell inside
a collection, whatever frame triggered it), the application's functions (inclusive), and
self time per library.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

IDLE_LEAVES = {"run", "run_forever", "_run_once", "select", "poll"}


def _parse(frame: str) -> tuple[str, str]:
    """(function, file) of one pyinstrument frame identifier."""
    parts = frame.split("\x00")
    return parts[0], parts[1] if len(parts) > 1 else ""


def _package(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/backend/app/" in path:
        return "backend.app"
    if path.startswith("<"):
        return path
    return "stdlib/" + Path(path).stem


def summarise(base: Path, top: int) -> str:
    from pyinstrument.session import Session

    session = Session.load(str(base.with_suffix(".pyisession")))
    gc_file = base.with_suffix(".gc.json")
    pauses = json.loads(gc_file.read_text()) if gc_file.exists() else []
    total = sum(t for _, t in session.frame_records) or 1.0
    at = session.start_time
    idle = in_gc = 0.0
    inclusive: dict[str, float] = defaultdict(float)
    self_by_package: dict[str, float] = defaultdict(float)
    gc_by_generation: dict[int, float] = defaultdict(float)
    pause_index = 0
    for stack, seconds in session.frame_records:
        middle = at + seconds / 2
        at += seconds
        while pause_index < len(pauses) and pauses[pause_index][1] < middle:
            pause_index += 1
        if pause_index < len(pauses) and pauses[pause_index][0] <= middle:
            in_gc += seconds
            gc_by_generation[pauses[pause_index][2]] += seconds
            continue
        frames = [_parse(f) for f in stack if not f.startswith("\x01")]
        if not frames:
            continue
        leaf_function, leaf_file = frames[-1]
        if leaf_function in IDLE_LEAVES and (
            "asyncio" in leaf_file or "selectors" in leaf_file or "uvloop" in leaf_file
        ):
            idle += seconds
            continue
        self_by_package[_package(leaf_file)] += seconds
        seen = set()
        for function, path in frames:
            if "/backend/app/" in path:
                key = f"{function}  {path.split('/backend/app/', 1)[1]}"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += seconds

    lines = [
        f"{base.name}: window {total:.3f} s, {len(session.frame_records)} samples, "
        f"process CPU {session.cpu_time:.3f} s",
        f"  idle (event loop waiting)        {idle:7.3f} s  {100 * idle / total:5.1f} %",
        f"  garbage collection               {in_gc:7.3f} s  {100 * in_gc / total:5.1f} %"
        + "".join(
            f"  gen{g}: {s:.3f} s ({sum(1 for p in pauses if p[2] == g)} pauses)"
            for g, s in sorted(gc_by_generation.items())
        ),
        "",
        "  application functions, inclusive (excluding GC and idle):",
    ]
    for key, seconds in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"    {seconds:7.3f} s  {100 * seconds / total:5.1f} %  {key}")
    lines += ["", "  self time by package (excluding GC and idle):"]
    for key, seconds in sorted(self_by_package.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"    {seconds:7.3f} s  {100 * seconds / total:5.1f} %  {key}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_report")
    parser.add_argument("profiles", nargs="+", type=Path, help="path without suffix")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for base in args.profiles:
        print(summarise(base, args.top))
        print()


if __name__ == "__main__":
    main()
