"""The benchmark's figures: what was measured, the goal it is held to, the baseline measured in the same run, the
ratio between them, and whether the goal is met. Pure (no clock, no I/O): the table and the JSON are tested
without VMs (tests/unit/test_bench.py).

A figure holds its samples (one per `--runs`); the measured value and the baseline are their medians, so one
unlucky run under load does not decide the verdict, and min–max shows how noisy the machine was.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table
from rich.text import Text

NONE = "—"
UNITS = {"s": "s", "MiB": "MiB", "x": "×", "": ""}
OPS = {"<=": "≤", ">=": "≥", "==": "="}


@dataclass(frozen=True)
class Goal:
    """`≤ 20 s`, `≥ 5×`, `= no`: a bound on a figure's measured value (or on its ratio)."""

    op: str                  # "<=", ">=", "=="
    value: float | str | bool
    unit: str = ""

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"goal op {self.op!r} (allowed: {', '.join(OPS)})")

    def met(self, x) -> bool | None:
        """None when there is nothing to judge (the figure was not measured)."""
        if x is None:
            return None
        if self.op == "==":
            return x == self.value
        return x <= self.value if self.op == "<=" else x >= self.value

    def __str__(self) -> str:
        return f"{OPS[self.op]} {fmt(self.value, self.unit)}"


@dataclass
class Figure:
    """One row of the benchmark's table.

    `goal` bounds the measured value, `ratio_goal` the ratio against the baseline (both may be set: the cold up
    must be ≤ 20 s *and* ≥ 5× faster than the stock box). The ratio is "how many times better than the baseline":
    baseline / measured for times and memory (lower is better), measured / baseline otherwise."""

    key: str
    name: str
    unit: str = "s"
    samples: list = field(default_factory=list)
    goal: Goal | None = None
    baseline_samples: list = field(default_factory=list)
    baseline_name: str = ""
    ratio_goal: Goal | None = None
    lower_is_better: bool = True
    detail: str = ""
    error: str | None = None

    @property
    def measured(self):
        return median(self.samples)

    @property
    def baseline(self):
        return median(self.baseline_samples)

    @property
    def ratio(self) -> float | None:
        m, b = self.measured, self.baseline
        if not _number(m) or not _number(b) or m <= 0 or b <= 0:
            return None
        return b / m if self.lower_is_better else m / b

    @property
    def met(self) -> bool | None:
        """True only if every goal the figure has is met; None if it has none or nothing was measured."""
        if self.error is not None:
            return False
        verdicts = [g.met(v) for g, v in ((self.goal, self.measured), (self.ratio_goal, self.ratio)) if g]
        if not verdicts or any(v is None for v in verdicts):
            return None
        return all(verdicts)

    @property
    def goal_text(self) -> str:
        parts = [str(g) for g in (self.goal, self.ratio_goal) if g]
        return ", ".join(parts) if parts else NONE

    @property
    def spread(self) -> str:
        """`n=3, 21.0–24.5 s` when there was more than one sample."""
        nums = [s for s in self.samples if _number(s)]
        if len(nums) < 2:
            return ""
        return f"n={len(nums)}, {fmt(min(nums), '')}–{fmt(max(nums), self.unit)}"

    def to_dict(self) -> dict:
        return {"key": self.key, "name": self.name, "unit": self.unit, "measured": self.measured,
                "samples": self.samples, "goal": self.goal_text if self.goal or self.ratio_goal else None,
                "baseline": self.baseline, "baseline_samples": self.baseline_samples,
                "baseline_name": self.baseline_name or None, "ratio": _round(self.ratio), "met": self.met,
                "detail": self.detail or None, "error": self.error}


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def median(samples: list):
    """The median of the numeric samples; for yes/no or names, the last one."""
    nums = [s for s in samples if _number(s)]
    if nums:
        return statistics.median(nums)
    return samples[-1] if samples else None


def _round(x):
    return round(x, 2) if isinstance(x, float) else x


def fmt(x, unit: str = "") -> str:
    """`23.4 s`, `345 MiB`, `5.8×`, `no`, `—`."""
    if x is None:
        return NONE
    if isinstance(x, bool):
        return "yes" if x else "no"
    if not _number(x):
        return str(x)
    if isinstance(x, int):                      # goals are whole numbers: `≤ 20 s`, `≥ 5×`
        return f"{x}×" if unit == "x" else f"{x} {UNITS.get(unit, unit)}".strip()
    if unit == "x":
        return f"{x:.1f}×"
    if unit == "MiB":
        return f"{x:.0f} MiB"
    text = f"{x:.1f}" if abs(x) < 100 else f"{x:.0f}"
    return f"{text} {UNITS.get(unit, unit)}".strip()


def mark(met: bool | None) -> str:
    return {True: "✓", False: "✗", None: NONE}[met]


def rows(figures: list[Figure]) -> list[list[str]]:
    """figure | measured | goal | baseline | ratio | met? — as text, one list per figure."""
    out = []
    for f in figures:
        measured = f"error: {f.error}" if f.error else fmt(f.measured, f.unit)
        baseline = fmt(f.baseline, f.unit) + (f" ({f.baseline_name})" if f.baseline_name and f.baseline_samples
                                              else "")
        out.append([f.name, measured, f.goal_text, baseline, fmt(f.ratio, "x"), mark(f.met)])
    return out


HEADERS = ("figure", "measured", "goal", "baseline", "ratio", "met?")


def table(figures: list[Figure], title: str = "nfslab benchmark") -> Table:
    """Every cell a `Text`: figure names and error messages are shown as they are, never read as markup."""
    t = Table(title=Text(title, style="table.title"), show_lines=False)
    for h in HEADERS:
        t.add_column(h, justify="right" if h in ("measured", "ratio") else "left",
                     overflow="fold")
    for f, row in zip(figures, rows(figures)):
        style = {True: "green", False: "red", None: ""}[f.met]
        t.add_row(*[Text(c) for c in row[:-1]], Text(row[-1], style=style))
    return t


def render_text(figures: list[Figure], width: int = 160, title: str = "nfslab benchmark") -> str:
    """The table as plain text, plus one line of detail per figure that has some (what each figure includes)."""
    console = Console(width=width, record=True, file=_Null(), color_system=None)
    console.print(table(figures, title))
    if notes(figures):
        console.print("\n".join(notes(figures)), markup=False, highlight=False)
    return console.export_text()


def notes(figures: list[Figure]) -> list[str]:
    """One line per figure that has a spread or a detail: what the number includes, how noisy it was."""
    return [f"- {f.name}: {'; '.join(x for x in (f.spread, f.detail) if x)}" for f in figures if f.spread or f.detail]


def summary(figures: list[Figure]) -> dict:
    judged = [f for f in figures if f.met is not None]
    return {"met": sum(1 for f in judged if f.met), "missed": sum(1 for f in judged if not f.met),
            "not_judged": len(figures) - len(judged)}


class _Null:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass
