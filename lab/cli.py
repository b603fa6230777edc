"""`lab`: the command line. Each command is thin: it parses, calls one module, and turns known failures into a
one-line message with exit code 2 (bad input, host not ready) instead of a traceback.

Exit codes of `lab run`: 0 every cell as history expects; 1 a kernel result contradicts kernels/*.yaml
(regression, unexpected pass, or a flaky cell where a pass is expected); 3 lab errors (no kernel result for some
cells); 2 bad input; 130 interrupted; 70 (any command) an internal error, a bug: one line, the traceback in a file
(lab/crash.py). A cell's runs add up by lab/aggregate.py's rule, as everywhere else.

Progress goes to the `lab` logger (lab/log.py), results to stdout through `out`; neither reads rich markup, because
what they print holds paths, command output and names the lab does not control.
"""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from . import crash
from .errors import HostNotReady, LabError
from .log import log
from .paths import DEFAULT_MATRIX, LabHome
from .spec import SpecError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="nfslab: boots an NFS server and two clients per kernel (real VMs) and tells which kernels "
                       "serve stale data after a rename-over (the be189f7e7f03 bug).")
box_app = typer.Typer(no_args_is_help=True, help="The lab's Vagrant box.")
app.add_typer(box_app, name="box")
# a logged table keeps its cells whole; markup and emoji codes off: printed text is never parsed
out = Console(width=None if sys.stdout.isatty() else 200, markup=False, emoji=False, highlight=False)

MatrixOpt = typer.Option(None, "--matrix", "-m", help="matrix file (default: ./matrix.yaml, else nfslab's own)")
KernelsOpt = typer.Option(None, "--kernels", "-k", help="only these kernel rows, comma-separated")
CellOpt = typer.Option(None, "--cell", help="only the cells with these axis values, e.g. vers=4.1,leases=on (an axis "
                                            "left out matches all its values); repeat it for more cells")


class Usage(Exception):
    """Bad input from the user: one line, exit 2."""


def version() -> str:
    """The installed distribution's version; a checkout run without installing has the package's own."""
    from importlib.metadata import PackageNotFoundError, version as installed
    try:
        return installed("nfslab")
    except PackageNotFoundError:
        from . import __version__
        return __version__


def _print_version(value: bool) -> None:
    if value:
        print(f"nfslab {version()}")
        raise typer.Exit()


def _matrix_path(path: Optional[Path]) -> Path:
    if path is not None:
        if path.is_dir():
            raise Usage(f"--matrix {path}: is a directory (fix: name the file, e.g. --matrix {path / 'matrix.yaml'})")
        if not path.exists():
            raise Usage(f"--matrix {path}: no such file (fix: leave --matrix out to use ./matrix.yaml, else "
                        f"nfslab's own)")
        return path
    local = Path("matrix.yaml")
    return local if local.exists() else DEFAULT_MATRIX


def _output_file(path: Path, option: str, example: str = "table.md") -> Path:
    """A file a command will write: its directory must exist (a missing one is more likely a typo than a wish), and
    it must not be a directory or a device. Checked before any work, so a long command does not fail at its end."""
    name = f"{option} {path}" if option else str(path)
    if path.is_dir():
        raise Usage(f"{name}: is a directory (fix: name a file in it, e.g. {path / example})")
    if path.exists() and not path.is_file():
        raise Usage(f"{name}: not a regular file")
    if not path.parent.is_dir():
        raise Usage(f"{name}: no directory {path.parent} (fix: create it first, e.g. mkdir -p {path.parent})")
    return path


def _output_dir(path: Path, what: str) -> Path:
    """A directory a command creates or adds to; its parent must exist, for the same reason."""
    if path.exists() and not path.is_dir():
        raise Usage(f"{path}: is a file, not {what} (fix: name a new or existing directory)")
    if not path.exists() and not path.parent.is_dir():
        raise Usage(f"{path}: no directory {path.parent} to create it in (fix: mkdir -p {path.parent} first)")
    return path


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as e:
        raise Usage(f"{path}: cannot write it: {e.strerror}") from None


