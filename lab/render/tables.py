"""A run directory's tables: what `lab run` and `pytest --matrix` write into it and `lab table` prints, with what the
pure renderer (formats.py and the modules beside it) needs besides the records and run.json, read here: the kernel specs' titles and
notes (which name the fix and culprit commits), and a comparison with a baseline run (lab/compare.py).
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..compare import compare, series_of
from ..errors import SpecError
from ..results import ResultRecord, RunDir
from ..spec import Matrix
from .context import Context
from .formats import render

TABLE_FILES = (("md", "table.md"), ("html", "table.html"), ("junit", "junit.xml"), ("json", "table.json"))

log = logging.getLogger(__name__)


def spec_meta(matrix: Matrix) -> dict[str, dict]:
    """What run.json keeps of the kernel specs (the rows and the server): title and notes, so that a table rendered
    elsewhere (a CI job, a merged run) still names and links the commits they mention."""
    names = [*matrix.kernel_names, matrix.server]
    return {name: {"title": matrix.kernel(name).title, "notes": matrix.kernel(name).notes}
            for name in dict.fromkeys(names) if name in matrix.known}


def spec_facts(meta: dict) -> dict[str, dict]:
    """The run's kernels' titles and notes: run.json's `specs` (`lab run` writes them), else the run's matrix if
    it can still be read here, else nfslab's own specs of those names. What none of them has is left out."""
    facts = dict(meta.get("specs") or {})
    wanted = [k for k in [*(meta.get("kernels") or []), meta.get("server")] if k and k not in facts]
    if not wanted:
        return facts
    from ..paths import KERNELS
    from ..spec import kernel_files, load_kernel, load_matrix
    matrix = meta.get("matrix")
    if matrix and Path(matrix).is_file():
        try:
            facts = {**spec_meta(load_matrix(Path(matrix))), **facts}
        except (SpecError, OSError, ValueError) as e:   # a matrix changed or moved since: the specs are a nicety
            log.debug("%s: its specs are not read for the table: %s", matrix, e)
    try:
        packaged = kernel_files(KERNELS)
    except SpecError:
        packaged = {}
    for name in wanted:
        if name not in facts and name in packaged:
            try:
                kernel = load_kernel(packaged[name])
            except (SpecError, OSError, ValueError):
                continue
            facts[name] = {"title": kernel.title, "notes": kernel.notes}
    return facts


def context_for(run_dir: RunDir, baseline: Path | None = None, cwd: str | None = None,
                for_docs: bool = False) -> Context:
    """Everything a table of `run_dir` is rendered with; `baseline`: a run directory to compare it with."""
    meta = run_dir.meta()
    comparison = None
    if baseline is not None:
        records = run_dir.runs()
        comparison = compare(RunDir(baseline).runs(), records, series_of(records, meta), str(baseline),
                             str(run_dir.path))
    return Context(specs=spec_facts(meta), baseline=comparison, cwd=cwd, for_docs=for_docs,
                   run_dir=str(run_dir.path))


def write_tables(run_dir: RunDir) -> list[ResultRecord]:
    """Render the run's table in every format into the run directory; returns the records it used (every run of
    every cell). Rerun commands name the matrix as run.json does (relative to where the run was started)."""
    records, meta = run_dir.runs(), run_dir.meta()
    context = context_for(run_dir)
    for fmt, name in TABLE_FILES:
        (run_dir.path / name).write_text(render(records, fmt, meta=meta, context=context))
    return records
