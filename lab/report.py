"""The compatibility table: result records in, Markdown / HTML / JSON / JUnit / a rich table out.

Rows are kernels, columns are axis combinations. A cell adds up its runs (lab/aggregate.py): how many agreed, the
verdict's summary with the spread of its figures (how long stale data lasted, ESTALE, whether `ls` cleared it), and
how it compares with what history expects: a known failure is not news, a regression, an unexpected pass or a
flaky cell is. Errors and skips are the lab's business and are never counted as a kernel's pass or fail. Every
format states the pass criterion in one line. Pure and deterministic — no clock, no I/O — so rendered tables can
be checked against golden files.
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

from .aggregate import CellResult, cells_of
from .capture import describe
from .results import ResultRecord
from .syscalls import describe as describe_syscalls, main_failure
from .safeload import link_target

FORMATS = ("md", "html", "json", "junit")
NOT_RUN = "—"

# category → (legend mark, meaning); the order is the legend's and the summary's order
CATEGORIES = {
    "pass": ("✓", "pass: the new contents were read within the pass criterion"),
    "expected-fail": ("✗ (expected)", "fails, as history says this kernel does"),
    "regression": ("⚠ regression", "expected to pass, failed"),
    "unexpected-pass": ("★ unexpected pass", "expected to fail, passed"),
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
FAIL_ON = ("regression", "unexpected-pass", "flaky", "error", "skip")


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
    if kind == "expected-fail":
        return "✗ (expected)" + summary.removeprefix("✗")
    if kind in ("regression", "unexpected-pass"):
        return f"{CATEGORIES[kind][0]} {summary}"
    if kind == "flaky" and cell.expected == "fail":
        return f"{summary} (fail expected)"
    return summary


def column_label(params: dict) -> str:
    return " ".join(f"{key}={value}" for key, value in params.items())


@dataclass
class Grid:
    """The table's shape, independent of the output format."""

    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], CellResult]

    def get(self, row: str, column: str) -> CellResult | None:
        return self.cells.get((row, column))

    def results(self) -> list[CellResult]:
        """In table order (row-major), so every output lists them the same way."""
        return [c for row in self.rows for col in self.columns if (c := self.get(row, col)) is not None]


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
    return Grid(rows, columns, {(c.kernel, labels[c.cell_id]): c for c in cells})


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
                      if name != "flaky" or numbers[name])


def legend() -> list[tuple[str, str]]:
    return [mark_meaning for mark_meaning in CATEGORIES.values()] + LEGEND_EXTRA


def criterion_line(cells: list[CellResult], meta: dict) -> str:
    """The pass criterion in one line, with the runs per cell: from run.json's experiment, else from the records
    (each verdict keeps the pass_within it was judged by)."""
    experiment = meta.get("experiment") or {}
    within = experiment.get("pass_within")
    if within is None:
        within = next((v.pass_within for c in cells for v in c.verdicts if v.pass_within is not None), None)
    planned = sorted({c.planned for c in cells}) or [experiment.get("repeats", 1)]
    runs = f"{planned[0]}" if len(planned) == 1 else f"{planned[0]}–{planned[-1]}"
    when = f"from {within:g}s after the rename" if within is not None else "from pass_within after the rename"
    return (f"pass: every read {when} shows the new contents, none goes back to the old ones, and no read after "
            f"the rename fails (ESTALE or another error); {runs} run{'s' if runs != '1' else ''} per cell, "
            f"flaky when they disagree")


def fail_on_hits(cells: list[CellResult], fail_on: set[str]) -> dict[str, int]:
    """The categories among `fail_on` that the table has, with their counts (`lab table --fail-on`)."""
    numbers = counts(cells)
    return {name: numbers[name] for name in FAIL_ON if name in fail_on and numbers[name]}


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


def syscall_line(observation: dict | None) -> str:
    """What alice's traced reads after the change asked the kernel, beside the wire operations:
    `cat: openat → fd 4 · fstat → ESTALE ×6`; empty without a trace."""
    calls = ((observation or {}).get("meta") or {}).get("syscalls") or {}
    if not calls:
        return ""
    if calls.get("skipped"):
        return f"{calls.get('reader', 'cat')}: not traced ({calls['skipped']})"
    text = describe_syscalls(calls)
    return f"{calls.get('reader', 'cat')}: {text}" if text else ""