def _load(path: Optional[Path], kernels: Optional[str], cells: Optional[list[str]] = None):
    from .spec import load_matrix
    matrix = load_matrix(_matrix_path(path))
    where = cell_filters(cells, matrix.axes)
    try:
        return matrix, matrix.cells(kernels.split(",") if kernels else None, where)
    except SpecError as e:  # the bad name came from the command line, not from the file
        raise Usage(f"--kernels: {e.message}") from None


def cell_filters(texts: Optional[list[str]], axes: dict) -> list[dict]:
    """Each --cell as the axis values it selects (several --cell: any of them)."""
    from .spec import parse_cell_filter
    filters = []
    for text in texts or []:
        try:
            filters.append(parse_cell_filter(text, axes))
        except ValueError as e:
            raise Usage(f"--cell {text}: {e}") from None
    return filters


@app.callback()
def _options(verbose: bool = typer.Option(False, "--verbose", "-v", help="also show debug lines"),
             quiet: bool = typer.Option(False, "--quiet", "-q", help="progress off: only warnings, errors and "
                                                                       "results"),
             show_version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                               help="print nfslab's version and exit")):
    """Options for every command: how much progress to show (lab/log.py); --version."""
    from . import log as logs
    if verbose and quiet:
        raise Usage("--verbose and --quiet: give one of them")
    logs.setup(logs.VERBOSE if verbose else logs.QUIET if quiet else logs.NORMAL)


@app.command("list")
def list_cells(matrix: Optional[Path] = MatrixOpt, kernels: Optional[str] = KernelsOpt,
               cell: Optional[list[str]] = CellOpt,
               as_json: bool = typer.Option(False, "--json", help="machine-readable list")):
    """List the cells of the matrix (ids like debian-6.1/vers=4.0/leases=on) with what history expects."""
    m, cells = _load(matrix, kernels, cell)
    rows = [{"id": c.id, "kernel": c.kernel, "params": c.params, "expected": m.kernel(c.kernel).expected(c.params),
             "source": m.kernel(c.kernel).source_kind} for c in cells]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    for r in rows:
        out.print(f"{r['id']:48} expect {r['expected']:4}  ({r['source']})", markup=False)
    out.print(f"{len(rows)} cells, {len({r['kernel'] for r in rows})} kernels", markup=False)


@app.command()
def init(directory: Path = typer.Argument(Path("."), help="where to write matrix.yaml (default: here)")):
    """Write a starter matrix.yaml (nfslab's default matrix) to edit; `lab run` in that directory uses it. Its rows
    are nfslab's own kernel specs, unless a kernels/ directory of your own lies beside or above it."""
    if not directory.is_dir():
        raise Usage(f"{directory}: no such directory")
    target = directory / "matrix.yaml"
    if target.exists():
        raise Usage(f"{target}: already exists (fix: edit it, or name another directory)")
    target.write_text(DEFAULT_MATRIX.read_text())
    print(f"wrote {target}; `lab list` in {directory} shows its cells")


@app.command()
def setup(apt: bool = typer.Option(True, help="install missing Debian packages with apt-get"),
          box: bool = typer.Option(True, help="build the lab box if its inputs changed")):
    """Prepare this host (idempotent): Debian packages, the lab box, the lab namespace with its own libvirtd."""
    from . import hostdeps, preflight
    from .boxes import ensure_box
    from .host import Host, require_root
    require_root()
    if apt:
        apt_install(hostdeps.missing_packages())
    preflight.check("setup", setup_hint=not apt)
    home = LabHome.default().ensure()
    built = ensure_box(home, progress=log.info) if box else None
    host = Host(home)
    host.up(probe_kernel=built.dir / "vmlinuz" if built else None)
    log.info("host ready: namespace %s, libvirtd pid %s, accelerator %s%s", host.netns,
             (home.run / "libvirtd.pid").read_text().strip(), host.accel, f", box {built.name}" if built else "")


def apt_install(packages: list[str]) -> None:
    """apt-get install these packages (those of lab/hostdeps.py whose command or file is missing); nothing at all,
    not even `apt-get update`, when none is: a set-up host stays quick to set up and needs no network."""
    if not packages:
        return
    log.info("apt-get install %s", " ".join(packages))
    _apt(["apt-get", "update", "-q"])
    _apt(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages])


def _apt(argv: list[str]) -> None:
    if subprocess.run(argv, env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
                      ).returncode != 0:
        raise HostNotReady(f"`{' '.join(argv[:3])}` failed; see its output above")


