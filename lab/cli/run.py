"""`lab run`, `lab table`, `lab merge`: running the matrix's cells, and the run's table.

Exit codes of `lab run`: 0 every cell as history expects; 1 a kernel result contradicts kernels/*.yaml
(regression, unexpected pass, or a flaky cell where a pass is expected), or a kernel without history (--kernel)
fails; 3 lab errors (no kernel result for some
cells); 2 bad input; 130 interrupted. A cell's runs add up by lab/aggregate.py's rule, as everywhere else.
"""
from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .. import crash
from ..aggregate import run_exit_code
from ..log import log
from .common import (CellOpt, KernelsOpt, LibvirtNetnsOpt, LibvirtUriOpt, MatrixOpt, Usage, app, libvirt_target,
                     load_cells, out, output_dir, output_file, raise_interrupt, write_output)


@app.command()
def run(matrix: Optional[Path] = MatrixOpt, kernels: Optional[str] = KernelsOpt, cell: Optional[list[str]] = CellOpt,
        runs: Path = typer.Option(Path("runs"), help="where run directories are created"),
        resume: Optional[Path] = typer.Option(None, help="continue this run directory: finished cells are kept"),
        repeats: Optional[int] = typer.Option(None, "--repeats", help="runs per cell (default: the matrix's "
                                              "experiment.repeats; with --resume, the resumed run's)"),
        keep_host: bool = typer.Option(False, help="leave the lab namespace and libvirtd running afterwards"),
        keep: bool = typer.Option(False, "--keep", help="leave the last cell's topology up, as the cell left it, "
                                  "to debug in place (`lab ssh`, `lab down`); not after Ctrl-C"),
        keep_failing: bool = typer.Option(False, "--keep-failing", help="leave the topology of the first failing "
                                          "(or ERROR) cell up, as that cell left it (molecule's --destroy never on "
                                          "failure): later cells of its kernel boot a fresh one; `lab status`, `lab "
                                          "ssh KERNEL alice|bob|server`, `lab down KERNEL`"),
        jobs: str = typer.Option("1", "--jobs", "-j", help="workers at once, each with its own topology (3 VMs): "
                                 "a number, or auto (from this host's CPUs and memory); default 1"),
        kernel: Optional[str] = typer.Option(None, "--kernel", help="test this kernel instead of the matrix's rows, "
                                             "no spec file needed: SRC[:PATCH…], SRC a bzImage or .deb path, an "
                                             "http(s) URL of either, a Debian package (linux-image-…[=VERSION], "
                                             "SUITE/linux-image-… for a suite other than bookworm), or a git ref "
                                             "of --kernel-tree (patches: git only). Its spec and the matrix go into "
                                             "the run directory: `lab run -m RUN/matrix.yaml` repeats the run"),
        kernel_tree: Optional[Path] = typer.Option(None, "--kernel-tree", help="the Linux git checkout a --kernel "
                                                   "GIT_REF is built from (default: $NFSLAB_LINUX_TREE); a full "
                                                   "build with mainline-4.19's config fragment"),
        libvirt_uri: Optional[str] = LibvirtUriOpt, libvirt_netns: Optional[str] = LibvirtNetnsOpt):
    """Run the matrix on real VMs and print the compatibility table (also written to the run directory)."""
    from .. import preflight
    from ..schedule import parse_jobs
    try:
        jobs_asked = parse_jobs(jobs)
    except ValueError as e:
        raise Usage(f"--jobs {e}") from None
    if keep and keep_failing:
        raise Usage("--keep and --keep-failing: give one (the last cell's topology, or the first failing one's)")
    adhoc = staged = None
    if kernel is not None:
        adhoc, staged = _stage_adhoc(kernel, kernel_tree, matrix, kernels, resume)
        matrix = staged / "matrix.yaml"
    try:
        m, cells = load_cells(matrix, kernels, cell)
        if resume and not resume.is_dir():
            raise Usage(f"--resume {resume}: no such run directory (fix: give one that `lab run` made, e.g. "
                        f"{runs}/<run-id>)")
        if repeats is not None and repeats < 1:
            raise Usage(f"--repeats {repeats}: a cell runs at least once (allowed: a whole number >= 1)")
        target = libvirt_target(libvirt_uri, libvirt_netns, capture=m.experiment.capture)
        # before anything exists: a host that is not ready leaves no empty run directory
        preflight.check("run", capture=m.experiment.capture)
        preflight.check_kernels(m, list(dict.fromkeys(c.kernel for c in cells)))
        preflight.check_libvirt(target)
    except BaseException:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
        raise
    # imported after the check: python-vagrant logs a warning of its own at import when vagrant is missing
    from ..aggregate import cells_of
    from ..log import live_console
    from ..parallel import Workers, resolve_jobs
    from ..progress import RunProgress
    from ..render.tables import context_for
    from ..session import RunSession, run_directory
    run_dir = run_directory(runs, resume)
    if staged is not None:   # the ad hoc spec and matrix move into the run directory, and are read from there
        for name in ("matrix.yaml", "kernels"):
            shutil.move(str(staged / name), str(run_dir.path / name))
        shutil.rmtree(staged, ignore_errors=True)
        m, cells = load_cells(run_dir.path / "matrix.yaml", None, cell)
        log.info("--kernel %s: row %s (spec %s)", kernel, adhoc.name, run_dir.path / "kernels" / f"{adhoc.name}.yaml")
    session = RunSession(m, cells, run_dir, repeats=repeats, resumed=resume is not None,
                         command=" ".join(["lab", *sys.argv[1:]]), libvirt=target)
    repeats = session.repeats
    todo = session.todo()
    session.start()
    crash.save_into(run_dir.path)   # a crash from here on leaves its traceback with the run
    left = len({c.id for c, _ in todo})
    runs_note = f" ({len(todo)} runs, {repeats} a cell)" if repeats > 1 else ""
    log.info("run %s: %d cells to run%s%s", run_dir.path, left, runs_note,
             f", {len(cells) - left} already done" if len(cells) > left else "")
    workers = resolve_jobs(jobs_asked, len(todo))
    if workers > 1:
        log.info("%d workers, each with its own topology", workers)
    shown = RunProgress(todo, repeats, log, console=live_console(), jobs=workers)
    pool = Workers(m, run_dir, workers, shown, keep=keep, keep_failing=keep_failing, libvirt=target)
    # both explicitly: a process started from a non-interactive shell in the background inherits SIGINT ignored
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, raise_interrupt)
    interrupted, kept = False, None
    try:
        with shown:
            pool.run(todo, repeats)
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted: tearing down (finished cells are kept; resume with --resume)")
    finally:
        kept = pool.close(keep=keep and not interrupted)
        session.release(pool.host, keep_host)
    records = session.finish()
    context = context_for(run_dir, cwd=os.getcwd())
    _show_table(out, records, run_dir.meta(), context)
    out.print(f"run directory: {run_dir.path}", markup=False)
    if kept is not None:
        failing = pool.kept_failing()[1]
        line = (f"kept: {kept.kernel_name} (topology {kept.lab_id}{f', as {failing} left it' if failing else ''}): "
                f"lab ssh {kept.kernel_name}@{kept.lab_id} alice | lab down {kept.kernel_name}@{kept.lab_id}")
        out.print(line, soft_wrap=True, markup=False)
    elif keep and not interrupted:
        log.warning("--keep: no topology left to keep (the last cell's was torn down after a lab error)")
    elif keep_failing:
        log.info("--keep-failing: nothing kept (no cell failed with its topology up)")
    if interrupted:
        raise typer.Exit(130)
    raise typer.Exit(run_exit_code(cells_of(records)))


