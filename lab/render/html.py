"""The compatibility table as one self-contained HTML page (lab/templates/report.html.j2), read at a glance:

- the grid, each cell expandable: its runs' timelines drawn to one time axis for the whole page (timeplot.py),
  the command that reruns it, what it was in the baseline, each run's figures, operations (on the wire, and the
  system calls alice's traced reads made), versions and logs;
- filters (only regressions, flaky, changed… cells) by a few lines of inline script, which also reads them from the
  URL (`table.html#only=regression,flaky`); without script the page is the whole table, as before;
- a stable anchor per cell (`#cell-debian-6.1__vers-4.1__leases-on`), linked from the window plots;
- the window plots: per axis combination, each kernel's stale/ESTALE window run by run, kernels in version order;
- the kernels' specs, with the commits they name linked to their upstream pages.

Every text goes through the template's autoescape; the SVG is built (and escaped) by timeplot.py. No external
resource: no stylesheet, script or font is fetched, links go only to the run's own files and to git.kernel.org.
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import PurePosixPath

from jinja2 import Environment
from markupsafe import Markup

from ..aggregate import KERNEL_RESULTS, CellResult
from ..bisect.predicate import figures
from ..compare import series_of
from ..outcome import seconds_text
from ..paths import REPORT_TEMPLATE
from ..results import ResultRecord
from ..safeload import link_target
from .context import Context
from .grid import (CATEGORIES, CHANGED, NOT_RUN, Grid, anchor, category, cell_text, counts, criterion_line, legend,
                   pass_within, summary_line)
from .provenance import heading, kernel_facts, meta_line, rerun_command
from .timelines import conditions_text, runs_of, syscall_line, timeline_text, trace_lines
from .timeplot import (KIND_COLOURS, NOREAD, TimeAxis, WindowRow, defs_svg, label_width, strips_svg,
                       windows_svg)

#: the filters the page offers, in this order: a category of the table, or "changed" (against a baseline)
FILTERS = ("regression", "unexpected-pass", "no-history", "flaky", "error", "expected-fail", "changed")


def render_html(grid: Grid, title: str, meta: dict, context: Context) -> str:
    cells = grid.results()
    anchors, changes = grid.anchors(), context.changes()
    axis = TimeAxis.fit(run.observation for cell in cells for run in cell.runs)
    criterion = pass_within(cells, meta)
    rows = [{"name": row, "anchor": anchor(row, "kernel-"),
             "title": str((context.specs.get(row) or {}).get("title") or ""),
             "cells": [_cell(grid.get(row, col), anchors, changes, meta, context, axis, criterion)
                       for col in grid.columns]} for row in grid.rows]
    releases = {row: _release(grid, row) for row in grid.rows}
    kernels = [dict(k, release=releases.get(k["name"], "")) for k in kernel_facts(grid, meta, context)]
    numbers = counts(cells)
    numbers["changed"] = len(changes)
    filters = [(name, _filter_label(name), numbers[name]) for name in FILTERS
               if numbers[name] or name in ("regression", "flaky") or (name == "changed" and context.baseline)]
    template = Environment(autoescape=True, keep_trailing_newline=True).from_string(REPORT_TEMPLATE.read_text())
    return template.render(
        heading=heading(grid, meta, title), meta_line=meta_line(meta, context), criterion=criterion_line(cells, meta),
        columns=grid.columns, rows=rows, unrun=grid.unrun, summary=summary_line(cells),
        legend=legend(context, cells),
        colours=KIND_COLOURS.items(), noread=NOREAD, defs=Markup(defs_svg()), filters=filters,
        windows=_windows(grid, meta, anchors, axis, criterion, context), kernels=kernels,
        baseline=context.baseline, changed_mark=CHANGED, criterion_s=criterion,
        baseline_name=PurePosixPath(context.baseline.baseline).name if context.baseline else "")


def _release(grid: Grid, row: str) -> str:
    """The release a row's kernel booted (the one most of its cells say)."""
    releases = Counter(c.kernel_release for col in grid.columns if (c := grid.get(row, col)) and c.kernel_release)
    return releases.most_common(1)[0][0] if releases else ""