@app.command()
def doctor():
    """Say what this host lacks for each part of the lab (every run, the box, capture, each kernel source kind),
    with the Debian package that brings it; exit 0 when nothing is missing, 2 otherwise. Changes nothing."""
    from . import hostdeps
    missing_any: list[str] = []
    for group in hostdeps.GROUPS:
        missing = group.missing()
        state = "missing" if missing else "ok"
        print(f"{state:8} {group.name:13} {group.used_by}")
        for what, package in missing.items():
            print(f"{'':8} {'':13}   {what} → apt package {package}")
        missing_any += missing.values()
    if not missing_any:
        print("everything the lab runs is installed")
        return
    hint = "" if os.geteuid() == 0 else " (as root: root's PATH has /usr/sbin, where some of these live)"
    print(f"fix: run `lab setup`, or {hostdeps.install_hint(sorted(set(missing_any)))}{hint}")
    raise typer.Exit(2)


@box_app.command("build")
def box_build():
    """Build (or reuse) the lab's Vagrant box: debootstrap bookworm, no systemd, lab ssh key; cached by input hash."""
    from . import preflight
    preflight.check("box build")
    from .boxes import ensure_box
    started = time.monotonic()
    built = ensure_box(LabHome.default().ensure(), progress=log.info)
    log.info("box %s ready (%.0fs)", built.name, time.monotonic() - started)


@app.command()
def run(matrix: Optional[Path] = MatrixOpt, kernels: Optional[str] = KernelsOpt, cell: Optional[list[str]] = CellOpt,
        runs: Path = typer.Option(Path("runs"), help="where run directories are created"),
        resume: Optional[Path] = typer.Option(None, help="continue this run directory: finished cells are kept"),
        repeats: Optional[int] = typer.Option(None, "--repeats", help="runs per cell (default: the matrix's "
                                              "experiment.repeats; with --resume, the resumed run's)"),
        keep_host: bool = typer.Option(False, help="leave the lab namespace and libvirtd running afterwards"),
        keep: bool = typer.Option(False, "--keep", help="leave the last cell's topology up, as the cell left it, "
                                  "to debug in place (`lab ssh`, `lab down`); not after Ctrl-C"),
        jobs: str = typer.Option("1", "--jobs", "-j", help="workers at once, each with its own topology (3 VMs): "
                                 "a number, or auto (from this host's CPUs and memory); default 1")):
    """Run the matrix on real VMs and print the compatibility table (also written to the run directory)."""
    from . import preflight
    from .schedule import parse_jobs
    try:
        jobs_asked = parse_jobs(jobs)
    except ValueError as e:
        raise Usage(f"--jobs {e}") from None
    m, cells = _load(matrix, kernels, cell)
    if resume and not resume.is_dir():
        raise Usage(f"--resume {resume}: no such run directory (fix: give one that `lab run` made, e.g. "
                    f"{runs}/<run-id>)")
    if repeats is not None and repeats < 1:
        raise Usage(f"--repeats {repeats}: a cell runs at least once (allowed: a whole number >= 1)")
    # before anything exists: a host that is not ready leaves no empty run directory
    preflight.check("run", capture=m.experiment.capture)
    preflight.check_kernels(m, list(dict.fromkeys(c.kernel for c in cells)))
    # imported after the check: python-vagrant logs a warning of its own at import when vagrant is missing
    from .aggregate import cells_of
    from .cleanup import release
    from .log import live_console
    from .parallel import Workers, resolve_jobs
    from .progress import RunProgress
    from .results import RunDir
    from .runner import experiment_meta, runs_to_do
    from .tables import context_for, spec_meta, write_tables
    run_dir = RunDir(resume) if resume else RunDir.create(runs)
    repeats = repeats or (run_dir.meta().get("repeats") if resume else None) or m.experiment.repeats
    done = run_dir.finished_runs() if resume else set()
    todo = runs_to_do(cells, repeats, done)
    started = time.monotonic()
    run_dir.write_meta({**run_dir.meta(), "matrix": str(m.path), "kernels": [k.name for k in m.kernels],
                        "axes": m.axes, "server": m.server, "command": " ".join(["lab", *sys.argv[1:]]),
                        "run_id": run_dir.run_id, "started": run_dir.meta().get("started") or _now(),
                        "repeats": repeats, "experiment": experiment_meta(m, repeats), "specs": spec_meta(m)})
    crash.save_into(run_dir.path)   # a crash from here on leaves its traceback with the run
    left = len({c.id for c, _ in todo})
    runs_note = f" ({len(todo)} runs, {repeats} a cell)" if repeats > 1 else ""
    log.info("run %s: %d cells to run%s%s", run_dir.path, left, runs_note,
             f", {len(cells) - left} already done" if len(cells) > left else "")
    workers = resolve_jobs(jobs_asked, len(todo))
    if workers > 1:
        log.info("%d workers, each with its own topology", workers)
    shown = RunProgress(todo, repeats, log, console=live_console(), jobs=workers)
    pool = Workers(m, run_dir, workers, shown, keep=keep)
    # both explicitly: a process started from a non-interactive shell in the background inherits SIGINT ignored
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupt)
    interrupted, kept = False, None
    try:
        with shown:
            pool.run(todo, repeats)
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted: tearing down (finished cells are kept; resume with --resume)")
    finally:
        kept = pool.close(keep=keep and not interrupted)
        release(pool.host, run_dir.path, keep_host)
    run_dir.write_meta({**run_dir.meta(), "finished": _now(), "wall_s": round(time.monotonic() - started)})
    records = write_tables(run_dir)
    context = context_for(run_dir, cwd=os.getcwd())
    _show_table(out, records, run_dir.meta(), context)
    out.print(f"run directory: {run_dir.path}", markup=False)
    if kept is not None:
        out.print(f"kept: {kept.kernel_name} (topology {kept.lab_id}): lab ssh {kept.kernel_name} alice | "
                  f"lab down {kept.kernel_name}", soft_wrap=True, markup=False)
    elif keep and not interrupted:
        log.warning("--keep: no topology left to keep (the last cell's was torn down after a lab error)")
    if interrupted:
        raise typer.Exit(130)
    raise typer.Exit(run_exit_code(cells_of(records)))