def _stage_adhoc(text: str, tree: Optional[Path], matrix: Optional[Path], kernels: Optional[str],
                 resume: Optional[Path]):
    """`--kernel`: its spec and the matrix with that one row, written into a fresh directory (moved into the run
    directory once the host checks pass, so a host that is not ready leaves nothing behind)."""
    import tempfile
    from .. import adhoc as adhocs
    from ..spec import load_matrix
    from .common import matrix_path
    if kernels:
        raise Usage("--kernel and --kernels: give one (--kernel replaces the matrix's rows)")
    if resume:
        raise Usage("--kernel and --resume: a resumed run has its own matrix (fix: lab run --resume RUN "
                    "--matrix RUN/matrix.yaml)")
    env_tree = os.environ.get("NFSLAB_LINUX_TREE") or None
    if tree is not None:
        if not tree.is_dir():
            raise Usage(f"--kernel-tree {tree}: no such directory")
        if env_tree and Path(env_tree).resolve() != tree.resolve():
            raise Usage(f"--kernel-tree {tree} and NFSLAB_LINUX_TREE={env_tree}: give one (the variable would "
                        f"override the tree at build time)")
    try:
        adhoc = adhocs.parse(text, str(tree) if tree is not None else env_tree)
    except (ValueError, OSError, subprocess.SubprocessError) as e:
        raise Usage(f"--kernel {text}: {e}") from None
    base = load_matrix(matrix_path(matrix))
    staged = Path(tempfile.mkdtemp(prefix="nfslab-adhoc-"))
    adhocs.write(adhoc, base, staged)
    return adhoc, staged


