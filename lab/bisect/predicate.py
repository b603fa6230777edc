"""A cell's figures and the predicate a bisect judges them by: `--bad-if "window > 5s"` asks "when did the window
become long" instead of "when did the cell start failing", for kernels that all fail the strict verdict.

The figures, in seconds after bob's rename, from the Verdict's fields (lab/outcome.py):
- `stale`: the last time alice read the old contents (stale_for; 0 if she never did).
- `estale`: how long ESTALE lasted, from its first read to the first read after its last one (estale_for).
- `first_new`: when she first read the new contents (first_new_after; never = infinite).
- `window`: how long the client served old data or ESTALE: stale + estale. The timelines seen so far show a
  stale phase from the rename on and an ESTALE phase after it or instead of it, so the sum is about when the bad
  phases ended: within one read interval, since stale ends at the last old read and estale at the read after its
  last one. A client that did not recover within the observation (the timeline ended on old data, ESTALE or an
  error: the verdict's `recovered` is false and `ended_in` is not `new`) has an infinite window, longer than any
  bound one can write. Other read errors are not part of the window; they fail the strict verdict as before.

An expression compares figures with durations: `window > 5s`, `estale >= 500ms and first_new > 2s`,
`stale > 1s or estale > 1s`. The operators are > >= < <=; `and` binds tighter than `or`; durations are written as
in matrix.yaml (5s, 500ms, 1.5s, 2m, or a plain number of seconds).

A run is then "fail" when the expression holds and "pass" when it does not; an error or a skip stays what it is,
because a lab failure says nothing about the kernel whatever the question.

Pure: text in, a Predicate out; a Verdict in, numbers and a status out.
"""
from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Callable

from ..outcome import Verdict
from ..spec import parse_duration

NEVER = math.inf


def _first_new(v: Verdict) -> float:
    return NEVER if v.first_new_after is None else float(v.first_new_after)


def _window(v: Verdict) -> float:
    # `recovered` also asks for `settle` seconds of new data at the end: a timeline cut short after its bad phase
    # ended is not "never"; one that ended on a bad read (or an old record without ended_in) is
    if not v.recovered and v.ended_in != "new":
        return NEVER
    return float(v.stale_for) + float(v.estale_for)


#: name → how to read it from a verdict (seconds), in the order they are listed to a user
FIGURES: dict[str, Callable[[Verdict], float]] = {
    "window": _window,
    "stale": lambda v: float(v.stale_for),
    "estale": lambda v: float(v.estale_for),
    "first_new": _first_new,
}
OPERATORS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_TOKEN = re.compile(r"\s*(>=|<=|[<>=!]=?|[A-Za-z_]\w*|\d+(?:\.\d+)?(?:\s*(?:ms|s|m|h)(?!\w))?[A-Za-z]*|\S)")


def figures(verdict: Verdict) -> dict[str, float]:
    """Every figure of a kernel result (pass or fail)."""
    return {name: read(verdict) for name, read in FIGURES.items()}


def seconds_text(value: float) -> str:
    """`25.3s`, `0.5s`, or `never` for an infinite figure."""
    return "never" if math.isinf(value) else f"{round(value, 1):g}s"


@dataclass(frozen=True)
class Comparison:
    figure: str
    op: str
    seconds: float

    def holds(self, values: dict[str, float]) -> bool:
        return OPERATORS[self.op](values[self.figure], self.seconds)

    def __str__(self) -> str:
        # microseconds at most, and never an exponent: the text must parse again
        return f"{self.figure} {self.op} {f'{self.seconds:.6f}'.rstrip('0').rstrip('.')}s"


@dataclass(frozen=True)
class Predicate:
    """Alternatives (`or`) of conditions that must all hold (`and`)."""

    alternatives: tuple[tuple[Comparison, ...], ...]

    def __str__(self) -> str:
        """The canonical text: parsing it again gives an equal predicate."""
        return " or ".join(" and ".join(map(str, conditions)) for conditions in self.alternatives)

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(c.figure for conditions in self.alternatives for c in conditions))

    def holds(self, verdict: Verdict) -> bool:
        values = figures(verdict)
        return any(all(c.holds(values) for c in conditions) for conditions in self.alternatives)

    def status(self, verdict: Verdict) -> str:
        """fail when it holds, pass when not; error and skip are no kernel result and stay as they are."""
        if verdict.status not in ("pass", "fail"):
            return verdict.status
        return "fail" if self.holds(verdict) else "pass"

    def explain(self, verdict: Verdict) -> str:
        """`window 25.3s: "window > 5s" holds`, with the figures it names."""
        if verdict.status not in ("pass", "fail"):
            return f'no figures ({verdict.status}): "{self}" not judged'
        values = figures(verdict)
        shown = ", ".join(f"{name} {seconds_text(values[name])}" for name in self.names)
        return f'{shown}: "{self}" {"holds" if self.holds(verdict) else "does not hold"}'


def parse(text: str) -> Predicate:
    """`window > 5s and estale > 1s or stale > 2s` → Predicate; ValueError with one line naming what is wrong."""
    tokens = _TOKEN.findall(text or "")
    if not tokens:
        raise ValueError('empty expression (e.g. "window > 5s")')
    alternatives, conditions, at = [], [], 0
    while True:
        conditions.append(_comparison(tokens, at))
        at += 3
        if at == len(tokens):
            alternatives.append(tuple(conditions))
            return Predicate(tuple(alternatives))
        joiner = tokens[at].lower()
        if joiner not in ("and", "or"):
            raise ValueError(f"expected 'and' or 'or' after \"{' '.join(tokens[at - 3:at])}\", got '{tokens[at]}'")
        if joiner == "or":
            alternatives.append(tuple(conditions))
            conditions = []
        at += 1
        if at == len(tokens):
            raise ValueError(f"nothing after '{joiner}'")


def _comparison(tokens: list[str], at: int) -> Comparison:
    name, op, value = (tokens[at:at + 3] + [None, None])[:3]
    if name not in FIGURES:
        raise ValueError(f"unknown figure '{name}' (allowed: {', '.join(FIGURES)})")
    if op is None:
        raise ValueError(f"'{name}' needs a comparison, e.g. \"{name} > 5s\"")
    if op not in OPERATORS:
        raise ValueError(f"unknown operator '{op}' (allowed: {' '.join(OPERATORS)})")
    if value is None:
        raise ValueError(f"'{name} {op}' needs a duration, e.g. \"{name} {op} 5s\"")
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise ValueError(f"bad duration '{value}' (e.g. 5s, 500ms, 1.5s, 2m)") from None
    return Comparison(name, op, seconds)