def run_exit_code(cells) -> int:
    """`lab run`'s exit code from the table's cells (lab/aggregate.py): 1 if one contradicts history (a regression,
    an unexpected pass, or a flaky cell where a pass is expected), else 3 if one has no kernel result, else 0."""
    if any(c.mismatch for c in cells):
        return 1
    if any(c.status == "error" for c in cells):
        return 3
    return 0


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


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
    from .aggregate import cells_of
    from .report import FAIL_ON, FORMATS, fail_on_hits, render
    from .results import RunDir
    from .tables import context_for
    if fmt not in (*FORMATS, "terminal"):
        raise Usage(f"unknown format '{fmt}' (allowed: {', '.join(FORMATS)}, terminal)")
    gate = parse_fail_on(fail_on, FAIL_ON)
    if not run_dir.is_dir():
        raise Usage(f"{run_dir}: no such run directory")
    if baseline is not None and not baseline.is_dir():
        raise Usage(f"--baseline {baseline}: no such run directory")
    if output:
        _output_file(output, "--output")
    rd = RunDir(run_dir)
    runs = rd.runs()
    context = context_for(rd, baseline=baseline, cwd=os.getcwd(), for_docs=for_docs)
    if fmt == "terminal":
        text = _terminal_text(runs, rd.meta(), context, output is None)
    else:
        text = render(runs, fmt, meta=rd.meta(), context=context)
    if output:
        _write(output, text)
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
    from .report import rerun_lines, render_terminal
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
    from .results import merge as merge_runs
    for s in sources:
        if not s.is_dir():
            raise Usage(f"{s}: no such run directory")
    _output_dir(dest, "a run directory")
    merged = merge_runs(dest, sources)
    log.info("%d cells in %s", len(merged.records()), merged.path)


