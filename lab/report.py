"""The compatibility table: result records in, Markdown / HTML / JSON / JUnit / a rich table out.

Rows are kernels, columns are axis combinations. A cell adds up its runs (lab/aggregate.py): how many agreed, the
verdict's summary with the spread of its figures (how long stale data lasted, ESTALE, whether `ls` cleared it), and
how it compares with what history expects: a known failure is not news, a regression, an unexpected pass or a
flaky cell is. Errors and skips are the lab's business and are never counted as a kernel's pass or fail. Every
format states the pass criterion in one line, says what the report is in its title (kernels × cells, date, runs a
cell), and gives every cell that did not pass the command that reruns it alone. Rendered against a baseline run
(lab/compare.py), the cells whose verdict changed are marked. The HTML page is lab/report_html.py.

Pure and deterministic — no clock, no I/O, no working directory: whatever a table depends on besides the records
and run.json comes in a Context — so rendered tables can be checked against golden files.
"""
from __future__ import annotations

import itertools
import json
import re
import shlex
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath

from rich.table import Table
from rich.text import Text

from .aggregate import CellResult, cells_of
from .capture import describe
from .compare import Comparison
from .results import ResultRecord
from .syscalls import describe as describe_syscalls, main_failure
from .timeplot import KIND_COLOURS  # noqa: F401  (the legend's colours; lab/report_html.py draws with them)

FORMATS = ("md", "html", "json", "junit")
NOT_RUN = "—"
CHANGED = "Δ"   # a cell whose verdict changed since the baseline

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
#: the cells that carry a rerun command: all but a pass and a kernel that cannot be had
RERUN = ("expected-fail", "regression", "unexpected-pass", "flaky", "error")
#: the ones `lab run` lists after its table: those that decided its exit code
MISMATCHES = ("regression", "unexpected-pass", "flaky", "error")
UPSTREAM_COMMIT = "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/commit/?id={}"


@dataclass(frozen=True)
class Context:
    """What a table is rendered with besides the records and run.json, all handed in (the renderer looks nothing
    up): the kernel specs' titles and notes, a comparison with a baseline run, the directory the rerun commands are
    written for, and whether the table goes into committed docs (then: no links into the run directory, which is
    not committed, and no paths of the machine that ran it)."""

    specs: dict[str, dict] = field(default_factory=dict)   # kernel name → {"title": …, "notes": …}
    baseline: Comparison | None = None
    cwd: str | None = None
    for_docs: bool = False

    @property
    def links(self) -> bool:
        return not self.for_docs

    def public(self, text: str) -> str:
        """Free text (an error's detail, a skip's reason) as the table shows it: for docs, without machine paths."""
        return hide_machine_paths(text) if self.for_docs else text

    def changes(self) -> dict[str, dict]:
        """cell id → its entry in the comparison, for the cells whose verdict changed (pass ↔ fail)."""
        return {c["cell"]: c for c in (self.baseline.changes if self.baseline else [])}


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
                      if name != "flaky" or numbers[name])


def legend(context: Context | None = None) -> list[tuple[str, str]]:
    extra = [(CHANGED, "the verdict changed since the baseline run (pass ↔ fail, as `lab compare` counts it)")]
    return ([mark_meaning for mark_meaning in CATEGORIES.values()] + LEGEND_EXTRA
            + (extra if context and context.baseline else []))


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
    runs = _runs_a_cell(cells, meta)
    when = f"from {within:g}s after the rename" if within is not None else "from pass_within after the rename"
    return (f"pass: every read {when} shows the new contents, none goes back to the old ones, and no read after "
            f"the rename fails (ESTALE or another error); {runs} run{'s' if runs != '1' else ''} per cell, "
            f"flaky when they disagree")


def _runs_a_cell(cells: list[CellResult], meta: dict) -> str:
    planned = sorted({c.planned for c in cells}) or [(meta.get("experiment") or {}).get("repeats", 1)]
    return f"{planned[0]}" if len(planned) == 1 else f"{planned[0]}–{planned[-1]}"


def fail_on_hits(cells: list[CellResult], fail_on: set[str]) -> dict[str, int]:
    """The categories among `fail_on` that the table has, with their counts (`lab table --fail-on`)."""
    numbers = counts(cells)
    return {name: numbers[name] for name in FAIL_ON if name in fail_on and numbers[name]}


# ---- what the report is, and where it came from ------------------------------------------------------------------

