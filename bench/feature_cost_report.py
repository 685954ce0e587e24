"""Scenario 8's table (`feature_cost.py` measures): per-step costs, paired ratios, and each
feature's share of the end-to-end fan-out and send figures of scenarios 1 and 2."""

from __future__ import annotations

import statistics

from bench.context import Bench
from bench.cost_steps import Cost
from bench.report import Figure

SCENARIO = "8 feature cost"


def ratios(numerator: list[Cost], denominator: list[Cost], kind: str) -> list[float]:
    """Paired per repeat."""
    return [
        getattr(n, kind) / getattr(d, kind) for n, d in zip(numerator, denominator, strict=True)
    ]


def paired_difference(with_: list[Cost], without: list[Cost], kind: str) -> float:
    """Median of the per-repeat differences: a repeat's two variants run back to back, so
    the machine's drift (a send's CPU moved 1.3-2.7 ms between repeats of one run) cancels,
    which a difference of the two medians does not."""
    return statistics.median(
        getattr(w, kind) - getattr(o, kind) for w, o in zip(with_, without, strict=True)
    )


def report(
    bench: Bench,
    fan_out: dict[str, list[Cost]],
    send: dict[tuple[str, str], list[Cost]],
    *,
    deliveries: int,
    sends: int,
    whose: str,
) -> None:
    add = bench.results.add

    def per_step(variant: str, costs: list[Cost], noun: str) -> None:
        add(
            Figure(
                SCENARIO, variant, f"CPU per {noun} ({whose})", "ms", [c.cpu * 1e3 for c in costs]
            )
        )
        add(Figure(SCENARIO, variant, f"wall time per {noun}", "ms", [c.wall * 1e3 for c in costs]))

    def ratio(variant: str, name: str, values: list[float], target: bool) -> None:
        met = statistics.median(values) <= 1.10 if target else None
        add(Figure(SCENARIO, variant, name, "x", values, "≤ 1.10" if target else None, met))

    variant = f"fan-out DB step, {deliveries} deliveries"
    for name, costs in fan_out.items():
        per_step(f"{variant}, {name}", costs, "step")
    full = fan_out["all features"]
    for name in ("no badges", "no blocks", "no preferences (push off, quiet hours)"):
        feature = name.removeprefix("no ").split(" (")[0]
        ratio(
            variant, f"{feature}: CPU all ÷ without it", ratios(full, fan_out[name], "cpu"), False
        )
    # The step's own ratios are information: the target is throughput, which the
    # end-to-end shares below measure (the step is a small part of a fan-out or a send).
    ratio(variant, "CPU all features ÷ none (paired)", ratios(full, fan_out["none"], "cpu"), False)
    ratio(
        variant, "wall all features ÷ none (paired)", ratios(full, fan_out["none"], "wall"), False
    )
    added = paired_difference(full, fan_out["none"], "wall")
    pipeline = _figure(bench, "1 fan-out", "pipeline @50 ms", "ack → last acceptance")
    if pipeline is not None:  # scenario 1 ran: the same fan-out, end to end
        share = added / pipeline.median
        add(
            Figure(
                SCENARIO,
                variant,
                "added wall time ÷ pipeline ack → last acceptance @50 ms (scenario 1)",
                "x",
                [share],
                "≤ 0.10",
                share <= 0.10,
            )
        )

    send_variant = f"send transaction ({sends} in a row, half of them replies)"
    labels = {"with": "app send (with read state)", "without": "without read state"}
    for name, label in labels.items():
        per_step(f"{send_variant}, {label}", send[(name, "mix")], "send")
    app, bare = send[("with", "mix")], send[("without", "mix")]
    ratio(send_variant, "CPU with ÷ without read state (paired)", ratios(app, bare, "cpu"), False)
    ratio(send_variant, "wall with ÷ without read state (paired)", ratios(app, bare, "wall"), False)
    for kind, what in (
        ("plain", "after the sender's own message (read move)"),
        ("reply", "after another's message (read move; clear-on-read check at the fan-out)"),
    ):
        ratio(
            send_variant,
            f"{kind} sends, {what}: CPU with ÷ without",
            ratios(send[("with", kind)], send[("without", kind)], "cpu"),
            False,
        )
    # End to end: what the read-state work adds to a send (client + its PostgreSQL backend)
    # against the whole send's CPU in the API-only load test, measured alike: the service
    # process and PostgreSQL.
    api = _figure(bench, "2 send latency", "api only (--no-background)", "server CPU per message")
    postgres = _figure(bench, "2 send latency", "api only (--no-background)", "PostgreSQL CPU")
    if api is not None and postgres is not None:  # scenario 2 ran
        whole = api.median + postgres.median
        for kind in ("mix", "plain", "reply"):
            added = paired_difference(send[("with", kind)], send[("without", kind)], "cpu")
            target = kind == "mix"
            share = added * 1e3 / whole
            add(
                Figure(
                    SCENARIO,
                    send_variant,
                    f"{kind}: added CPU ÷ API send's CPU per message, service + PostgreSQL "
                    "(scenario 2)",
                    "x",
                    [share],
                    "≤ 0.10" if target else None,
                    share <= 0.10 if target else None,
                )
            )


def _figure(bench: Bench, scenario: str, variant: str, name_prefix: str) -> Figure | None:
    """A figure an earlier scenario of this run reported (None when it did not run)."""
    return next(
        (
            f
            for f in bench.results.figures
            if f.scenario == scenario and f.variant == variant and f.name.startswith(name_prefix)
        ),
        None,
    )
