"""`lab`'s app and what every command group shares: the output console, the common options, the one-line usage
error, and the checks of paths given on the command line (made before any work, so a long command does not fail
at its end).

Each command is thin: it parses, calls one module, and turns known failures into a one-line message with exit code
2 (bad input, host not ready) instead of a traceback. Progress goes to the `lab` logger (lab/log.py), results to
stdout through `out`; neither reads rich markup, because what they print holds paths, command output and names the
lab does not control.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ..paths import matrix_file
from ..spec import SpecError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="nfslab: boots an NFS server and two clients per kernel (real VMs) and tells which kernels "
                       "serve stale data after a rename-over (the be189f7e7f03 bug).")
box_app = typer.Typer(no_args_is_help=True, help="The lab's Vagrant box.")
app.add_typer(box_app, name="box")
# a logged table keeps its cells whole; markup and emoji codes off: printed text is never parsed
out = Console(width=None if sys.stdout.isatty() else 200, markup=False, emoji=False, highlight=False)

MatrixOpt = typer.Option(None, "--matrix", "-m", help="matrix file (default: ./matrix.yaml, else nfslab's own)")
KernelsOpt = typer.Option(None, "--kernels", "-k", help="only these kernel rows, comma-separated")
LibvirtUriOpt = typer.Option(None, "--libvirt-uri", help="the libvirt to run the VMs on: qemu:///system (default: the "
                             "lab's own libvirtd here) or qemu+ssh://[USER@]HOST/system[?keyfile=KEY&no_verify=1&"
                             "command=SSH], another lab host (docs/remote-libvirt.md)")
LibvirtNetnsOpt = typer.Option(None, "--libvirt-netns", help="with a qemu+ssh:// --libvirt-uri: the existing network "
                               "namespace from which its host is reached (default: this machine's own)")
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
        from .. import __version__
        return __version__


def print_version(value: bool) -> None:
    if value:
        print(f"nfslab {version()}")
        raise typer.Exit()


def matrix_path(path: Optional[Path]) -> Path:
    """--matrix as given, checked before any work (one line, exit 2), or the default one (lab/paths.py)."""
    if path is not None:
        if path.is_dir():
            raise Usage(f"--matrix {path}: is a directory (fix: name the file, e.g. --matrix {path / 'matrix.yaml'})")
        if not path.exists():
            raise Usage(f"--matrix {path}: no such file (fix: leave --matrix out to use ./matrix.yaml, else "
                        f"nfslab's own)")
    return matrix_file(path)


def libvirt_target(uri: Optional[str], netns: Optional[str], *, capture: bool = False):
    """--libvirt-uri and --libvirt-netns as the lab's LibvirtTarget (lab/libvirt.py `given_target`); a bad one is
    one line, exit 2."""
    from ..libvirt import BadLibvirtURI, given_target
    try:
        return given_target(uri, netns, capture=capture)
    except BadLibvirtURI as e:
        raise Usage(str(e)) from None


def output_file(path: Path, option: str, example: str = "table.md") -> Path:
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


def output_dir(path: Path, what: str) -> Path:
    """A directory a command creates or adds to; its parent must exist, for the same reason."""
    if path.exists() and not path.is_dir():
        raise Usage(f"{path}: is a file, not {what} (fix: name a new or existing directory)")
    if not path.exists() and not path.parent.is_dir():
        raise Usage(f"{path}: no directory {path.parent} to create it in (fix: mkdir -p {path.parent} first)")
    return path


def write_output(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as e:
        raise Usage(f"{path}: cannot write it: {e.strerror}") from None


def load_cells(path: Optional[Path], kernels: Optional[str], cells: Optional[list[str]] = None):
    from ..spec import load_matrix
    matrix = load_matrix(matrix_path(path))
    where = cell_filters(cells, matrix.axes)
    try:
        return matrix, matrix.cells(kernels.split(",") if kernels else None, where)
    except SpecError as e:  # the bad name came from the command line, not from the file
        raise Usage(f"--kernels: {e.message}") from None


def cell_filters(texts: Optional[list[str]], axes: dict) -> list[dict]:
    """Each --cell as the axis values it selects (several --cell: any of them)."""
    from ..spec import parse_cell_filter
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
             show_version: bool = typer.Option(False, "--version", callback=print_version, is_eager=True,
                                               help="print nfslab's version and exit")):
    """Options for every command: how much progress to show (lab/log.py); --version."""
    from .. import log as logs
    if verbose and quiet:
        raise Usage("--verbose and --quiet: give one of them")
    logs.setup(logs.VERBOSE if verbose else logs.QUIET if quiet else logs.NORMAL)


def raise_interrupt(signum, frame):
    """A signal handler: SIGTERM (and a SIGINT a background shell ignored) end a command like Ctrl-C does."""
    raise KeyboardInterrupt