def failed_at_line(record: ResultRecord) -> str:
    """The Markdown footnote of a failing run: `debian-6.1 vers=4.1: fstat → ESTALE (open-fstat-read)`."""
    calls = ((record.observation or {}).get("meta") or {}).get("syscalls") or {}
    step = main_failure(calls)
    if step is None:
        return ""
    label = column_label({k: v for k, v in record.params.items() if k != "reader"})
    return f"{record.kernel} {label}: {step} ({calls.get('reader', 'cat')})"


# ---- formats -------------------------------------------------------------------------------------------------------

def render(records: list[ResultRecord], fmt: str, title: str = "", meta: dict | None = None) -> str:
    """The table in one of FORMATS."""
    renderers = {"md": _markdown, "html": _html, "json": _json, "junit": _junit}
    if fmt not in renderers:
        raise ValueError(f"unknown table format {fmt!r} (allowed: {', '.join(FORMATS)})")
    return renderers[fmt](build_grid(records, meta), title, meta or {})


def _runs(cell: CellResult) -> list[tuple[str, ResultRecord]]:
    """(label, record) for each run: no label for a cell of one run, `run 2/3` for one of several."""
    if cell.planned == 1:
        return [("", run) for run in cell.runs]
    return [(f"run {run.repeat}/{cell.planned}", run) for run in cell.runs]


def _meta_line(meta: dict) -> str:
    """Only facts handed in (run id, start, server…): the renderer reads no clock, so goldens stay stable."""
    keys = ("run_id", "started", "finished", "wall_s", "server", "matrix", "command")
    return " · ".join(f"{key}: {meta[key]}" for key in keys if meta.get(key))


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(grid: Grid, title: str, meta: dict) -> str:
    lines = [f"# {title}", ""] if title else []
    if _meta_line(meta):
        lines += [_md_escape(_meta_line(meta)), ""]
    lines += [f"**Criterion:** {_md_escape(criterion_line(grid.results(), meta))}", ""]
    lines.append("| kernel | " + " | ".join(grid.columns) + " |")
    lines.append("|---" * (len(grid.columns) + 1) + "|")
    for row in grid.rows:
        texts = [_md_escape(cell_text(grid.get(row, col))) for col in grid.columns]
        lines.append(f"| {row} | " + " | ".join(texts) + " |")
    lines += ["", f"**Summary:** {summary_line(grid.results())}", "", "**Legend:**", ""]
    lines += [f"- **{_md_escape(mark)}**: {meaning}" for mark, meaning in legend()]
    lines += _markdown_traces(grid)
    lines += _markdown_failed_at(grid)
    return "\n".join(lines) + "\n"


def _markdown_failed_at(grid: Grid) -> list[str]:
    """One line per failing run with traced reads: the system call at which alice's reads went wrong."""
    found = [line for cell in grid.results() if cell.status in ("fail", "flaky")
             for _, run in _runs(cell) if run.verdict_obj.status == "fail" and (line := failed_at_line(run))]
    if not found:
        return []
    return ["", "**Failed at** (alice's traced reads after the change, the commonest failing call):", ""] + \
        [f"- {_md_escape(line)}" for line in dict.fromkeys(found)]


def _markdown_traces(grid: Grid) -> list[str]:
    """For cells with a capture: what each client sent after the change, the figures that explain a verdict."""
    rows = [(f"{cell.cell_id} {label}".strip(), client, ops) for cell in grid.results()
            for label, run in _runs(cell) for client, ops in trace_lines(run.observation)]
    if not rows:
        return []
    lines = ["", "**NFS operations after the change** (server-side capture):", "", "| cell | client | operations |",
             "|---|---|---|"]
    return lines + [f"| {cell} | {client} | {_md_escape(ops)} |" for cell, client, ops in rows]


