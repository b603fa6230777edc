"""One run of a matrix's cells into one run directory: what `lab run` and `pytest --matrix` share around the
runners that do the cells (lab/runner.py, lab/parallel.py).

A session owns the run's directory and its metadata (run.json, written at the start and at the finish, the same
keys for `lab run` and `pytest --matrix`), resuming (which runs of which cells an existing run directory already
holds), the list of runs still to do, the tables written at the end (lab/render/tables.py), and giving the host
back (lab/cleanup.py `release`): holding it is each runner's HostLease (lab/host.py).

Under pytest-xdist the controller owns the session's directory and run.json, and gives the directory to the workers;
a worker's session only reads it (what is finished) while its runner appends records.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from .libvirt import LibvirtTarget
from .render.tables import spec_meta, write_tables
from .results import ResultRecord, RunDir
from .spec import Cell, Matrix

if TYPE_CHECKING:
    from .host import Host


def runs_to_do(cells: list[Cell], repeats: int, done: set[tuple[str, int]]) -> list[tuple[Cell, int]]:
    """(cell, repeat) still to run, cell by cell so that a cell's runs share its kernel's topology; `done` is
    RunDir.finished_runs() of a resumed run (a run that ended in a lab ERROR is not done)."""
    return [(cell, k) for cell in cells for k in range(1, repeats + 1) if (cell.id, k) not in done]


def experiment_meta(matrix: Matrix, repeats: int) -> dict:
    """What run.json records of how cells ran and were judged: the table's criterion line reads it."""
    exp = matrix.experiment
    return {"name": exp.name, "pass_within": exp.pass_within, "duration": exp.duration, "interval": exp.interval,
            "settle": exp.settle, "repeats": repeats, "trace_syscalls": exp.trace_syscalls}


def now_text() -> str:
    """run.json's `started` and `finished`: `2026-11-23 10:45:00 UTC`."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def run_directory(root: Path, given: Path | str | None = None) -> RunDir:
    """The run directory a session writes into: `given` (created if it does not exist yet; one that exists is
    resumed), else a new one under `root` (runs/<run-id>)."""
    if given is None:
        return RunDir.create(root)
    run_dir = RunDir(given)
    run_dir.path.mkdir(parents=True, exist_ok=True)
    return run_dir


class RunSession:
    """One run of `cells` (of `matrix`) into `run_dir`.

    `repeats`: runs per cell; None takes a resumed run's own (run.json), else the matrix's experiment.repeats.
    `resumed`: the directory was given (it may hold finished runs, which are not run again).
    run.json records where the run came from as well as what it ran: the run id, the server, the command, when the
    run started and finished and its wall time, whichever of `lab run` and `pytest --matrix` ran it (table.md and
    the HTML show them in their header; the table in pytest's terminal summary shows none of them).
    `libvirt`: where the VMs run (`--libvirt-uri`); run.json names a remote one (`libvirt`), so a CI shard's results
    say which lab host made them.
    """

    def __init__(self, matrix: Matrix, cells: list[Cell], run_dir: RunDir, *, repeats: int | None = None,
                 resumed: bool = False, command: str = "", libvirt: LibvirtTarget | None = None):
        self.matrix, self.cells, self.run_dir = matrix, cells, run_dir
        self.libvirt = libvirt or LibvirtTarget()
        self.resumed, self.command = resumed, command
        self.repeats = repeats or (run_dir.meta().get("repeats") if resumed else None) or matrix.experiment.repeats
        self._started = time.monotonic()

    # ---- the start --------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Write run.json for this run (kept keys of a resumed one stay; `started` keeps the first start)."""
        self._started = time.monotonic()
        m, old = self.matrix, self.run_dir.meta()
        meta = {**old, "matrix": str(m.path), "kernels": [k.name for k in m.kernels], "axes": m.axes,
                "server": m.server, "command": self.command, "run_id": self.run_dir.run_id,
                "started": old.get("started") or now_text(), "repeats": self.repeats,
                "experiment": experiment_meta(m, self.repeats), "specs": spec_meta(m)}
        if self.libvirt.remote:
            meta["libvirt"] = self.libvirt.uri
        self.run_dir.write_meta(meta)

    # ---- what is left to do -----------------------------------------------------------------------------------
    def todo(self) -> list[tuple[Cell, int]]:
        """Every (cell, repeat) to run, less those a resumed run already finished."""
        return runs_to_do(self.cells, self.repeats, self.run_dir.finished_runs() if self.resumed else set())

    def finished_cells(self) -> set[str]:
        """Cells a resumed run leaves out altogether (each of their runs is finished). None in a new run: there an
        xdist worker that collects late must still collect what the others did, whatever they wrote meanwhile."""
        return self.run_dir.finished_cells(self.repeats) if self.resumed else set()

    def runs_left(self, cell: Cell) -> list[int]:
        """The repeats of one cell with no finished run in the directory yet (read now: a resumed cell runs only the
        runs it lacks)."""
        done = self.run_dir.finished_runs()
        return [k for k in range(1, self.repeats + 1) if (cell.id, k) not in done]

    def runs_of(self, cell: Cell) -> list[ResultRecord]:
        """The cell's runs in the directory (the latest record of each), the asked-for repeats only."""
        return [r for r in self.run_dir.runs() if r.cell_id == cell.id and r.repeat <= self.repeats]

    # ---- the end ----------------------------------------------------------------------------------------------
    def finish(self) -> list[ResultRecord]:
        """Record the finish (when, and the wall time since start()), then write the tables into the run directory;
        returns the records they were made of. Under xdist only the controller finishes (it also started)."""
        self.run_dir.write_meta({**self.run_dir.meta(), "finished": now_text(),
                                 "wall_s": round(time.monotonic() - self._started)})
        return write_tables(self.run_dir)

    def booted_anything(self, host: Host) -> bool:
        """Whether a topology of this run was ever reserved (state files, destroyed ones included)."""
        from .cleanup import topology_dirs   # here: cleanup brings python-vagrant, which a table does not need
        return bool(topology_dirs(host.home, self.run_dir.path, include_destroyed=True))

    def release(self, host: Host | None = None, keep_host: bool = False) -> list[str]:
        """Remove this run's topologies (not a kept one), and the host unless kept or still in use."""
        from .cleanup import release
        from .host import Host
        return release(host or Host(), self.run_dir.path, keep_host)
