"""The compatibility table: result records in, Markdown / HTML / JSON / JUnit / a rich table out.

Rows are kernels, columns are axis combinations. A cell shows the verdict's summary (how long stale data lasted,
ESTALE, whether `ls` cleared it) and how it compares with what history expects: a known failure is not news, a
regression or an unexpected pass is. Errors and skips are the lab's business and are never counted as a kernel's
pass or fail. Pure and deterministic — no clock, no I/O — so rendered tables can be checked against golden files.
"""
from __future__ import annotations

import itertools
import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass

from jinja2 import Environment
from rich.markup import escape
from rich.table import Table

from .results import ResultRecord

FORMATS = ("md", "html", "json", "junit")
NOT_RUN = "—"

# category → (legend mark, meaning); the order is the legend's and the summary's order
CATEGORIES = {
    "pass": ("✓", "pass: the new contents were read within the pass criterion"),
    "expected-fail": ("✗ (expected)", "fails, as history says this kernel does"),
    "regression": ("⚠ regression", "expected to pass, failed"),
    "unexpected-pass": ("★ unexpected pass", "expected to fail, passed"),
    "error": ("ERROR", "the lab failed; not a kernel result"),
    "skip": ("SKIP", "kernel not obtainable here"),
}
LEGEND_EXTRA = [(NOT_RUN, "not run"), ("stale Ns / ESTALE Ns", "how long old data / Stale file handle lasted"),
                ("ls clears", "an `ls` of the directory made the client read the new file")]


# ---- the grid ------------------------------------------------------------------------------------------------------

def category(record: ResultRecord) -> str:
    """Where a record falls, judged against what was expected of the kernel."""
    if record.status in ("error", "skip"):
        return record.status
    if record.mismatch:
        return record.mismatch
    return "pass" if record.status == "pass" else "expected-fail"


def cell_text(record: ResultRecord | None) -> str:
    """`✓ new after 0.5s`, `✗ (expected) stale never recovers, ls clears`, `⚠ regression ✗ stale 5s`…"""
    if record is None:
        return NOT_RUN
    summary = record.verdict_obj.summary()
    kind = category(record)
    if kind == "expected-fail":
        return "✗ (expected)" + summary.removeprefix("✗")
    if kind in ("regression", "unexpected-pass"):
        return f"{CATEGORIES[kind][0]} {summary}"
    return summary


def column_label(params: dict) -> str:
    return " ".join(f"{key}={value}" for key, value in params.items())


@dataclass
class Grid:
    """The table's shape, independent of the output format."""

    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], ResultRecord]

    def get(self, row: str, column: str) -> ResultRecord | None:
        return self.cells.get((row, column))

    def records(self) -> list[ResultRecord]:
        """In table order (row-major), so every output lists them the same way."""
        return [r for row in self.rows for col in self.columns if (r := self.get(row, col)) is not None]


def build_grid(records: list[ResultRecord], meta: dict | None = None) -> Grid:
    """Rows in meta["kernels"] order (else first appearance); columns from meta["axes"] (else first appearance).
    A record's params are put in the axes' order first: stored JSON may list them in another order."""
    meta = meta or {}
    axes = list(meta.get("axes") or [])
    rows = list(meta.get("kernels") or [])
    rows += [k for k in dict.fromkeys(r.kernel for r in records) if k not in rows]
    columns = _columns_from_axes(meta.get("axes")) if meta.get("axes") else []
    labels = {id(r): column_label(in_axis_order(r.params, axes)) for r in records}
    columns += [c for c in dict.fromkeys(labels[id(r)] for r in records) if c not in columns]
    return Grid(rows, columns, {(r.kernel, labels[id(r)]): r for r in records})


def in_axis_order(params: dict, axes: list[str]) -> dict:
    known = {key: params[key] for key in axes if key in params}
    return {**known, **{key: value for key, value in params.items() if key not in known}}


def _columns_from_axes(axes: dict) -> list[str]:
    return [column_label(dict(zip(axes, values))) for values in itertools.product(*axes.values())]


def counts(records: list[ResultRecord]) -> dict[str, int]:
    """How many cells per category; errors and skips are counted apart from pass and fail."""
    result = {name: 0 for name in CATEGORIES}
    for record in records:
        result[category(record)] += 1
    result["total"] = len(records)
    return result


