"""The table's grid: rows are kernels, columns axis combinations, each cell its runs added up (lab/aggregate.py)
and set against what history expects; the categories, the legend, the pass criterion, and --fail-on's count."""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from ..aggregate import CellResult, cells_of
from ..results import ResultRecord
from .context import Context


FORMATS = ("md", "html", "json", "junit")
NOT_RUN = "—"
CHANGED = "Δ"   # a cell whose verdict changed since the baseline

# category → (legend mark, meaning); the order is the legend's and the summary's order
CATEGORIES = {
    "pass": ("✓", "pass: the new contents were read within the pass criterion"),
    "expected-fail": ("✗ (expected)", "fails, as history says this kernel does"),
    "regression": ("⚠ regression", "expected to pass, failed"),
    "unexpected-pass": ("★ unexpected pass", "expected to fail, passed"),
    "no-history": ("✗ (no history)", "fails; an ad hoc kernel (lab run --kernel) has no history to hold it to"),
    "flaky": ("⚠ flaky", "the runs disagree: failed in k of N; a regression where a pass is expected"),
    "error": ("ERROR", "the lab failed; not a kernel result"),
    "skip": ("SKIP", "kernel not obtainable here"),
}
LEGEND_EXTRA = [(NOT_RUN, "not run"), ("3/3", "how many of the cell's runs agreed"),
                ("stale Ns / ESTALE Ns", "how long old data / Stale file handle lasted (a–bs: the spread over runs)"),
                ("2.04s > 2s", "hundredths where tenths would hide which side of the criterion a figure lies on"),
                ("ls clears", "an `ls` of the directory made the client read the new file"),
                ("only within the race window", "strictly a fail, but nothing was wrong once pass_within was over")]
#: what `lab table --fail-on` can fail on
FAIL_ON = ("regression", "unexpected-pass", "no-history", "flaky", "error", "skip")
#: the cells that carry a rerun command: all but a pass and a kernel that cannot be had
RERUN = ("expected-fail", "regression", "unexpected-pass", "no-history", "flaky", "error")
#: the ones `lab run` lists after its table: those that decided its exit code
MISMATCHES = ("regression", "unexpected-pass", "no-history", "flaky", "error")
UPSTREAM_COMMIT = "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/commit/?id={}"


# ---- the grid ------------------------------------------------------------------------------------------------------

def category(cell: CellResult) -> str:
    """Where a cell falls, judged against what was expected of the kernel."""
    if cell.status in ("error", "skip", "flaky"):
        return cell.status
    if cell.mismatch:
        return cell.mismatch
    return "pass" if cell.status == "pass" else "expected-fail"


def cell_text(cell: CellResult | None) -> str:
    """`✓ new after 0.5s`, `✗ (expected) 3/3 stale never recovers, ls clears`, `⚠ regression ✗ stale 5s`…"""
    if cell is None:
        return NOT_RUN
    summary = cell.summary()
    kind = category(cell)
    if kind in ("expected-fail", "no-history"):
        return CATEGORIES[kind][0] + summary.removeprefix("✗")
    if kind in ("regression", "unexpected-pass"):
        return f"{CATEGORIES[kind][0]} {summary}"
    if kind == "flaky" and cell.expected == "fail":
        return f"{summary} (fail expected)"
    return summary


def column_label(params: dict) -> str:
    return " ".join(f"{key}={value}" for key, value in params.items())


@dataclass
class Grid:
    """The table's shape, independent of the output format. Rows are the kernels with a result; `unrun` the
    matrix's other kernels (a run of some rows, or one still going), named under the table instead of a row of
    dashes each."""

    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], CellResult]
    unrun: list[str] = field(default_factory=list)

    def get(self, row: str, column: str) -> CellResult | None:
        return self.cells.get((row, column))

    def results(self) -> list[CellResult]:
        """In table order (row-major), so every output lists them the same way."""
        return [c for row in self.rows for col in self.columns if (c := self.get(row, col)) is not None]

    def anchors(self) -> dict[str, str]:
        """cell id → the HTML id of its cell: stable (from the cell id alone), and unique within the page."""
        taken: set[str] = set()
        out = {}
        for cell in self.results():
            base = anchor(cell.cell_id)
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base}-{n}"
            taken.add(name)
            out[cell.cell_id] = name
        return out


