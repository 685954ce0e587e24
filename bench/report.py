"""Figures, their statistics (median and min–max over repeats), the table and results.json."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    scenario: str
    variant: str
    name: str
    unit: str
    values: list[float]
    target: str | None = None  # human-readable, printed beside the figure
    met: bool | None = None  # None: no target
    note: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(median=self.median, min=self.low, max=self.high, repeats=len(self.values))
        return data


@dataclass
class Results:
    mode: str
    figures: list[Figure] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    setup: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # Per-run details that explain the figures (CPU seconds per process, outcomes, ...).
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def diagnose(self, scenario: str, key: str, value: Any) -> None:
        self.diagnostics.setdefault(scenario, {}).setdefault(key, []).append(value)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def write(self, path: Path) -> None:
        data = {
            "mode": self.mode,
            "machine": self.machine,
            "setup": self.setup,
            "figures": [f.as_dict() for f in self.figures],
            "errors": self.errors,
            "diagnostics": self.diagnostics,
        }
        path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def machine_info(postgres_version: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "postgres": postgres_version,
    }
    try:
        import psutil

        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # psutil is optional for this line only
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def number(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def render_table(results: Results) -> str:
    header = ("scenario", "variant", "figure", "median", "spread (min–max)", "n", "target", "met?")
    rows = []
    for f in results.figures:
        unit = f" {f.unit}" if f.unit else ""
        spread = f"{number(f.low)}–{number(f.high)}" if len(f.values) > 1 else "(1 run)"
        met = "" if f.met is None else ("yes" if f.met else "NO")
        rows.append(
            (
                f.scenario,
                f.variant,
                f.name,
                number(f.median) + unit,
                spread,
                str(len(f.values)),
                f.target or "",
                met,
            )
        )
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(header), line(tuple("-" * w for w in widths))]
    previous = None
    for f, row in zip(results.figures, rows, strict=True):
        if previous is not None and f.scenario != previous:
            out.append("")
        previous = f.scenario
        out.append(line(row))
    notes = [
        f"- {f.scenario} / {f.variant} / {f.name}: {f.note}" for f in results.figures if f.note
    ]
    if notes:
        out += ["", "Notes:", *notes]
    return "\n".join(out)