def heading(grid: Grid, meta: dict, title: str = "") -> str:
    """What the report is, for the page title and the first line: `nfslab: 7 kernels × 4 cells, 2026-11-30, 3
    runs/cell`; a title handed in goes first (`<title> — 7 kernels × …`)."""
    def count(n: int, word: str) -> str:
        return f"{n} {word}{'s' if n != 1 else ''}"
    started = str(meta.get("started") or "")
    facts = [f"{count(len(grid.rows), 'kernel')} × {count(len(grid.columns), 'cell')}"]
    if re.match(r"\d{4}-\d\d-\d\d", started):
        facts.append(started[:10])
    runs = _runs_a_cell(grid.results(), meta)
    facts.append(f"{runs} run{'s' if runs != '1' else ''}/cell")
    experiment = (meta.get("experiment") or {}).get("name")
    if experiment and experiment != "rename":
        facts[0] += f" ({experiment})"
    return f"{title} — {', '.join(facts)}" if title else f"nfslab: {', '.join(facts)}"


def duration_text(seconds: float) -> str:
    """`44 s`, `29 min 20 s`, `2 h 5 min`."""
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


# an absolute path where one can start: not inside a word, a URL (`https://…`) or a relative path (`a/b`)
_ABSOLUTE = re.compile(r"(?<![\w.:/~-])/(?:[^\s/'\"`()|<>]+/)*([^\s/'\"`()|<>]+)/?")
#: roots of paths that belong to the machine that ran a table, not to the lab or the guests (/srv/nfs, /proc/…)
MACHINE_ROOTS = ("/var/", "/tmp/", "/work/", "/root/", "/home/", "/opt/", "/mnt/", "/media/", "/run/", "/Users/")


def shorten_paths(text: str) -> str:
    """Every absolute path as `…/` and its last part: `--runs /work/runs/check1` → `--runs …/check1`."""
    return _ABSOLUTE.sub(lambda m: f"…/{m.group(1)}", text)


def hide_machine_paths(text: str) -> str:
    """shorten_paths for the paths under MACHINE_ROOTS only, so a guest's `/srv/nfs` stays what it is."""
    return _ABSOLUTE.sub(lambda m: f"…/{m.group(1)}" if m.group(0).startswith(MACHINE_ROOTS) else m.group(0), text)


def is_default_matrix(path: str) -> bool:
    """nfslab's own matrix, wherever the package is installed: `lab run` without -m (and no ./matrix.yaml)."""
    return PurePosixPath(path).parts[-3:] == ("lab", "data", "matrix.yaml")


def _relative(path: str, cwd: str | None) -> str | None:
    pure = PurePosixPath(path)
    if pure.is_absolute() and cwd:
        try:
            return str(pure.relative_to(cwd))
        except ValueError:
            return None
    return None if pure.is_absolute() else path


def matrix_text(path: str, context: Context) -> str:
    """The matrix in a table's header: nfslab's default, or the file relative to the cwd, else its name."""
    if is_default_matrix(path):
        return "nfslab's default (lab/data/matrix.yaml)"
    return _relative(path, context.cwd) or PurePosixPath(path).name


def meta_items(meta: dict, context: Context | None = None) -> list[tuple[str, str]]:
    """The header's facts, only those handed in (run id, start, server…): the renderer reads no clock, so goldens
    stay stable. No absolute path: the matrix by name, the command with its paths shortened."""
    context = context or Context()
    items = [(key, str(meta[key])) for key in ("run_id", "started", "finished") if meta.get(key)]
    if meta.get("wall_s") is not None:
        items.append(("wall time", duration_text(float(meta["wall_s"]))))
    if meta.get("server"):
        items.append(("server", str(meta["server"])))
    if meta.get("matrix"):
        items.append(("matrix", matrix_text(str(meta["matrix"]), context)))
    if meta.get("command"):
        items.append(("command", shorten_paths(str(meta["command"]))))
    if context.baseline:
        items.append(("baseline", PurePosixPath(context.baseline.baseline).name or context.baseline.baseline))
    return items


def meta_line(meta: dict, context: Context | None = None) -> str:
    return " · ".join(f"{key}: {value}" for key, value in meta_items(meta, context))


def rerun_argv(cell: CellResult, meta: dict, context: Context | None = None) -> list[str]:
    """`lab run [-m MATRIX] -k KERNEL --cell vers=4.1,leases=on --repeats N`: this cell alone, as often as it ran.
    The matrix as run.json names it, relative to the cwd where it can be, left out when it was nfslab's default; for
    docs, never an absolute path."""
    context = context or Context()
    argv = ["lab", "run"]
    matrix = str(meta.get("matrix") or "")
    if matrix and not is_default_matrix(matrix):
        shown = _relative(matrix, context.cwd)
        argv += ["-m", shown or (PurePosixPath(matrix).name if context.for_docs else matrix)]
    params = in_axis_order(cell.params, list(meta.get("axes") or []))
    return argv + ["-k", cell.kernel, "--cell", ",".join(f"{k}={v}" for k, v in params.items()),
                   "--repeats", str(cell.planned)]


def rerun_command(cell: CellResult, meta: dict, context: Context | None = None) -> str | None:
    """The shell command that reruns a cell that did not pass (RERUN), quoted for a POSIX shell; None for others."""
    if category(cell) not in RERUN:
        return None
    return shlex.join(rerun_argv(cell, meta, context))