@app.command()
def table(run_dir: Path = typer.Argument(..., help="a run directory (runs/<run-id>)"),
          fmt: str = typer.Option("md", "--format", "-f", help="md | html | json | junit | terminal (the table "
                                  "`lab run` prints, with the rerun commands of the mismatching cells)"),
          output: Optional[Path] = typer.Option(None, "--output", "-o", help="write here instead of stdout"),
          baseline: Optional[Path] = typer.Option(None, "--baseline", help="a run directory to compare with (as "
                                                  "`lab compare` does): the cells whose verdict changed are marked"),
          for_docs: bool = typer.Option(False, "--for-docs", help="for a committed page: no links to the run's logs "
                                        "and captures (they are not committed), no paths of this machine"),
          fail_on: str = typer.Option("none", "--fail-on", help="exit 1 after rendering if the table has any of "
                                      "these, comma-separated: regression, unexpected-pass, flaky, error, skip "
                                      "(default: none, exit 0)")):
    """Render a run's compatibility table; with --fail-on, also be the gate that decides pass/fail (exit 1)."""
    from ..aggregate import cells_of
    from ..render import FAIL_ON, FORMATS, fail_on_hits, render
    from ..results import RunDir
    from ..render.tables import context_for
    if fmt not in (*FORMATS, "terminal"):
        raise Usage(f"unknown format '{fmt}' (allowed: {', '.join(FORMATS)}, terminal)")
    gate = parse_fail_on(fail_on, FAIL_ON)
    if not run_dir.is_dir():
        raise Usage(f"{run_dir}: no such run directory")
    if baseline is not None and not baseline.is_dir():
        raise Usage(f"--baseline {baseline}: no such run directory")
    if output:
        output_file(output, "--output")
    rd = RunDir(run_dir)
    runs = rd.runs()
    context = context_for(rd, baseline=baseline, cwd=os.getcwd(), for_docs=for_docs)
    if fmt == "terminal":
        text = _terminal_text(runs, rd.meta(), context, output is None)
    else:
        text = render(runs, fmt, meta=rd.meta(), context=context)
    if output:
        write_output(output, text)
    else:
        sys.stdout.write(text)
    hits = fail_on_hits(cells_of(runs), gate)
    if hits:
        print(f"lab table: --fail-on: {', '.join(f'{n} {name}' for name, n in hits.items())}", file=sys.stderr)
        raise typer.Exit(1)


def _terminal_text(records, meta: dict, context, colour: bool) -> str:
    """What `lab run` prints after its runs: the rich table, then the rerun commands of the mismatching cells."""
    console = Console(width=out.width, record=True, markup=False, emoji=False, highlight=False,
                      force_terminal=colour and sys.stdout.isatty(), file=io.StringIO())
    _show_table(console, records, meta, context)
    return console.export_text(styles=colour and sys.stdout.isatty())


def _show_table(console: Console, records, meta: dict, context) -> None:
    """The rich table, then the rerun commands of the cells that did not go as history expects: what `lab run`
    prints at its end and `lab table -f terminal` renders."""
    from ..render import rerun_lines, render_terminal
    console.print(render_terminal(records, meta=meta, context=context))
    reruns = rerun_lines(records, meta, context)
    if reruns:
        console.print(RERUN_HEADER, markup=False)
        for line in reruns:
            console.print(f"  {line}", soft_wrap=True, markup=False)


RERUN_HEADER = "to rerun the cells that did not go as history expects:"


def parse_fail_on(text: str, allowed: tuple[str, ...]) -> set[str]:
    """`regression,flaky` → {"regression", "flaky"}; `none` (or nothing) → no gate."""
    names = {name.strip() for name in text.split(",") if name.strip()} - {"none"}
    unknown = sorted(names - set(allowed))
    if unknown:
        raise Usage(f"--fail-on: unknown category '{unknown[0]}' (allowed: none, {', '.join(allowed)})")
    return names


@app.command()
def merge(dest: Path = typer.Argument(..., help="the merged run directory (created)"),
          sources: list[Path] = typer.Argument(..., help="run directories to merge (xdist workers, CI shards)")):
    """Merge run directories into one; the latest result of a cell wins."""
    from ..results import merge as merge_runs
    for s in sources:
        if not s.is_dir():
            raise Usage(f"{s}: no such run directory")
    output_dir(dest, "a run directory")
    merged = merge_runs(dest, sources)
    log.info("%d cells in %s", len(merged.records()), merged.path)
