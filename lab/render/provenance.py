"""What a report is and where it came from: its heading, the run's facts, the command that reruns a cell, the
commits the kernel specs name; paths of this machine shortened or hidden for a committed page."""
from __future__ import annotations

import re
import shlex
from pathlib import PurePosixPath

from ..aggregate import CellResult
from ..results import ResultRecord
from .context import Context, shorten_paths
from .grid import MISMATCHES, RERUN, UPSTREAM_COMMIT, Grid, anchor, build_grid, category, in_axis_order, runs_a_cell


def heading(grid: Grid, meta: dict, title: str = "") -> str:
    """What the report is, for the page title and the first line: `nfslab: 7 kernels × 4 cells, 2026-11-30, 3
    runs/cell`; a title handed in goes first (`<title> — 7 kernels × …`)."""
    def count(n: int, word: str) -> str:
        return f"{n} {word}{'s' if n != 1 else ''}"
    started = str(meta.get("started") or "")
    facts = [f"{count(len(grid.rows), 'kernel')} × {count(len(grid.columns), 'cell')}"]
    if re.match(r"\d{4}-\d\d-\d\d", started):
        facts.append(started[:10])
    runs = runs_a_cell(grid.results(), meta)
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
    matrix = kept_matrix(meta, context) or str(meta.get("matrix") or "")
    if matrix and not is_default_matrix(matrix):
        shown = _relative(matrix, context.cwd)
        argv += ["-m", shown or (PurePosixPath(matrix).name if context.for_docs else matrix)]
    params = in_axis_order(cell.params, list(meta.get("axes") or []))
    return argv + ["-k", cell.kernel, "--cell", ",".join(f"{k}={v}" for k, v in params.items()),
                   "--repeats", str(cell.planned)]


def kept_matrix(meta: dict, context: Context) -> str | None:
    """A matrix kept inside its run directory (`lab run --kernel` writes RUN/matrix.yaml and RUN/kernels/) is named
    where that directory is now, so the rerun still works after the run directory was moved or copied."""
    matrix = PurePosixPath(str(meta.get("matrix") or ""))
    if context.run_dir and meta.get("run_id") and matrix.parts[-2:] == (str(meta["run_id"]), "matrix.yaml"):
        return str(PurePosixPath(context.run_dir) / "matrix.yaml")
    return None


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
