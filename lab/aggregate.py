"""From a cell's runs to one cell result: the rule that the table, `lab run`'s exit code, `pytest --matrix`,
`lab compare` and `lab bisect` share, so that one cell means the same thing everywhere.

A cell runs `repeats` times (each on a freshly reverted topology). Its status:
- **pass**: every run with a kernel result passed; **fail**: every one failed;
- **flaky**: they disagree (some passed, some failed);
- **error**: no run gave a kernel result (the lab failed every time); **skip**: the kernel cannot be had here.
Runs that ended in a lab ERROR next to runs with a kernel result are counted and shown, never voted.

Against history (kernels/*.yaml) a flaky cell counts as failing: in k of N runs the client served wrong data or
ESTALE, which an application would have seen k times. So a flaky cell where a pass is expected is a mismatch
(`lab run` exits 1, pytest FAILED "flaky k/N fail"), and one where a fail is expected is not (pytest XFAIL).
Consumers that need a plain pass or fail of a flaky cell choose a policy (`resolve`): skip (no verdict, the
default), pass, fail, or majority (a tie is no verdict). Pure: records in, values out.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .outcome import Verdict, fail_text, pass_text
from .results import ResultRecord, started_key

KERNEL_RESULTS = ("pass", "fail")
CELL_STATUSES = ("pass", "fail", "flaky", "error", "skip")
FLAKY_POLICIES = ("skip", "pass", "fail", "majority")
FIGURES = ("first_new_after", "stale_for", "estale_for")


@dataclass(frozen=True)
class Tally:
    """How a cell's runs ended: the counts the status is decided from."""

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0

    @classmethod
    def of(cls, statuses: list[str]) -> "Tally":
        """Anything that is not pass, fail or skip is a lab error."""
        return cls(passed=statuses.count("pass"), failed=statuses.count("fail"),
                   errors=sum(s not in ("pass", "fail", "skip") for s in statuses), skipped=statuses.count("skip"))

    @property
    def runs(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped

    @property
    def kernel_results(self) -> int:
        return self.passed + self.failed

    @property
    def status(self) -> str:
        if not self.kernel_results:
            return "skip" if self.skipped and not self.errors else "error"
        if self.passed and self.failed:
            return "flaky"
        return "pass" if self.passed else "fail"


def resolve(tally: Tally, flaky: str = "skip") -> str | None:
    """pass or fail for a cell, or None when it has no kernel verdict: an error, a skip, or a flaky cell under
    the `flaky` policy (skip: none; pass or fail: that; majority: the larger side, none on a tie)."""
    if flaky not in FLAKY_POLICIES:
        raise ValueError(f"unknown flaky policy '{flaky}' (allowed: {', '.join(FLAKY_POLICIES)})")
    status = tally.status
    if status in KERNEL_RESULTS:
        return status
    if status != "flaky" or flaky == "skip":
        return None
    if flaky in KERNEL_RESULTS:
        return flaky
    if tally.failed * 2 == tally.kernel_results:
        return None
    return "fail" if tally.failed * 2 > tally.kernel_results else "pass"


@dataclass
class CellResult:
    """One cell of the table: its runs (one record each, in repeat order) and what they add up to."""

    cell_id: str
    kernel: str
    params: dict
    expected: str                 # "pass" | "fail" | "unknown" (no history), from kernels/*.yaml
    runs: list[ResultRecord]
    repeats: int                  # runs asked for; more than len(runs) while some are still to run
    tally: Tally = field(init=False)

    def __post_init__(self):
        self.tally = Tally.of([r.status for r in self.runs])

    @property
    def status(self) -> str:
        return self.tally.status

    @property
    def verdicts(self) -> list[Verdict]:
        return [r.verdict_obj for r in self.runs]

    @property
    def missing(self) -> int:
        return max(self.repeats - len(self.runs), 0)

    @property
    def planned(self) -> int:
        """N of `k/N`: the runs asked for (or made, if a resume asked for fewer)."""
        return max(self.repeats, len(self.runs))

    @property
    def mismatch(self) -> str | None:
        """A kernel result that contradicts history: regression, unexpected-pass, or flaky where a pass is
        expected. Errors and skips say nothing about the kernel."""
        if self.expected == "pass" and self.status in ("fail", "flaky"):
            return "regression" if self.status == "fail" else "flaky"
        if self.expected == "fail" and self.status == "pass":
            return "unexpected-pass"
        if self.expected == "unknown" and self.status in ("fail", "flaky"):   # no history: a failure is news
            return "no-history" if self.status == "fail" else "flaky"
        return None

    @property
    def kernel_release(self) -> str:
        releases = Counter(r.kernel_release for r in self.runs if r.kernel_release)
        return releases.most_common(1)[0][0] if releases else ""

    @property
    def duration_s(self) -> float:
        return round(sum(r.duration_s for r in self.runs), 1)

    @property
    def spread(self) -> dict:
        """min and max of each figure over the runs with a kernel result where the figure applies: the first new
        read, the last stale read and the ESTALE window (None where no run had it)."""
        verdicts = [v for v in self.verdicts if v.status in KERNEL_RESULTS]
        out: dict = {}
        for name in FIGURES:
            values = [getattr(v, name) for v in verdicts]
            values = [x for x in values if x is not None and (name == "first_new_after" or x > 0)]
            out[name] = [min(values), max(values)] if values else None
        out["never_recovers"] = sum(not v.recovered for v in verdicts)
        return out

    def counts_text(self) -> str:
        """`2/3 fail`, `3/3`: how many runs agreed (the count, not a rate, is what a reader can check)."""
        t = self.tally
        if self.status == "flaky":
            return f"{t.failed}/{self.planned} fail"
        agreeing = {"pass": t.passed, "fail": t.failed, "error": t.errors, "skip": t.skipped}[self.status]
        return f"{agreeing}/{self.planned}"

    def summary(self) -> str:
        """The table's text for the cell. One run of one: that run's own summary. Several: how many agreed and the
        spread of their figures, `✓ 3/3 new after 0.5–0.7s`, `✗ 3/3 ESTALE 24.1–25.0s`, and for runs that
        disagree both sides, `⚠ flaky 2/3 fail · ✗ ESTALE 0.6–0.7s · ✓ new after 0.5s`."""
        if self.planned == 1 and self.runs:
            return self.runs[0].verdict_obj.summary()
        verdicts = self.verdicts
        passed = [v for v in verdicts if v.status == "pass"]
        failed = [v for v in verdicts if v.status == "fail"]
        status = self.status
        if status == "pass":
            text = f"✓ {self.counts_text()} {pass_text(passed)}"
        elif status == "fail":
            text = f"✗ {self.counts_text()} {_fail_groups(failed)}"
        elif status == "flaky":
            text = f"⚠ flaky {self.counts_text()} · ✗ {_fail_groups(failed)} · ✓ {pass_text(passed)}"
        else:
            first = next(v for v in verdicts if v.status == status)
            mark, rest = first.summary().split(" ", 1)
            return f"{mark} {self.counts_text()} {rest}" + self._extras(status)
        return text + self._extras(status)

    def _extras(self, status: str) -> str:
        """Runs that gave no kernel result beside those that did, and runs still to do."""
        parts = []
        if self.tally.errors and status != "error":
            parts.append(f"{self.tally.errors} ERROR")
        if self.tally.skipped and status != "skip":
            parts.append(f"{self.tally.skipped} SKIP")
        if self.missing:
            parts.append(f"{self.missing} not run")
        return f" ({', '.join(parts)})" if parts else ""

    def to_dict(self) -> dict:
        t = self.tally
        return {"cell_id": self.cell_id, "kernel": self.kernel, "params": dict(self.params),
                "expected": self.expected, "status": self.status, "mismatch": self.mismatch,
                "summary": self.summary(), "repeats": self.repeats, "runs": len(self.runs),
                "counts": {"pass": t.passed, "fail": t.failed, "error": t.errors, "skip": t.skipped,
                           "not_run": self.missing},
                "spread": self.spread, "kernel_release": self.kernel_release}


def _fail_groups(failed: list[Verdict]) -> str:
    """Failing runs grouped by their shape (what failed, how it ended), each group with the spread of its figures;
    the count of each group when they differ: `stale 27.1–27.3s ×2 / stale never recovers, ls clears ×1`."""
    groups: dict[tuple, list[Verdict]] = {}
    for v in failed:
        groups.setdefault(v.shape, []).append(v)
    if len(groups) == 1:
        return fail_text(failed)
    return " / ".join(f"{fail_text(group)} ×{len(group)}" for group in groups.values())


def aggregate(runs: list[ResultRecord], repeats: int | None = None) -> CellResult:
    """One cell's runs (the latest record of each repeat) → its cell result. `repeats`: how many were asked for
    (default: the most any of its records says)."""
    if not runs:
        raise ValueError("a cell result needs at least one run")
    ordered = sorted(runs, key=lambda r: r.repeat)
    latest = max(runs, key=started_key)
    return CellResult(cell_id=latest.cell_id, kernel=latest.kernel, params=dict(latest.params),
                      expected=latest.expected, runs=ordered,
                      repeats=repeats if repeats is not None else max(r.repeats for r in runs))


def cells_of(records: list[ResultRecord]) -> list[CellResult]:
    """Every cell among the records, in the order the cells first appear; of several records of one run (cell,
    repeat) the one started last counts, as in RunDir.runs()."""
    by_cell: dict[str, dict[int, ResultRecord]] = {}
    for record in records:
        runs = by_cell.setdefault(record.cell_id, {})
        current = runs.get(record.repeat)
        if current is None or started_key(record) >= started_key(current):
            runs[record.repeat] = record
    return [aggregate(list(runs.values())) for runs in by_cell.values()]


def run_exit_code(cells: list[CellResult]) -> int:
    """`lab run`'s exit code from the table's cells: 1 if one contradicts history (a regression, an unexpected pass,
    or a flaky cell where a pass is expected) or a kernel without history fails, else 3 if one has no kernel
    result, else 0."""
    if any(c.mismatch for c in cells):
        return 1
    if any(c.status == "error" for c in cells):
        return 3
    return 0
