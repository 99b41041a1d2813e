"""Shared helpers for the benchmarks: the machine line, percentiles, the table, baselines.

A benchmark builds `Row`s (`stage | scale | measured | budget | ok?`), prints them with
`print_report`, and keeps its figures in `benchmarks/baseline/<name>.json` to compare runs
on the same machine (`save_baseline`, `compare_baseline`).
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BASELINE_DIR = Path(__file__).resolve().parent / "baseline"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_line() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu_model()} | {cores} cores usable | load average {load:.2f} | "
        f"Python {platform.python_version()} ({platform.python_implementation()}) | "
        f"numpy {np.__version__}"
    )


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


@dataclass(frozen=True)
class Row:
    stage: str
    scale: str
    measured: str
    budget: str
    ok: bool | None  # None: informational, no budget

    def cells(self) -> tuple[str, str, str, str, str]:
        verdict = "—" if self.ok is None else ("yes" if self.ok else "NO")
        return (self.stage, self.scale, self.measured, self.budget, verdict)


HEADER = ("stage", "scale", "measured", "budget", "ok?")


def format_table(rows: Sequence[Row]) -> str:
    cells = [HEADER, *(r.cells() for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = [" | ".join(c[i].ljust(widths[i]) for i in range(len(HEADER))) for c in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def print_report(title: str, rows: Sequence[Row]) -> None:
    print(f"{title}\nmachine: {machine_line()}\n")
    print(format_table(rows))


def save_baseline(name: str, figures: Mapping[str, float]) -> Path:
    BASELINE_DIR.mkdir(parents=True, exist_ok=True)
    path = BASELINE_DIR / f"{name}.json"
    doc = {"machine": machine_line(), "figures": dict(figures)}
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def compare_baseline(
    name: str, figures: Mapping[str, float], higher_is_better: bool = True
) -> list[str]:
    """One line per figure against the saved baseline; empty if there is none."""
    path = BASELINE_DIR / f"{name}.json"
    if not path.exists():
        return []
    doc = json.loads(path.read_text(encoding="utf-8"))
    base: dict[str, float] = doc.get("figures", {})
    lines = [f"baseline {path.name} (machine: {doc.get('machine', '?')})"]
    for key, value in figures.items():
        if key not in base or base[key] == 0:
            continue
        change = (value - base[key]) / base[key] * 100
        better = change >= 0 if higher_is_better else change <= 0
        lines.append(
            f"  {key}: {value:,.0f} vs {base[key]:,.0f} ({change:+.1f}%"
            f"{'' if better else ', worse'})"
        )
    return lines