def rerun_lines(records: list[ResultRecord], meta: dict | None = None, context: Context | None = None,
                which: tuple[str, ...] = MISMATCHES) -> list[str]:
    """`lab run` after its table: one command per cell that did not go as history expects (or had a lab error),
    with the cell and its category as a shell comment."""
    meta = meta or {}
    grid = build_grid(records, meta)
    return [f"{shlex.join(rerun_argv(cell, meta, context))}   # {cell.cell_id}: {category(cell)}"
            for cell in grid.results() if category(cell) in which]


_COMMIT = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{12,40}(?![0-9A-Za-z])")


def commit_parts(text: str) -> list[tuple[str, str | None]]:
    """Text split around the commit ids in it (12 to 40 hex digits, with a letter and a digit, like be189f7e7f03):
    [(text, None), (id, url), …], so a renderer can link each id to its upstream page and escape the rest."""
    parts: list[tuple[str, str | None]] = []
    at = 0
    for match in _COMMIT.finditer(text):
        sha = match.group(0)
        if not (re.search(r"[a-f]", sha) and re.search(r"\d", sha)):
            continue
        parts += [(text[at:match.start()], None), (sha, UPSTREAM_COMMIT.format(sha))]
        at = match.end()
    parts.append((text[at:], None))
    return [(piece, url) for piece, url in parts if piece]


def kernel_facts(grid: Grid, meta: dict, context: Context) -> list[dict]:
    """The rows' kernels (and the server's), with their specs' title and notes split around commit ids, and the
    commits named (in order, once each)."""
    names = list(grid.rows)
    server = meta.get("server")
    if server and server not in names:
        names.append(server)
    out = []
    for name in names:
        spec = context.specs.get(name) or {}
        title, notes = str(spec.get("title") or ""), " ".join(str(spec.get("notes") or "").split())
        commits = list(dict.fromkeys(sha for sha, url in commit_parts(f"{title} {notes}") if url))
        out.append({"name": name, "anchor": anchor(name, "kernel-"), "title": title, "notes": commit_parts(notes),
                    "commits": [(sha, UPSTREAM_COMMIT.format(sha)) for sha in commits],
                    "server": name == server and name not in grid.rows})
    return out


# ---- timelines -----------------------------------------------------------------------------------------------------

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


def runs_of(cell: CellResult) -> list[tuple[str, ResultRecord]]:
    """(label, record) for each run: no label for a cell of one run, `run 2/3` for one of several."""
    if cell.planned == 1:
        return [("", run) for run in cell.runs]
    return [(f"run {run.repeat}/{cell.planned}", run) for run in cell.runs]


# ---- formats -------------------------------------------------------------------------------------------------------

def render(records: list[ResultRecord], fmt: str, title: str = "", meta: dict | None = None,
           context: Context | None = None) -> str:
    """The table in one of FORMATS."""
    from .report_html import render_html
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
    lines += [f"- **{_md_escape(mark)}**: {meaning}" for mark, meaning in legend(context)]
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
    if kind == "regression":
        ET.SubElement(case, "failure", message=summary, type="regression").text = timelines
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


# ---- terminal ------------------------------------------------------------------------------------------------------

TERMINAL_STYLES = {"pass": "green", "expected-fail": "yellow", "regression": "bold red",
                   "unexpected-pass": "bold blue", "flaky": "bold yellow", "error": "magenta", "skip": "dim"}


def render_terminal(records: list[ResultRecord], title: str = "", meta: dict | None = None,
                    context: Context | None = None) -> Table:
    """The same table for the pytest terminal summary and the CLI (rich does the layout and colours). Every text
    goes in as a `Text`: kernel names, axis values and error details are never read as rich markup."""
    context = context or Context()
    grid = build_grid(records, meta)
    cells = grid.results()
    changes = context.changes()
    notes = [criterion_line(cells, meta or {}), summary_line(cells)]
    if grid.unrun:
        notes.append(f"not run: {', '.join(grid.unrun)}")
    if context.baseline:
        notes.append(f"{CHANGED} changed since the baseline {PurePosixPath(context.baseline.baseline).name}: "
                     f"{len(changes)} cell{'s' if len(changes) != 1 else ''}")
    table = Table(title=Text(title, style="table.title") if title else None, show_lines=True,
                  caption=Text("\n".join(notes), style="table.caption"))
    table.add_column(Text("kernel"), style="bold", no_wrap=True)
    for column in grid.columns:
        table.add_column(Text(column))
    for row in grid.rows:
        texts = []
        for column in grid.columns:
            cell = grid.get(row, column)
            text = Text(cell_text(cell), style=TERMINAL_STYLES[category(cell)] if cell else "dim")
            if cell and cell.cell_id in changes:
                text = Text.assemble((f"{CHANGED} ", "bold reverse"), text)
            texts.append(text)
        table.add_row(Text(row), *texts)
    return table