def _json(grid: Grid, title: str, meta: dict) -> str:
    """`cells`: one entry per cell (status, counts, spread); `records`: every run, each with its cell's category."""
    cells = grid.results()
    document = {"title": title, "meta": meta, "criterion": criterion_line(cells, meta), "summary": counts(cells),
                "cells": [dict(c.to_dict(), category=category(c)) for c in cells],
                "records": [dict(asdict(r), category=category(c)) for c in cells for r in c.runs]}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _junit(grid: Grid, title: str, meta: dict) -> str:
    """One testcase per cell, as pytest's junitxml reports the same outcomes: an expected failure is skipped
    (pytest.xfail) with its reason, an unexpected pass and a regression are failures, a flaky cell is a failure
    saying `flaky k/N fail` (skipped as an expected failure where history expects a fail), a lab error is an error,
    an unobtainable kernel is skipped."""
    cells = grid.results()
    suite = ET.Element("testsuite", name=title or "nfslab", tests=str(len(cells)))
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="criterion", value=criterion_line(cells, meta))
    outcomes = [_junit_case(suite, cell) for cell in cells]
    suite.set("failures", str(outcomes.count("failure")))
    suite.set("errors", str(outcomes.count("error")))
    suite.set("skipped", str(outcomes.count("skipped")))
    suite.set("time", f"{sum(c.duration_s for c in cells):.1f}")
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _junit_case(suite: ET.Element, cell: CellResult) -> str:
    """Add the cell's testcase; returns its outcome element's tag ("" for a pass)."""
    case = ET.SubElement(suite, "testcase", classname=cell.kernel, name=column_label(cell.params),
                         time=f"{cell.duration_s:.1f}")
    summary = cell.summary()
    kind = category(cell)
    timelines = "\n".join(f"{label}: {timeline_text(run.observation)}" if label else timeline_text(run.observation)
                          for label, run in _runs(cell))
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
    if kind == "regression":
        ET.SubElement(case, "failure", message=summary, type="regression").text = timelines
        return "failure"
    if kind == "unexpected-pass":
        ET.SubElement(case, "failure", message=f"[XPASS(strict)] {summary} (expected: fail)", type="unexpected-pass")
        return "failure"
    if kind == "error":
        first = next(v for v in cell.verdicts if v.status == "error")
        ET.SubElement(case, "error", message=summary, type=first.reason)
        return "error"
    if kind == "skip":
        ET.SubElement(case, "skipped", type="pytest.skip", message=cell.verdicts[0].reason)
        return "skipped"
    return ""


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
td.flaky { background: #f7e08a; font-weight: bold; }
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
{% endif %}<p class="criterion">{{ criterion }}</p>
<table>
<tr><th>kernel</th>{% for col in columns %}<th>{{ col }}</th>{% endfor %}</tr>
{% for row in rows %}<tr><th>{{ row.name }}</th>
{% for cell in row.cells %}<td class="{{ cell.css }}" title="{{ cell.hover }}">{% if cell.result %}<details><summary>{{ cell.text }}</summary>
{% for run in cell.runs %}{% if run.label %}<div class="run"><strong>{{ run.label }}</strong>: {{ run.text }}</div>
{% endif %}{% if run.svg %}<div>{{ run.svg }}</div>
{% endif %}<div class="timeline">{{ run.timeline or "no reads" }}</div>{% if run.detail %}
<div>{{ run.detail }}</div>{% endif %}{% if run.conditions %}
<div class="trace">{{ run.conditions }}</div>{% endif %}{% for client, ops in run.trace %}
<div class="trace">{{ client }} after t=0: {{ ops }}</div>{% endfor %}{% if run.syscalls %}
<div class="trace">alice's reads after t=0, {{ run.syscalls }}</div>{% endif %}
<div>expected {{ cell.result.expected }}{% if run.record.kernel_release %} · {{ run.record.kernel_release }}{% endif %}{% if run.server_release %} · server {{ run.server_release }}{% endif %}{% if run.logs_href %} · <a href="{{ run.logs_href }}">logs</a>{% elif run.record.logs %} · logs: {{ run.record.logs }}{% endif %}{% if run.pcap %} · <a href="{{ run.pcap }}">pcap</a>{% endif %}</div>
{% endfor %}</details>{% else %}{{ cell.text }}{% endif %}</td>
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


def _html_cell(cell: CellResult | None) -> dict:
    if cell is None:
        return {"result": None, "css": "not-run", "text": NOT_RUN, "hover": "not run"}
    text = cell_text(cell)
    return {"result": cell, "css": category(cell), "text": text, "hover": f"{cell.cell_id}: {text}",
            "runs": [_html_run(label, run) for label, run in _runs(cell)]}


def _html_run(label: str, record: ResultRecord) -> dict:
    verdict = record.verdict_obj
    meta = (record.observation or {}).get("meta") or {}
    pcap = (meta.get("trace") or {}).get("pcap")
    # a link only to a plain path inside the run directory: a record's `logs` could say `javascript:…` or `../..`
    logs_href = link_target(f"{record.logs}/") if record.logs else None
    pcap_href = link_target(f"{record.logs}/{pcap}") if logs_href and isinstance(pcap, str) else None
    return {"label": label, "record": record, "text": verdict.summary(), "timeline": timeline_text(record.observation),
            "detail": verdict.detail, "svg": Markup(timeline_svg(record.observation)),
            "trace": trace_lines(record.observation), "conditions": conditions_text(record.observation),
            "syscalls": syscall_line(record.observation),
            "server_release": meta.get("server_release"),
            "logs_href": logs_href, "pcap": pcap_href}


def conditions_text(observation: dict | None) -> str:
    """What the experiment controlled, as achieved (meta["ages"]), and the cache timeouts alice mounted with
    (meta["mounts"]["alice"]["cache"]): `dir changed 5.0s, its attributes fetched 2.0s before the change · alice:
    acdirmin=30 acdirmax=60 acregmin=3 acregmax=60 lookupcache=all`."""
    meta = (observation or {}).get("meta") or {}
    parts = []
    ages = meta.get("ages") or {}
    if ages.get("dir_touched_before_change_s") is not None:
        text = f"dir changed {ages['dir_touched_before_change_s']:.1f}s"
        if ages.get("dir_attrs_fetched_before_change_s") is not None:
            text += f", alice fetched its attributes {ages['dir_attrs_fetched_before_change_s']:.1f}s"
        parts.append(text + " before the change")
    cache = ((meta.get("mounts") or {}).get("alice") or {}).get("cache") or {}
    if cache:
        keys = ("acdirmin", "acdirmax", "acregmin", "acregmax", "lookupcache")
        parts.append("alice: " + " ".join(f"{k}={cache[k]}" for k in keys if k in cache))
    return " · ".join(parts)


def _html(grid: Grid, title: str, meta: dict) -> str:
    rows = [{"name": row, "cells": [_html_cell(grid.get(row, col)) for col in grid.columns]} for row in grid.rows]
    template = Environment(autoescape=True, keep_trailing_newline=True).from_string(_HTML)
    cells = grid.results()
    return template.render(title=title, meta_line=_meta_line(meta), criterion=criterion_line(cells, meta),
                           columns=grid.columns, rows=rows, summary=summary_line(cells), legend=legend(),
                           colours=KIND_COLOURS.items())


# ---- terminal ------------------------------------------------------------------------------------------------------

TERMINAL_STYLES = {"pass": "green", "expected-fail": "yellow", "regression": "bold red",
                   "unexpected-pass": "bold blue", "flaky": "bold yellow", "error": "magenta", "skip": "dim"}


def render_terminal(records: list[ResultRecord], title: str = "", meta: dict | None = None) -> Table:
    """The same table for the pytest terminal summary and the CLI (rich does the layout and colours). Every text
    goes in as a `Text`: kernel names, axis values and error details are never read as rich markup."""
    grid = build_grid(records, meta)
    cells = grid.results()
    table = Table(title=Text(title, style="table.title") if title else None, show_lines=True,
                  caption=Text(f"{criterion_line(cells, meta or {})}\n{summary_line(cells)}", style="table.caption"))
    table.add_column(Text("kernel"), style="bold", no_wrap=True)
    for column in grid.columns:
        table.add_column(Text(column))
    for row in grid.rows:
        texts = []
        for column in grid.columns:
            cell = grid.get(row, column)
            texts.append(Text(cell_text(cell), style=TERMINAL_STYLES[category(cell)] if cell else "dim"))
        table.add_row(Text(row), *texts)
    return table