def anchor(cell_id: str, prefix: str = "cell-") -> str:
    """`debian-6.1/vers=4.1/leases=on` → `cell-debian-6.1__vers-4.1__leases-on`: a fragment that needs no escaping
    in a URL or a CSS selector."""
    slug = re.sub(r"[^A-Za-z0-9._-]", "-", cell_id.replace("/", "__").replace("=", "-"))
    return prefix + slug


def build_grid(records: list[ResultRecord], meta: dict | None = None) -> Grid:
    """Every run's record in (RunDir.runs()), one cell per cell id out (lab/aggregate.py). Rows in meta["kernels"]
    order (else first appearance); columns from meta["axes"] (else first appearance). A record's params are put in
    the axes' order first: stored JSON may list them in another order."""
    meta = meta or {}
    axes = list(meta.get("axes") or [])
    cells = cells_of(records)
    rows = list(meta.get("kernels") or [])
    rows += [k for k in dict.fromkeys(c.kernel for c in cells) if k not in rows]
    columns = _columns_from_axes(meta.get("axes")) if meta.get("axes") else []
    labels = {c.cell_id: column_label(in_axis_order(c.params, axes)) for c in cells}
    columns += [col for col in dict.fromkeys(labels[c.cell_id] for c in cells) if col not in columns]
    ran = {c.kernel for c in cells}
    return Grid([r for r in rows if r in ran], columns, {(c.kernel, labels[c.cell_id]): c for c in cells},
                unrun=[r for r in rows if r not in ran])


def in_axis_order(params: dict, axes: list[str]) -> dict:
    known = {key: params[key] for key in axes if key in params}
    return {**known, **{key: value for key, value in params.items() if key not in known}}


def _columns_from_axes(axes: dict) -> list[str]:
    return [column_label(dict(zip(axes, values))) for values in itertools.product(*axes.values())]


def counts(cells: list[CellResult]) -> dict[str, int]:
    """How many cells per category; errors and skips are counted apart from pass and fail."""
    result = {name: 0 for name in CATEGORIES}
    for cell in cells:
        result[category(cell)] += 1
    result["total"] = len(cells)
    return result


def summary_line(cells: list[CellResult]) -> str:
    numbers = counts(cells)
    return " · ".join(f"{numbers[name]} {name.replace('-', ' ')}" for name in CATEGORIES
                      if name not in ONLY_WHEN_SEEN or numbers[name])


#: categories the summary and the legend name only in a table that has such a cell
ONLY_WHEN_SEEN = ("flaky", "no-history")


def legend(context: Context | None = None, cells: list[CellResult] | None = None) -> list[tuple[str, str]]:
    extra = [(CHANGED, "the verdict changed since the baseline run (pass ↔ fail, as `lab compare` counts it)")]
    seen = {category(c) for c in cells or []}
    return ([mark_meaning for name, mark_meaning in CATEGORIES.items() if name != "no-history" or name in seen]
            + LEGEND_EXTRA + (extra if context and context.baseline else []))


def pass_within(cells: list[CellResult], meta: dict) -> float | None:
    """The criterion the cells were judged by: run.json's experiment, else what each verdict kept."""
    within = (meta.get("experiment") or {}).get("pass_within")
    if within is None:
        within = next((v.pass_within for c in cells for v in c.verdicts if v.pass_within is not None), None)
    return within


def criterion_line(cells: list[CellResult], meta: dict) -> str:
    """The pass criterion in one line, with the runs per cell: from run.json's experiment, else from the records
    (each verdict keeps the pass_within it was judged by)."""
    within = pass_within(cells, meta)
    runs = runs_a_cell(cells, meta)
    when = f"from {within:g}s after the rename" if within is not None else "from pass_within after the rename"
    return (f"pass: every read {when} shows the new contents, none goes back to the old ones, and no read after "
            f"the rename fails (ESTALE or another error); {runs} run{'s' if runs != '1' else ''} per cell, "
            f"flaky when they disagree")


def runs_a_cell(cells: list[CellResult], meta: dict) -> str:
    planned = sorted({c.planned for c in cells}) or [(meta.get("experiment") or {}).get("repeats", 1)]
    return f"{planned[0]}" if len(planned) == 1 else f"{planned[0]}–{planned[-1]}"


def fail_on_hits(cells: list[CellResult], fail_on: set[str]) -> dict[str, int]:
    """The categories among `fail_on` that the table has, with their counts (`lab table --fail-on`)."""
    numbers = counts(cells)
    return {name: numbers[name] for name in FAIL_ON if name in fail_on and numbers[name]}