def summary_line(records: list[ResultRecord]) -> str:
    numbers = counts(records)
    return " · ".join(f"{numbers[name]} {name.replace('-', ' ')}" for name in CATEGORIES)


def legend() -> list[tuple[str, str]]:
    return [mark_meaning for mark_meaning in CATEGORIES.values()] + LEGEND_EXTRA


def timeline_runs(observation: dict | None) -> list[tuple[str, float, float, int]]:
    """Alice's reads folded into runs of one kind: (kind, first t, last t, reads) — a 60-read timeline in 3 lines."""
    runs: list[list] = []
    for read in (observation or {}).get("reads", []):
        if runs and runs[-1][0] == read["kind"]:
            runs[-1][2] = read["t"]
            runs[-1][3] += 1
        else:
            runs.append([read["kind"], read["t"], read["t"], 1])
    return [tuple(run) for run in runs]


def timeline_text(observation: dict | None) -> str:
    """`old -2s…5s ×15, estale 5.5s…23s ×36, new 23.5s…30s ×14; after ls: new`."""
    parts = [f"{kind} {first:g}s…{last:g}s ×{n}" for kind, first, last, n in timeline_runs(observation)]
    after = (observation or {}).get("after_ls")
    if after:
        parts.append(f"after ls: {after['kind']}")
    return ", ".join(parts)


# ---- formats -------------------------------------------------------------------------------------------------------

def render(records: list[ResultRecord], fmt: str, title: str = "", meta: dict | None = None) -> str:
    """The table in one of FORMATS."""
    renderers = {"md": _markdown, "html": _html, "json": _json, "junit": _junit}
    if fmt not in renderers:
        raise ValueError(f"unknown table format {fmt!r} (allowed: {', '.join(FORMATS)})")
    return renderers[fmt](build_grid(records, meta), title, meta or {})


def _meta_line(meta: dict) -> str:
    """Only facts handed in (run id, start, server…): the renderer reads no clock, so goldens stay stable."""
    keys = ("run_id", "started", "finished", "wall_s", "server", "matrix", "command")
    return " · ".join(f"{key}: {meta[key]}" for key in keys if meta.get(key))


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(grid: Grid, title: str, meta: dict) -> str:
    lines = [f"# {title}", ""] if title else []
    if _meta_line(meta):
        lines += [_meta_line(meta), ""]
    lines.append("| kernel | " + " | ".join(grid.columns) + " |")
    lines.append("|---" * (len(grid.columns) + 1) + "|")
    for row in grid.rows:
        texts = [_md_escape(cell_text(grid.get(row, col))) for col in grid.columns]
        lines.append(f"| {row} | " + " | ".join(texts) + " |")
    lines += ["", f"**Summary:** {summary_line(grid.records())}", "", "**Legend:**", ""]
    lines += [f"- **{_md_escape(mark)}**: {meaning}" for mark, meaning in legend()]
    return "\n".join(lines) + "\n"


def _json(grid: Grid, title: str, meta: dict) -> str:
    document = {"title": title, "meta": meta, "summary": counts(grid.records()),
                "records": [dict(asdict(r), category=category(r)) for r in grid.records()]}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _junit(grid: Grid, title: str, meta: dict) -> str:
    """One testcase per cell; an expected failure is reported as passed with a note (it is an xfail)."""
    records = grid.records()
    numbers = counts(records)
    suite = ET.Element("testsuite", name=title or "nfslab", tests=str(len(records)),
                       failures=str(numbers["regression"]), errors=str(numbers["error"]),
                       skipped=str(numbers["skip"]),
                       time=f"{sum(r.duration_s for r in records):.1f}")
    for record in records:
        _junit_case(suite, record)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _junit_case(suite: ET.Element, record: ResultRecord) -> None:
    case = ET.SubElement(suite, "testcase", classname=record.kernel, name=column_label(record.params),
                         time=f"{record.duration_s:.1f}")
    verdict = record.verdict_obj
    kind = category(record)
    if kind == "regression":
        ET.SubElement(case, "failure", message=verdict.summary(), type="regression").text = \
            timeline_text(record.observation)
    elif kind == "error":
        ET.SubElement(case, "error", message=verdict.summary(), type=verdict.reason)
    elif kind == "skip":
        ET.SubElement(case, "skipped", message=verdict.reason)
    elif kind in ("expected-fail", "unexpected-pass"):
        ET.SubElement(case, "system-out").text = f"{cell_text(record)} (expected: {record.expected})"


