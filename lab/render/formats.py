"""The table in each file format: Markdown, JSON and JUnit here, HTML in html.py."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import PurePosixPath

from ..aggregate import CellResult
from ..results import ResultRecord
from .context import Context
from .grid import (CATEGORIES, CHANGED, FORMATS, Grid, build_grid, category, cell_text, column_label, counts,
                   criterion_line, legend, summary_line)
from .provenance import heading, kernel_facts, meta_items, meta_line, rerun_command
from .timelines import failed_at_line, runs_of, timeline_text, trace_lines


def render(records: list[ResultRecord], fmt: str, title: str = "", meta: dict | None = None,
           context: Context | None = None) -> str:
    """The table in one of FORMATS."""
    from .html import render_html
    renderers = {"md": _markdown, "html": render_html, "json": _json, "junit": _junit}
    if fmt not in renderers:
        raise ValueError(f"unknown table format {fmt!r} (allowed: {', '.join(FORMATS)})")
    return renderers[fmt](build_grid(records, meta), title, meta or {}, context or Context())


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_text(text: str) -> str:
    """Free text outside a table, with nothing in it read as Markdown."""
    return re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", text.replace("\n", " "))


def _md_code(text: str) -> str:
    """A code span that holds any text: a fence longer than any run of backticks in it."""
    text = text.replace("\n", " ")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _markdown(grid: Grid, title: str, meta: dict, context: Context) -> str:
    cells = grid.results()
    changes = context.changes()
    lines = [f"# {_md_escape(heading(grid, meta, title))}", ""]
    if meta_items(meta, context):
        lines += [_md_escape(meta_line(meta, context)), ""]
    lines += [f"**Criterion:** {_md_escape(criterion_line(cells, meta))}", ""]
    lines.append("| kernel | " + " | ".join(grid.columns) + " |")
    lines.append("|---" * (len(grid.columns) + 1) + "|")
    for row in grid.rows:
        texts = []
        for col in grid.columns:
            cell = grid.get(row, col)
            text = context.public(cell_text(cell))
            texts.append(_md_escape(f"{CHANGED} {text}" if cell and cell.cell_id in changes else text))
        lines.append(f"| {row} | " + " | ".join(texts) + " |")
    if grid.unrun:
        lines += ["", f"**Not run:** {_md_escape(', '.join(grid.unrun))} (no results for these rows of the matrix)"]
    lines += ["", f"**Summary:** {summary_line(cells)}"]
    lines += _markdown_changes(context)
    lines += _markdown_reruns(grid, meta, context)
    lines += _markdown_kernels(grid, meta, context)
    lines += ["", "**Legend:**", ""]
    lines += [f"- **{_md_escape(mark)}**: {meaning}" for mark, meaning in legend(context, cells)]
    lines += _markdown_traces(grid)
    lines += _markdown_failed_at(grid, context)
    return "\n".join(lines) + "\n"


def _markdown_changes(context: Context) -> list[str]:
    """The cells whose verdict changed since the baseline, then how the other cells compared."""
    result = context.baseline
    if result is None:
        return []
    name = PurePosixPath(result.baseline).name or result.baseline
    lines = ["", f"**Changed since the baseline** {_md_code(name)}: {len(result.changes)} changed · "
                 f"{len(result.flaky)} flaky · {len(result.no_data)} without data · {len(result.added)} added · "
                 f"{len(result.removed)} removed · {result.unchanged} unchanged", ""]
    for c in result.changes:
        lines.append(f"- {CHANGED} {_md_code(c['cell'])} {c['direction']}: {_md_escape(c['before']['summary'])} → "
                     f"{_md_escape(c['after']['summary'])}")
    return lines if result.changes else lines[:-1]


def _markdown_reruns(grid: Grid, meta: dict, context: Context) -> list[str]:
    """A footnote list: the command that reruns each cell that did not pass."""
    commands = [(cell, command) for cell in grid.results() if (command := rerun_command(cell, meta, context))]
    if not commands:
        return []
    lines = ["", "**Rerun a cell** (each one that failed, was flaky or hit a lab error):", ""]
    return lines + [f"- {_md_code(cell.cell_id)} {CATEGORIES[category(cell)][0]} — rerun: {_md_code(command)}"
                    for cell, command in commands]


def _markdown_kernels(grid: Grid, meta: dict, context: Context) -> list[str]:
    """The rows' specs in a line each: title, and the commits they name linked to their upstream pages."""
    facts = [k for k in kernel_facts(grid, meta, context) if k["title"] or k["commits"]]
    if not facts:
        return []
    lines = ["", "**Kernels:**", ""]
    for k in facts:
        commits = ", ".join(f"[{sha}]({url})" for sha, url in k["commits"])
        role = " (server)" if k["server"] else ""
        lines.append(f"- **{_md_text(k['name'])}**{role}: {_md_text(k['title'])}"
                     + (f"; commits: {commits}" if commits else ""))
    return lines


