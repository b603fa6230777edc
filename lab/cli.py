"""`lab`: the command line. Each command is thin: it parses, calls one module, and turns known failures into a
one-line message with exit code 2 (bad input, host not ready) instead of a traceback.

Exit codes of `lab run`: 0 every cell as history expects; 1 a kernel result contradicts kernels/*.yaml
(regression, unexpected pass, or a flaky cell where a pass is expected); 3 lab errors (no kernel result for some
cells); 2 bad input; 130 interrupted. A cell's runs add up by lab/aggregate.py's rule, as everywhere else.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .errors import HostNotReady, LabError
from .paths import PROJECT, LabHome
from .spec import SpecError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="nfslab: boots an NFS server and two clients per kernel (real VMs) and tells which kernels "
                       "serve stale data after a rename-over (the be189f7e7f03 bug).")
box_app = typer.Typer(no_args_is_help=True, help="The lab's Vagrant box.")
app.add_typer(box_app, name="box")
console = Console(stderr=True, soft_wrap=True)   # progress lines stay whole in logs and CI output
out = Console(width=None if sys.stdout.isatty() else 200)   # a logged table keeps its cells whole

APT_PACKAGES = ("vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils debootstrap "
                "openssh-client dnsmasq-base iptables ebtables busybox-static e2fsprogs cpio kmod iproute2 xz-utils "
                "zstd tshark").split()

MatrixOpt = typer.Option(None, "--matrix", "-m", help="matrix file (default: ./matrix.yaml, else nfslab's own)")
KernelsOpt = typer.Option(None, "--kernels", "-k", help="only these kernel rows, comma-separated")


class Usage(Exception):
    """Bad input from the user: one line, exit 2."""


def _matrix_path(path: Optional[Path]) -> Path:
    if path is not None:
        if path.is_dir():
            raise Usage(f"--matrix {path}: is a directory (fix: name the file, e.g. --matrix {path / 'matrix.yaml'})")
        if not path.exists():
            raise Usage(f"--matrix {path}: no such file (fix: leave --matrix out to use ./matrix.yaml, else "
                        f"nfslab's own)")
        return path
    local = Path("matrix.yaml")
    return local if local.exists() else PROJECT / "matrix.yaml"


def _load(path: Optional[Path], kernels: Optional[str]):
    from .spec import load_matrix
    matrix = load_matrix(_matrix_path(path))
    try:
        return matrix, matrix.cells(kernels.split(",") if kernels else None)
    except SpecError as e:  # the bad name came from the command line, not from the file
        raise Usage(f"--kernels: {e.message}") from None


def _progress(msg: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {msg}", highlight=False)


@app.command("list")
def list_cells(matrix: Optional[Path] = MatrixOpt, kernels: Optional[str] = KernelsOpt,
               as_json: bool = typer.Option(False, "--json", help="machine-readable list")):
    """List the cells of the matrix (ids like debian-6.1/vers=4.0/leases=on) with what history expects."""
    m, cells = _load(matrix, kernels)
    rows = [{"id": c.id, "kernel": c.kernel, "params": c.params, "expected": m.kernel(c.kernel).expected(c.params),
             "source": m.kernel(c.kernel).source_kind} for c in cells]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    for r in rows:
        out.print(f"{r['id']:48} expect {r['expected']:4}  ({r['source']})", highlight=False)
    out.print(f"{len(rows)} cells, {len({r['kernel'] for r in rows})} kernels", highlight=False)


@app.command()
def setup(apt: bool = typer.Option(True, help="install missing Debian packages with apt-get"),
          box: bool = typer.Option(True, help="build the lab box if its inputs changed")):
    """Prepare this host (idempotent): Debian packages, the lab box, the lab namespace with its own libvirtd."""
    from . import preflight
    from .boxes import ensure_box
    from .host import Host, missing_tools, require_root
    require_root()
    if apt and missing_tools():
        _progress(f"apt-get install {len(APT_PACKAGES)} packages")
        for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                                                     *APT_PACKAGES]):
            if subprocess.run(argv, env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
                              ).returncode != 0:
                raise HostNotReady(f"`{' '.join(argv[:3])}` failed; see its output above")
    preflight.check("setup", setup_hint=not apt)
    home = LabHome.default().ensure()
    built = ensure_box(home, progress=_progress) if box else None
    host = Host(home)
    host.up(probe_kernel=built.dir / "vmlinuz" if built else None)
    _progress(f"host ready: namespace {host.netns}, libvirtd pid {(home.run / 'libvirtd.pid').read_text().strip()}, "
              f"accelerator {host.accel}" + (f", box {built.name}" if built else ""))


@box_app.command("build")
def box_build():
    """Build (or reuse) the lab's Vagrant box: debootstrap bookworm, no systemd, lab ssh key; cached by input hash."""
    from . import preflight
    preflight.check("box build")
    from .boxes import ensure_box
    started = time.monotonic()
    built = ensure_box(LabHome.default().ensure(), progress=_progress)
    _progress(f"box {built.name} ready ({time.monotonic() - started:.0f}s)")