# ---- HTML ----------------------------------------------------------------------------------------------------------

_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title or "nfslab" }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #bbb; padding: 0.4em 0.6em; vertical-align: top; text-align: left; }
th { background: #eee; }
td.pass { background: #d8f3d8; }
td.expected-fail { background: #f3e3c8; }
td.regression { background: #f7b8b8; font-weight: bold; }
td.unexpected-pass { background: #c8dcf7; font-weight: bold; }
td.error { background: #e0d0f0; }
td.skip, td.not-run { background: #f4f4f4; color: #777; }
details summary { cursor: pointer; }
.timeline { font-family: monospace; font-size: 0.85em; margin: 0.3em 0; }
.meta { color: #555; }
</style>
</head>
<body>
{% if title %}<h1>{{ title }}</h1>
{% endif %}{% if meta_line %}<p class="meta">{{ meta_line }}</p>
{% endif %}<table>
<tr><th>kernel</th>{% for col in columns %}<th>{{ col }}</th>{% endfor %}</tr>
{% for row in rows %}<tr><th>{{ row.name }}</th>
{% for cell in row.cells %}<td class="{{ cell.css }}" title="{{ cell.hover }}">{% if cell.record %}<details><summary>{{ cell.text }}</summary>
<div class="timeline">{{ cell.timeline or "no reads" }}</div>{% if cell.detail %}
<div>{{ cell.detail }}</div>{% endif %}
<div>expected {{ cell.record.expected }}{% if cell.record.kernel_release %} · {{ cell.record.kernel_release }}{% endif %}{% if cell.record.logs %} · <a href="{{ cell.record.logs }}/">logs</a>{% endif %}</div>
</details>{% else %}{{ cell.text }}{% endif %}</td>
{% endfor %}</tr>
{% endfor %}</table>
<p><strong>Summary:</strong> {{ summary }}</p>
<h2>Legend</h2>
<ul>
{% for mark, meaning in legend %}<li><strong>{{ mark }}</strong> — {{ meaning }}</li>
{% endfor %}</ul>
</body>
</html>
"""


def _html_cell(record: ResultRecord | None) -> dict:
    if record is None:
        return {"record": None, "css": "not-run", "text": NOT_RUN, "hover": "not run"}
    verdict = record.verdict_obj
    text = cell_text(record)
    return {"record": record, "css": category(record), "text": text, "hover": f"{record.cell_id}: {text}",
            "timeline": timeline_text(record.observation), "detail": verdict.detail}


def _html(grid: Grid, title: str, meta: dict) -> str:
    rows = [{"name": row, "cells": [_html_cell(grid.get(row, col)) for col in grid.columns]} for row in grid.rows]
    template = Environment(autoescape=True, keep_trailing_newline=True).from_string(_HTML)
    return template.render(title=title, meta_line=_meta_line(meta), columns=grid.columns, rows=rows,
                           summary=summary_line(grid.records()), legend=legend())


# ---- terminal ------------------------------------------------------------------------------------------------------

TERMINAL_STYLES = {"pass": "green", "expected-fail": "yellow", "regression": "bold red",
                   "unexpected-pass": "bold blue", "error": "magenta", "skip": "dim"}


def render_terminal(records: list[ResultRecord], title: str = "", meta: dict | None = None) -> Table:
    """The same table for the pytest terminal summary and the CLI (rich does the layout and colours)."""
    grid = build_grid(records, meta)
    table = Table(title=title or None, caption=summary_line(grid.records()), show_lines=True)
    table.add_column("kernel", style="bold", no_wrap=True)
    for column in grid.columns:
        table.add_column(column)
    for row in grid.rows:
        cells = []
        for column in grid.columns:
            record = grid.get(row, column)
            style = TERMINAL_STYLES[category(record)] if record else "dim"
            cells.append(f"[{style}]{escape(cell_text(record))}[/{style}]")
        table.add_row(row, *cells)
    return table