def _filter_label(name: str) -> str:
    if name == "changed":
        return f"{CHANGED} changed since the baseline"
    return CATEGORIES[name][0]


def _cell(cell: CellResult | None, anchors: dict, changes: dict, meta: dict, context: Context, axis: TimeAxis,
          criterion: float | None) -> dict:
    if cell is None:
        return {"result": None, "css": "not-run", "text": NOT_RUN, "hover": "not run", "tags": ""}
    text = context.public(cell_text(cell))
    change = changes.get(cell.cell_id)
    kind = category(cell)
    several = len(cell.runs) > 1 or cell.planned > 1
    strips = strips_svg([(str(run.repeat) if several else "", run.observation) for run in cell.runs], axis, criterion)
    return {"result": cell, "css": kind, "text": text, "hover": f"{cell.cell_id}: {text}",
            "anchor": anchors[cell.cell_id], "tags": " ".join([kind] + (["changed"] if change else [])),
            "strips": Markup(strips), "rerun": rerun_command(cell, meta, context), "change": change,
            "runs": [_run(label, run, context) for label, run in runs_of(cell)]}


def _run(label: str, record: ResultRecord, context: Context) -> dict:
    verdict = record.verdict_obj
    meta = (record.observation or {}).get("meta") or {}
    pcap = (meta.get("trace") or {}).get("pcap")
    # a link only to a plain path inside the run directory: a record's `logs` could say `javascript:…` or `../..`
    logs_href = link_target(f"{record.logs}/") if record.logs and context.links else None
    pcap_href = link_target(f"{record.logs}/{pcap}") if logs_href and isinstance(pcap, str) else None
    return {"label": label, "record": record, "text": context.public(verdict.summary()),
            "timeline": timeline_text(record.observation), "detail": context.public(verdict.detail),
            "trace": trace_lines(record.observation), "conditions": conditions_text(record.observation),
            "syscalls": context.public(syscall_line(record.observation)),
            "server_release": meta.get("server_release"), "logs_href": logs_href,
            "logs_text": record.logs if record.logs and context.links and not logs_href else None,
            "pcap": pcap_href}


def _windows(grid: Grid, meta: dict, anchors: dict, axis: TimeAxis, criterion: float | None,
             context: Context) -> list[dict]:
    """One window plot per column, its kernels in release-version order (lab/compare.py's series_of: the
    version each kernel booted, else the one in its name)."""
    records = [run for cell in grid.results() for run in cell.runs]
    order = [k for k in series_of(records, meta) if k in grid.rows]
    columns = {column: [_window_row(cell, anchors, context) for kernel in order
                        if (cell := grid.get(kernel, column))] for column in grid.columns}
    labels = [row.label for rows in columns.values() for row in rows]
    scale = axis.from_zero(label_width(order), label_width(labels))   # one size for every plot of the page
    return [{"column": column, "svg": Markup(windows_svg(rows, scale, criterion))}
            for column, rows in columns.items() if rows]


def _window_row(cell: CellResult, anchors: dict, context: Context) -> WindowRow:
    """A kernel's row in a window plot: the runs with a kernel result, the window's spread (predicate.py's
    `window`: old data and ESTALE after the change; never = did not recover)."""
    runs = [run for run in cell.runs if run.status in KERNEL_RESULTS]
    windows = [figures(run.verdict_obj)["window"] for run in runs]
    finite = [w for w in windows if not math.isinf(w)]
    if not runs:
        label = "ERROR" if cell.status == "error" else "SKIP"
    elif cell.status == "pass":
        label = "✓"
    elif not finite:
        label = "never"
    else:
        label = seconds_text(finite) + ("…never" if len(finite) < len(windows) else "")
    if cell.status == "flaky":
        label = f"⚠ {label} ({cell.counts_text()})"
    # the spread of the windows that closed; a run that never recovered shows as its bar and arrow
    band = (min(finite), max(finite)) if finite and max(finite) > 0 else None
    return WindowRow(kernel=cell.kernel, runs=[(run.observation, not math.isinf(w)) for run, w in zip(runs, windows)],
                     label=label, title=f"{cell.cell_id}: {context.public(cell_text(cell))}", band=band,
                     href=f"#{anchors[cell.cell_id]}")