@app.command()
def clean(keep_host: bool = typer.Option(False, help="remove topologies only; keep the namespace and libvirtd")):
    """Remove everything the lab created: VMs, snapshots, volumes, networks, then libvirtd and the namespace."""
    from . import preflight
    preflight.check("clean")
    from .boxes import prune_stale
    from .cleanup import clean_everything
    removed = clean_everything(keep_host=keep_host) + prune_stale(LabHome.default())
    for r in removed:
        log.info("removed %s", r)
    log.info("nothing to remove" if not removed else f"{len(removed)} removed")


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="machine-readable")):
    """What the lab has up: the host (namespace, libvirtd) and each topology (kernel, run, kept or not, machines
    and their libvirt state), from its state files. Exit 0, also when nothing is up."""
    from . import preflight
    preflight.check("status")
    from . import status as st
    from .host import Host
    host = Host(LabHome.default())
    host_up, tops = st.host_status(host), st.topologies(host)
    if as_json:
        out.print_json(st.as_json(host_up, tops))
        return
    for line in st.lines(host_up, tops):
        out.print(line, soft_wrap=True)


@app.command(context_settings={"allow_interspersed_args": False})
def ssh(kernel: str = typer.Argument(..., help="the kernel row of a kept (or running) topology, e.g. debian-6.1"),
        machine: str = typer.Argument(..., help="server, alice or bob"),
        command: Optional[list[str]] = typer.Argument(None, help="run this instead of a shell (e.g. -- mount)")):
    """Log into a machine of a kept (or running) topology as root, through the lab namespace; or run COMMAND."""
    from . import preflight
    preflight.check("ssh")
    from . import status as st
    from .host import Host
    try:
        # past the machine everything is the command, options too; click keeps the `--` that may precede it
        st.ssh(Host(LabHome.default()), kernel, machine, command[1:] if command and command[0] == "--" else command)
    except st.NotUp as e:
        raise Usage(str(e)) from None


@app.command()
def down(kernel: Optional[str] = typer.Argument(None, help="the kernel whose kept topology to destroy (default: "
                                                           "every kept one)"),
         keep_host: bool = typer.Option(False, help="keep the namespace and libvirtd even if nothing uses them")):
    """Destroy kept topologies (`lab run --keep`) as `lab clean` does, then the host if nothing else uses it."""
    from . import preflight
    preflight.check("down")
    from . import status as st
    from .host import Host
    try:
        removed = st.down(Host(LabHome.default()), kernel, keep_host=keep_host)
    except st.NotUp as e:
        raise Usage(str(e)) from None
    for r in removed:
        log.info("removed %s", r)
    log.info("no kept topology" if not removed else f"{len(removed)} removed")


def _fail(message: str, code: int) -> None:
    """One line on stderr, never wrapped, never a traceback."""
    print(f"lab: {message}", file=sys.stderr)
    sys.exit(code)


def _bisect_step() -> bool:
    """`git bisect run` is calling: its exit code is read as a verdict on a commit (lab/cli_bisect.py)."""
    return [a for a in sys.argv[1:] if not a.startswith("-")][:1] == ["bisect-step"]


def _crash(error: Exception) -> None:
    """A bug, not a result: one line, the traceback in a file, and an exit code that no result uses. For
    `git bisect run` that code is 128, which aborts the bisect rather than marking the commit bad."""
    from .bisect import EXIT_ABORT
    path = crash.save(error)
    log.debug("the traceback of the internal error:", exc_info=error)   # -v shows it here as well
    _fail(crash.one_line(error, path), EXIT_ABORT if _bisect_step() else crash.EXIT_INTERNAL)


def main() -> None:
    from . import log as logs
    logs.setup()   # before the options are read; `-v`/`-q` set it up again
    crash.save_into(None)
    try:
        code = app(standalone_mode=False)   # without standalone mode, click returns typer.Exit's code
        sys.exit(code if isinstance(code, int) else 0)
    except (SpecError, Usage, HostNotReady) as e:
        _fail(str(e), 2)
    except LabError as e:
        _fail(str(e), 3)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:
        if hasattr(e, "show") and hasattr(e, "exit_code"):  # click's usage errors (vendored by typer)
            e.show()
            # git bisect run would read 2 as "bad commit"; 128 makes it abort (lab/cli_bisect.py)
            sys.exit((128 if _bisect_step() else 2) if e.exit_code else 0)
        if type(e).__name__ == "Abort":
            sys.exit(130)
        _crash(e)


from . import cli_bisect  # noqa: E402,F401  (registers bisect, bisect-step, compare, fetch-baseline on app)