@app.command()
def run(matrix: Optional[Path] = MatrixOpt, kernels: Optional[str] = KernelsOpt,
        runs: Path = typer.Option(Path("runs"), help="where run directories are created"),
        resume: Optional[Path] = typer.Option(None, help="continue this run directory: finished cells are kept"),
        repeats: Optional[int] = typer.Option(None, "--repeats", help="runs per cell (default: the matrix's "
                                              "experiment.repeats; with --resume, the resumed run's)"),
        keep_host: bool = typer.Option(False, help="leave the lab namespace and libvirtd running afterwards")):
    """Run the matrix on real VMs and print the compatibility table (also written to the run directory)."""
    from . import preflight
    m, cells = _load(matrix, kernels)
    if resume and not resume.is_dir():
        raise Usage(f"--resume {resume}: no such run directory (fix: give one that `lab run` made, e.g. "
                    f"{runs}/<run-id>)")
    if repeats is not None and repeats < 1:
        raise Usage(f"--repeats {repeats}: a cell runs at least once (allowed: a whole number >= 1)")
    preflight.check("run")   # before anything exists: a host that is not ready leaves no empty run directory
    # imported after the check: python-vagrant logs a warning of its own at import when vagrant is missing
    from .aggregate import cells_of
    from .cleanup import release
    from .report import render_terminal
    from .results import RunDir
    from .runner import Runner, experiment_meta, runs_to_do, write_tables
    run_dir = RunDir(resume) if resume else RunDir.create(runs)
    repeats = repeats or (run_dir.meta().get("repeats") if resume else None) or m.experiment.repeats
    done = run_dir.finished_runs() if resume else set()
    todo = runs_to_do(cells, repeats, done)
    started = time.monotonic()
    run_dir.write_meta({**run_dir.meta(), "matrix": str(m.path), "kernels": [k.name for k in m.kernels],
                        "axes": m.axes, "server": m.server, "command": " ".join(["lab", *sys.argv[1:]]),
                        "run_id": run_dir.run_id, "started": run_dir.meta().get("started") or _now(),
                        "repeats": repeats, "experiment": experiment_meta(m, repeats)})
    left = len({c.id for c, _ in todo})
    runs_note = f" ({len(todo)} runs, {repeats} a cell)" if repeats > 1 else ""
    _progress(f"run {run_dir.path}: {left} cells to run{runs_note}" +
              (f", {len(cells) - left} already done" if len(cells) > left else ""))
    runner = Runner(m, run_dir, progress=_progress)
    # both explicitly: a process started from a non-interactive shell in the background inherits SIGINT ignored
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupt)
    interrupted = False
    try:
        for i, (cell, k) in enumerate(todo, 1):
            record = runner.run_cell(cell, k, repeats)
            which = f" run {k}/{repeats}" if repeats > 1 else ""
            _progress(f"[{i}/{len(todo)}] {cell.id}{which}: {record.verdict_obj.summary()} ({record.duration_s:.0f}s)")
    except KeyboardInterrupt:
        interrupted = True
        _progress("interrupted: tearing down (finished cells are kept; resume with --resume)")
    finally:
        runner.close()
        release(runner.host, run_dir.path, keep_host)
    run_dir.write_meta({**run_dir.meta(), "finished": _now(), "wall_s": round(time.monotonic() - started)})
    records = write_tables(run_dir)
    out.print(render_terminal(records, meta=run_dir.meta()))
    out.print(f"run directory: {run_dir.path}", highlight=False)
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
          fmt: str = typer.Option("md", "--format", "-f", help="md | html | json | junit"),
          output: Optional[Path] = typer.Option(None, "--output", "-o", help="write here instead of stdout"),
          fail_on: str = typer.Option("none", "--fail-on", help="exit 1 after rendering if the table has any of "
                                      "these, comma-separated: regression, unexpected-pass, flaky, error, skip "
                                      "(default: none, exit 0)")):
    """Render a run's compatibility table; with --fail-on, also be the gate that decides pass/fail (exit 1)."""
    from .aggregate import cells_of
    from .report import FAIL_ON, FORMATS, fail_on_hits, render
    from .results import RunDir
    if fmt not in FORMATS:
        raise Usage(f"unknown format '{fmt}' (allowed: {', '.join(FORMATS)})")
    gate = parse_fail_on(fail_on, FAIL_ON)
    if not run_dir.is_dir():
        raise Usage(f"{run_dir}: no such run directory")
    rd = RunDir(run_dir)
    runs = rd.runs()
    text = render(runs, fmt, title="nfslab compatibility", meta=rd.meta())
    if output:
        output.write_text(text)
    else:
        sys.stdout.write(text)
    hits = fail_on_hits(cells_of(runs), gate)
    if hits:
        print(f"lab table: --fail-on: {', '.join(f'{n} {name}' for name, n in hits.items())}", file=sys.stderr)
        raise typer.Exit(1)


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
    merged = merge_runs(dest, sources)
    _progress(f"{len(merged.records())} cells in {merged.path}")


@app.command()
def clean(keep_host: bool = typer.Option(False, help="remove topologies only; keep the namespace and libvirtd")):
    """Remove everything the lab created: VMs, snapshots, volumes, networks, then libvirtd and the namespace."""
    from . import preflight
    preflight.check("clean")
    from .boxes import prune_stale
    from .cleanup import clean_everything
    removed = clean_everything(keep_host=keep_host) + prune_stale(LabHome.default())
    for r in removed:
        _progress(f"removed {r}")
    _progress("nothing to remove" if not removed else f"{len(removed)} removed")


def _fail(message: str, code: int) -> None:
    """One line on stderr, never wrapped, never a traceback."""
    print(f"lab: {message}", file=sys.stderr)
    sys.exit(code)


def main() -> None:
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
            sys.exit((128 if sys.argv[1:2] == ["bisect-step"] else 2) if e.exit_code else 0)
        if type(e).__name__ == "Abort":
            sys.exit(130)
        raise


from . import cli_bisect  # noqa: E402,F401  (registers bisect, bisect-step, compare, fetch-baseline on app)