def _markdown_traces(grid: Grid) -> list[str]:
    """For cells with a capture: what each client sent after the change, the figures that explain a verdict."""
    rows = [(f"{cell.cell_id} {label}".strip(), client, ops) for cell in grid.results()
            for label, run in runs_of(cell) for client, ops in trace_lines(run.observation)]
    if not rows:
        return []
    lines = ["", "**NFS operations after the change** (server-side capture):", "", "| cell | client | operations |",
             "|---|---|---|"]
    return lines + [f"| {_md_escape(cell)} | {client} | {_md_escape(ops)} |" for cell, client, ops in rows]


def _markdown_failed_at(grid: Grid, context: Context) -> list[str]:
    """One line per failing run with traced reads: the system call at which alice's reads went wrong."""
    found = [line for cell in grid.results() if cell.status in ("fail", "flaky")
             for _, run in runs_of(cell) if run.verdict_obj.status == "fail" and (line := failed_at_line(run))]
    if not found:
        return []
    lines = ["", "**Failed at** (alice's traced reads after the change, the commonest failing call):", ""]
    return lines + [f"- {_md_text(context.public(line))}" for line in dict.fromkeys(found)]


def _json(grid: Grid, title: str, meta: dict, context: Context) -> str:
    """`cells`: one entry per cell (status, counts, spread, its HTML anchor, its rerun command, its change since the
    baseline); `records`: every run, each with its cell's category."""
    cells = grid.results()
    anchors, changes = grid.anchors(), context.changes()
    document = {"title": heading(grid, meta, title), "meta": meta, "criterion": criterion_line(cells, meta),
                "summary": counts(cells), "not_run": grid.unrun,
                "cells": [dict(c.to_dict(), category=category(c), anchor=anchors[c.cell_id],
                               rerun=rerun_command(c, meta, context), changed=changes.get(c.cell_id))
                          for c in cells],
                "records": [dict(asdict(r), category=category(c)) for c in cells for r in c.runs]}
    if context.baseline:
        document["baseline"] = context.baseline.to_dict()
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _junit(grid: Grid, title: str, meta: dict, context: Context) -> str:
    """One testcase per cell, as pytest's junitxml reports the same outcomes: an expected failure is skipped
    (pytest.xfail) with its reason, an unexpected pass and a regression are failures, a flaky cell is a failure
    saying `flaky k/N fail` (skipped as an expected failure where history expects a fail), a lab error is an error,
    an unobtainable kernel is skipped. A failure's and an error's text ends with the cell's rerun command."""
    cells = grid.results()
    suite = ET.Element("testsuite", name=heading(grid, meta, title), tests=str(len(cells)))
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="criterion", value=criterion_line(cells, meta))
    outcomes = [_junit_case(suite, cell, rerun_command(cell, meta, context)) for cell in cells]
    suite.set("failures", str(outcomes.count("failure")))
    suite.set("errors", str(outcomes.count("error")))
    suite.set("skipped", str(outcomes.count("skipped")))
    suite.set("time", f"{sum(c.duration_s for c in cells):.1f}")
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _junit_case(suite: ET.Element, cell: CellResult, rerun: str | None) -> str:
    """Add the cell's testcase; returns its outcome element's tag ("" for a pass)."""
    case = ET.SubElement(suite, "testcase", classname=cell.kernel, name=column_label(cell.params),
                         time=f"{cell.duration_s:.1f}")
    summary = cell.summary()
    kind = category(cell)
    timelines = "\n".join(f"{label}: {timeline_text(run.observation)}" if label else timeline_text(run.observation)
                          for label, run in runs_of(cell))
    if rerun:
        timelines += f"\nrerun: {rerun}"
    if kind == "flaky":
        message = summary.removeprefix("⚠ ")
        if cell.expected == "fail":
            kind = "expected-fail"
        else:
            ET.SubElement(case, "failure", message=message, type="flaky").text = timelines
            return "failure"
    if kind == "expected-fail":
        note = summary.removeprefix("⚠ ")
        ET.SubElement(case, "skipped", type="pytest.xfail", message=f"expected failure: {note}")
        return "skipped"
    if kind in ("regression", "no-history"):
        ET.SubElement(case, "failure", message=summary, type=kind).text = timelines
        return "failure"
    if kind == "unexpected-pass":
        ET.SubElement(case, "failure", message=f"[XPASS(strict)] {summary} (expected: fail)",
                      type="unexpected-pass").text = timelines
        return "failure"
    if kind == "error":
        first = next(v for v in cell.verdicts if v.status == "error")
        ET.SubElement(case, "error", message=summary, type=first.reason).text = f"rerun: {rerun}"
        return "error"
    if kind == "skip":
        ET.SubElement(case, "skipped", type="pytest.skip", message=cell.verdicts[0].reason)
        return "skipped"
    return ""
