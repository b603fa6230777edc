"""`lab list`, `lab init`, `lab setup`, `lab doctor`, `lab box build`: before a run, the matrix's cells, a project
directory, and this host."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Optional

import typer

from ..errors import HostNotReady
from ..log import log
from ..paths import DEFAULT_MATRIX, LabHome
from .common import CellOpt, KernelsOpt, MatrixOpt, Usage, app, box_app, load_cells, out


@app.command("list")
def list_cells(matrix: Optional[Path] = MatrixOpt, kernels: Optional[str] = KernelsOpt,
               cell: Optional[list[str]] = CellOpt,
               as_json: bool = typer.Option(False, "--json", help="machine-readable list")):
    """List the cells of the matrix (ids like debian-6.1/vers=4.0/leases=on) with what history expects."""
    m, cells = load_cells(matrix, kernels, cell)
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
    from .. import hostdeps, preflight
    from ..boxes import ensure_box
    from ..host import Host, require_root
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
    from .. import hostdeps
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
    from .. import preflight
    preflight.check("box build")
    from ..boxes import ensure_box
    started = time.monotonic()
    built = ensure_box(LabHome.default().ensure(), progress=log.info)
    log.info("box %s ready (%.0fs)", built.name, time.monotonic() - started)
