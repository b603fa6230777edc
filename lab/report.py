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
from markupsafe import Markup
from rich.table import Table
from rich.text import Text

from .capture import describe
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


KIND_COLOURS = {"new": "#2e9e4f", "old": "#e0a020", "estale": "#d03030", "error": "#7040a0"}


def timeline_svg(observation: dict | None, width: int = 280, height: int = 30) -> str:
    """Alice's reads as a strip coloured by what they showed (green new, amber old, red ESTALE, purple error), one
    bar per run of equal reads, a line at the change (t = 0) and the time range — a stale window at a glance.
    Plain SVG, so the page stays one self-contained file."""
    runs = timeline_runs(observation)
    if not runs:
        return ""
    lo, hi = min(runs[0][1], 0.0), max(max(run[2] for run in runs), 0.0)
    span, pad = (hi - lo) or 1.0, 4
    reads = sum(run[3] for run in runs)
    step = (width - 2 * pad) / max(reads, 1)   # one read's width; a run of n reads is n steps wide

    def x(t: float) -> float:
        return round(pad + (t - lo) / span * (width - 2 * pad - step), 1)

    bars = [f'<rect x="{x(first)}" y="3" width="{round(x(last) - x(first) + step, 1)}" height="14" '
            f'fill="{KIND_COLOURS.get(kind, "#999")}"><title>{kind} {first:g}s…{last:g}s ×{n}</title></rect>'
            for kind, first, last, n in runs]
    zero = round(x(0.0) + step / 2, 1)
    start = f'<text x="{pad}" y="{height - 1}">{lo:g}s</text>' if zero - pad > 16 else ""  # no overprint of "0"
    labels = (f'{start}<text x="{zero}" y="{height - 1}" text-anchor="middle">0</text>'
              f'<text x="{width - pad}" y="{height - 1}" text-anchor="end">{hi:g}s</text>')
    return (f'<svg class="plot" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-size="8" font-family="sans-serif">{"".join(bars)}'
            f'<line x1="{zero}" y1="0" x2="{zero}" y2="20" stroke="#000" stroke-width="1"/>{labels}</svg>')


def trace_lines(observation: dict | None) -> list[tuple[str, str]]:
    """(client, its NFS operations after the change) from a cell's capture; empty without one."""
    trace = ((observation or {}).get("meta") or {}).get("trace") or {}
    return [(client, describe(trace[client]["after"])) for client in ("alice", "bob") if client in trace]


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
    lines += _markdown_traces(grid)
    return "\n".join(lines) + "\n"


def _markdown_traces(grid: Grid) -> list[str]:
    """For cells with a capture: what each client sent after the change, the figures that explain a verdict."""
    rows = [(record.cell_id, client, ops) for record in grid.records() for client, ops in
            trace_lines(record.observation)]
    if not rows:
        return []
    lines = ["", "**NFS operations after the change** (server-side capture):", "", "| cell | client | operations |",
             "|---|---|---|"]
    return lines + [f"| {cell} | {client} | {_md_escape(ops)} |" for cell, client, ops in rows]


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
.trace { font-family: monospace; font-size: 0.8em; color: #333; }
.key span { display: inline-block; width: 0.8em; height: 0.8em; margin: 0 0.3em 0 0.8em; }
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
{% if cell.svg %}<div>{{ cell.svg }}</div>
{% endif %}<div class="timeline">{{ cell.timeline or "no reads" }}</div>{% if cell.detail %}
<div>{{ cell.detail }}</div>{% endif %}{% for client, ops in cell.trace %}
<div class="trace">{{ client }} after t=0: {{ ops }}</div>{% endfor %}
<div>expected {{ cell.record.expected }}{% if cell.record.kernel_release %} · {{ cell.record.kernel_release }}{% endif %}{% if cell.server_release %} · server {{ cell.server_release }}{% endif %}{% if cell.record.logs %} · <a href="{{ cell.record.logs }}/">logs</a>{% endif %}{% if cell.pcap %} · <a href="{{ cell.pcap }}">pcap</a>{% endif %}</div>
</details>{% else %}{{ cell.text }}{% endif %}</td>
{% endfor %}</tr>
{% endfor %}</table>
<p><strong>Summary:</strong> {{ summary }}</p>
<h2>Legend</h2>
<p class="key">timeline:{% for kind, colour in colours %}<span style="background: {{ colour }}"></span>{{ kind }}{% endfor %} · the black line is the change (t = 0)</p>
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
    meta = (record.observation or {}).get("meta") or {}
    pcap = (meta.get("trace") or {}).get("pcap")
    return {"record": record, "css": category(record), "text": text, "hover": f"{record.cell_id}: {text}",
            "timeline": timeline_text(record.observation), "detail": verdict.detail,
            "svg": Markup(timeline_svg(record.observation)), "trace": trace_lines(record.observation),
            "server_release": meta.get("server_release"),
            "pcap": f"{record.logs}/{pcap}" if pcap and record.logs else None}


def _html(grid: Grid, title: str, meta: dict) -> str:
    rows = [{"name": row, "cells": [_html_cell(grid.get(row, col)) for col in grid.columns]} for row in grid.rows]
    template = Environment(autoescape=True, keep_trailing_newline=True).from_string(_HTML)
    return template.render(title=title, meta_line=_meta_line(meta), columns=grid.columns, rows=rows,
                           summary=summary_line(grid.records()), legend=legend(), colours=KIND_COLOURS.items())


# ---- terminal ------------------------------------------------------------------------------------------------------

TERMINAL_STYLES = {"pass": "green", "expected-fail": "yellow", "regression": "bold red",
                   "unexpected-pass": "bold blue", "error": "magenta", "skip": "dim"}


def render_terminal(records: list[ResultRecord], title: str = "", meta: dict | None = None) -> Table:
    """The same table for the pytest terminal summary and the CLI (rich does the layout and colours). Every text
    goes in as a `Text`: kernel names, axis values and error details are never read as rich markup."""
    grid = build_grid(records, meta)
    table = Table(title=Text(title, style="table.title") if title else None,
                  caption=Text(summary_line(grid.records()), style="table.caption"), show_lines=True)
    table.add_column(Text("kernel"), style="bold", no_wrap=True)
    for column in grid.columns:
        table.add_column(Text(column))
    for row in grid.rows:
        cells = []
        for column in grid.columns:
            record = grid.get(row, column)
            cells.append(Text(cell_text(record), style=TERMINAL_STYLES[category(record)] if record else "dim"))
        table.add_row(Text(row), *cells)
    return table

