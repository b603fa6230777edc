#!/usr/bin/env python3
"""Stability check (issue 14): two independent runs of the same matrix, compared cell by cell.

A table can be trusted only if running it again gives the same answer. This reads two run directories, adds each
cell's repeats up as the table does (lab/aggregate.py), and checks the criterion of docs/stability.md:

- every cell that is not flaky in either run has the same status in both (pass, fail, error, skip);
- a cell flaky in one run is reported with both sides: its runs disagree, so the other run's 3/3 can be the same
  behaviour sampled three times, but it is listed, never hidden;
- each cell's spread of figures (first new read, stale window, ESTALE window) is printed side by side.

    python bench/stability.py RUN_A RUN_B                 # a table on stdout; exit 0 when the criterion holds
    python bench/stability.py RUN_A RUN_B --markdown      # the Markdown table of docs/stability.md
    python bench/stability.py RUN_A RUN_B --json out.json

Exit: 0 criterion holds, 1 a non-flaky cell changed status or a cell is missing on one side, 2 bad arguments.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.aggregate import CellResult, cells_of  # noqa: E402
from lab.results import RunDir  # noqa: E402

FIGURE_NAMES = {"first_new_after": "new", "stale_for": "stale", "estale_for": "ESTALE"}


@dataclass(frozen=True)
class Row:
    """One cell in both runs and what the criterion says about it."""

    cell_id: str
    a: CellResult | None
    b: CellResult | None

    @property
    def flaky(self) -> bool:
        return any(side is not None and side.status == "flaky" for side in (self.a, self.b))

    @property
    def agreement(self) -> str:
        """same | flaky (one side or both flaky: listed, not a contradiction) | changed | missing."""
        if self.a is None or self.b is None:
            return "missing"
        if self.a.status == self.b.status:
            return "same"
        return "flaky" if self.flaky else "changed"


def compare_runs(a: list[CellResult], b: list[CellResult]) -> list[Row]:
    """Rows in the first run's cell order, then cells only the second run has."""
    by_b = {c.cell_id: c for c in b}
    rows = [Row(c.cell_id, c, by_b.get(c.cell_id)) for c in a]
    seen = {c.cell_id for c in a}
    rows += [Row(c.cell_id, None, c) for c in b if c.cell_id not in seen]
    return rows


def holds(rows: list[Row]) -> bool:
    return all(r.agreement in ("same", "flaky") for r in rows)


def spread_text(cell: CellResult | None) -> str:
    """`new 0.6–0.7 · ESTALE 27.6–28.0`: the min–max of each figure the cell's runs had."""
    if cell is None:
        return "—"
    parts = []
    for name, label in FIGURE_NAMES.items():
        values = cell.spread.get(name)
        if values:
            lo, hi = values
            parts.append(f"{label} {lo:.1f}" if lo == hi else f"{label} {lo:.1f}–{hi:.1f}")
    if cell.spread.get("never_recovers"):
        parts.append(f"never recovers ×{cell.spread['never_recovers']}")
    return " · ".join(parts) or "—"


def side_text(cell: CellResult | None) -> str:
    if cell is None:
        return "(not in this run)"
    return f"{cell.status} {cell.counts_text()}"


def counts(rows: list[Row]) -> dict[str, int]:
    out = {"same": 0, "flaky": 0, "changed": 0, "missing": 0}
    for r in rows:
        out[r.agreement] += 1
    return out


def markdown(rows: list[Row], name_a: str, name_b: str) -> str:
    lines = [f"| cell | {name_a} | spread | {name_b} | spread | agree |", "|---|---|---|---|---|---|"]
    marks = {"same": "✓ same", "flaky": "⚠ flaky", "changed": "✗ changed", "missing": "✗ missing"}
    for r in rows:
        lines.append(f"| {_md(r.cell_id)} | {side_text(r.a)} | {spread_text(r.a)} | {side_text(r.b)} | "
                     f"{spread_text(r.b)} | {marks[r.agreement]} |")
    c = counts(rows)
    lines.append("")
    lines.append(f"{len(rows)} cells: {c['same']} same, {c['flaky']} flaky in at least one run, "
                 f"{c['changed']} changed, {c['missing']} missing on one side — criterion "
                 f"{'holds' if holds(rows) else 'does not hold'}.")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """Cell ids go into a Markdown table: escape the characters that would break it."""
    return text.replace("\\", "\\\\").replace("|", "\\|")


def plain(rows: list[Row], name_a: str, name_b: str) -> str:
    width = max([len(r.cell_id) for r in rows] + [4])
    out = [f"{'cell':<{width}}  {name_a:<18} {name_b:<18} agree"]
    for r in rows:
        out.append(f"{r.cell_id:<{width}}  {side_text(r.a):<18} {side_text(r.b):<18} {r.agreement}")
        out.append(f"{'':<{width}}    {spread_text(r.a)}  |  {spread_text(r.b)}")
    c = counts(rows)
    out.append(f"{len(rows)} cells: {c['same']} same, {c['flaky']} flaky, {c['changed']} changed, "
               f"{c['missing']} missing — criterion {'holds' if holds(rows) else 'does not hold'}")
    return "\n".join(out) + "\n"


def to_json(rows: list[Row]) -> dict:
    return {"holds": holds(rows), "counts": counts(rows),
            "cells": [{"cell_id": r.cell_id, "agreement": r.agreement,
                       "a": r.a.to_dict() if r.a else None, "b": r.b.to_dict() if r.b else None} for r in rows]}


def load(path: Path) -> list[CellResult]:
    if not (path / "run.json").exists() and not list(path.glob("results*.jsonl")):
        raise SystemExit(f"stability.py: {path}: not a run directory")
    return cells_of(RunDir(path).all_records())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--markdown", action="store_true", help="print the Markdown table of docs/stability.md")
    parser.add_argument("--json", type=Path, help="also write the comparison as JSON here")
    args = parser.parse_args(argv)
    try:
        rows = compare_runs(load(args.run_a), load(args.run_b))
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 2
    names = (args.run_a.name, args.run_b.name)
    sys.stdout.write(markdown(rows, *names) if args.markdown else plain(rows, *names))
    if args.json:
        args.json.write_text(json.dumps(to_json(rows), indent=1) + "\n")
    return 0 if holds(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
