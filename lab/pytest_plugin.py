"""`pytest --matrix`: one test per matrix cell, grouped by kernel for xdist, the table in the terminal summary.

Only wiring lives here (testinfra-style); the work is `runner.Runner`, the run around it `session.RunSession`
(run.json, resume, tables, the host given back), shared with `lab run`. Design points from pytest-xdist's tracker:
- cells carry their `xdist_group` mark from creation, and our collection hook runs first (#1241, #1253);
- each worker owns at most one topology; topology and host cleanup does not rely on worker teardown (#537, #679):
  the controller removes whatever this run's state files still name in `pytest_unconfigure`;
- the run directory is chosen once by the controller and handed to the workers (`workerinput`).

Each cell runs `--repeats` times (default: the matrix's experiment.repeats), and its runs add up by the rule
`lab run` and the table use (lab/aggregate.py). Outcomes: pass → PASSED; a kernel failure → FAILED (or XFAIL when
history expects it, strict so a kernel that starts passing shows as XPASS(strict) → FAILED); a flaky cell (its
runs disagree) → FAILED with "flaky k/N fail", or XFAIL where history expects a failure; a lab failure on every
run → ERROR (raised in setup); a kernel that cannot be had → SKIPPED with the reason. A crash of the lab's own code
(a bug) is never a kernel result either: all of the lab's work for a cell happens in setup, so any exception it
raises is an ERROR, and the test phase only turns the cell result already made into PASSED or FAILED.
"""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from .paths import matrix_file

RUNNER_KEY = pytest.StashKey()
SESSION_KEY = pytest.StashKey()   # the run (lab/session.py RunSession)


def pytest_addoption(parser):
    group = parser.getgroup("nfslab", "nfslab compatibility matrix")
    group.addoption("--matrix", nargs="?", const="matrix.yaml", default=None, metavar="PATH",
                    help="run the NFS compatibility matrix (default file: ./matrix.yaml, else nfslab's own) "
                         "instead of the collected tests: one test per cell, real VMs")
    group.addoption("--kernels", default=None, metavar="A,B",
                    help="with --matrix: only these kernel rows (names from kernels/*.yaml)")
    group.addoption("--cell", action="append", default=None, metavar="AXIS=VALUE,…",
                    help="with --matrix: only the cells with these axis values, e.g. vers=4.1,leases=on; repeat it "
                         "for more (or select with -k \"vers_4_1 and leases_on\", or a cell's node id)")
    group.addoption("--run-dir", default=None, metavar="DIR",
                    help="with --matrix: write results here (default runs/<run-id>); an existing run dir resumes: "
                         "cells with a kernel result are not run again")
    group.addoption("--repeats", type=int, default=None, metavar="N",
                    help="with --matrix: runs per cell (default: the matrix's experiment.repeats); a cell whose runs "
                         "disagree is flaky")
    group.addoption("--libvirt-uri", default=None, metavar="URI",
                    help="with --matrix: the libvirt to run the VMs on, qemu:///system (the lab's own, default) or "
                         "qemu+ssh://[USER@]HOST/system[?keyfile=KEY&no_verify=1&command=SSH] (as lab run)")
    group.addoption("--libvirt-netns", default=None, metavar="NAME",
                    help="with --matrix and a qemu+ssh:// --libvirt-uri: the existing network namespace its host is "
                         "reached from (default: this machine's own)")
    group.addoption("--lab-keep-host", action="store_true",
                    help="with --matrix: leave the lab namespace and libvirtd running afterwards (faster reruns)")


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config):
    config.addinivalue_line("markers", "cell: one matrix cell of `pytest --matrix` (nfslab)")
    if not config.getoption("--matrix"):
        return
    from .results import RunDir
    from .spec import SpecError, load_matrix, parse_cell_filter
    try:
        option = config.getoption("--matrix")   # bare --matrix: ./matrix.yaml, else nfslab's own
        matrix = load_matrix(matrix_file(None if option == "matrix.yaml" else Path(option)))
    except SpecError as e:
        raise pytest.UsageError(str(e)) from None
    kernels = config.getoption("--kernels")
    where = []
    for text in config.getoption("--cell") or []:
        try:
            where.append(parse_cell_filter(text, matrix.axes))
        except ValueError as e:
            raise pytest.UsageError(f"--cell {text}: {e}") from None
    try:
        cells = matrix.cells(kernels.split(",") if kernels else None, where)
    except SpecError as e:  # the bad name came from the command line, not from the file
        raise pytest.UsageError(f"--kernels: {e.message}") from None
    cells = _chosen_by_node_id(config, matrix, cells)
    repeats = config.getoption("--repeats") or matrix.experiment.repeats
    if repeats < 1:
        raise pytest.UsageError(f"--repeats {repeats}: a cell runs at least once (allowed: a whole number >= 1)")
    libvirt = _libvirt_target(config, matrix)
    from .session import RunSession, run_directory
    given = config.getoption("--run-dir")
    if _is_worker(config):
        run_dir = RunDir(config.workerinput["nfslab_run_dir"])
    else:
        run_dir = run_directory(Path("runs"), given or None)
    session = RunSession(matrix, cells, run_dir, repeats=repeats, resumed=bool(given),
                         command="pytest " + " ".join(config.invocation_params.args), libvirt=libvirt)
    config.stash[SESSION_KEY] = session
    if not _is_worker(config):   # the controller owns the run directory; workers only add their records
        session.start()


def _libvirt_target(config, matrix):
    """--libvirt-uri/--libvirt-netns, checked as `lab run` checks them (one line); the controller also asks a remote
    libvirt whether it answers, before any cell runs."""
    from .errors import HostNotReady
    from .libvirt import BadLibvirtURI, given_target
    try:
        target = given_target(config.getoption("--libvirt-uri"), config.getoption("--libvirt-netns"),
                              capture=matrix.experiment.capture)
    except BadLibvirtURI as e:
        raise pytest.UsageError(str(e)) from None
    if target.remote and not _is_worker(config):
        from .remotelibvirt import check_reachable
        try:
            check_reachable(target)
        except HostNotReady as e:
            raise pytest.UsageError(str(e)) from None
    return target


def _chosen_by_node_id(config, matrix, cells):
    """Node ids among the arguments (`matrix.yaml::debian-6.1/vers=4.1/leases=on`, as a failure prints them) choose
    those cells. They name no file pytest could collect, so they are taken out of the arguments before collection
    (an xdist worker gets the original arguments and takes them out the same way)."""
    ids, rest = [], []
    for arg in config.args:
        head, sep, tail = arg.rpartition("::")   # pytest 9 spells the id `::matrix.yaml::<cell>`, older ones without
        if sep and Path(head.strip(":")).name == matrix.path.name:
            ids.append(tail)
        else:
            rest.append(arg)
    if not ids:
        return cells
    known = [c.id for c in matrix.cells()]
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise pytest.UsageError(f"{matrix.path.name}::{unknown[0]}: no such cell in {matrix.path} (`lab list` shows "
                                f"them, e.g. {known[0] if known else 'none'})")
    config.args[:] = rest or [str(config.invocation_params.dir)]
    return [c for c in cells if c.id in ids]


def axis_keywords(params: dict) -> list[str]:
    """`-k` names of a cell's axis values: vers=4.1 → vers_4_1, leases=on → leases_on (a -k expression cannot
    hold `=`; pytest matches a name when the expression's word is part of it)."""
    return [re.sub(r"\W", "_", f"{axis}_{value}") for axis, value in params.items()]


def pytest_configure_node(node):
    """xdist controller → worker: every worker writes into the controller's run directory."""
    node.workerinput["nfslab_run_dir"] = str(node.config.stash[SESSION_KEY].run_dir.path)


def pytest_ignore_collect(collection_path, config):
    """With --matrix the matrix is the test suite; the project's own tests are not collected."""
    if config.getoption("--matrix"):
        return True
    return None


class CellError(Exception):
    """A lab failure (not a kernel result): shown as ERROR with the failing step and its log."""


class CellCollector(pytest.Collector):
    def collect(self):
        return []


class CellItem(pytest.Item):
    def __init__(self, *, cell, kernel, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.record = None     # the last run's record
        self.failure: str | None = None   # set in setup: the kernel result the test phase reports
        self.add_marker(pytest.mark.xdist_group(cell.group))
        self.add_marker(pytest.mark.cell)
        self.extra_keyword_matches.update(axis_keywords(cell.params))
        if kernel.expected(cell.params) == "fail":
            notes = [e.note for e in kernel.expect if e.matches(cell.params) and e.note]
            self.add_marker(pytest.mark.xfail(strict=True, raises=AssertionError,
                                              reason=notes[0] if notes else "history says this cell fails"))

    def setup(self):
        from .aggregate import aggregate
        runner = _runner(self.config)
        session = self.config.stash[SESSION_KEY]
        for k in session.runs_left(self.cell):    # a resumed cell runs only the repeats it lacks
            self.record = runner.run_cell(self.cell, k, session.repeats)
        runs = session.runs_of(self.cell)
        result = aggregate(runs, session.repeats)
        self.record = self.record or runs[-1]
        if result.status == "skip":
            pytest.skip(result.verdicts[0].reason)
        if result.status == "error":
            first = next(v for v in result.verdicts if v.status == "error")
            raise CellError(f"{first.reason}: {first.detail} ({result.counts_text()} runs)")
        if result.status != "pass":
            summary = result.summary().removeprefix("⚠ ")   # "flaky 2/3 fail · …" for a flaky cell
            self.failure = (f"{self.cell.id}: {summary} (logs: {session.run_dir.path / self.record.logs})\n"
                            f"rerun: {self.rerun_command()}")

    def rerun_command(self) -> str:
        """The command that runs this cell alone again, as this session ran it (its matrix, its repeats)."""
        argv = ["pytest", f"--matrix={self.config.getoption('--matrix')}", self.nodeid]
        if self.config.getoption("--repeats"):
            argv += ["--repeats", str(self.config.getoption("--repeats"))]
        return shlex.join(argv)

    def runtest(self):
        if self.failure is not None:
            raise AssertionError(self.failure)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, (AssertionError, CellError)):
            return str(excinfo.value)
        report = super().repr_failure(excinfo)
        if hasattr(report, "addsection"):
            report.addsection("nfslab", f"{self.cell.id}: an internal error of the lab (a bug, please report it), "
                                        f"not a kernel result")
        return report

    def reportinfo(self):
        # not the bare id: pytest would show its dots as "::" (debian-6::1)
        return self.config.stash[SESSION_KEY].matrix.path, None, f"cell {self.cell.id}"


def _runner(config):
    if RUNNER_KEY not in config.stash:
        from .runner import Runner
        matrix = config.stash[SESSION_KEY].matrix
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        verbose = config.getoption("verbose") > 0 and not _is_worker(config)

        def progress(msg: str) -> None:
            if verbose and reporter is not None:
                reporter.write_line(f"[nfslab] {msg}")
        session = config.stash[SESSION_KEY]
        config.stash[RUNNER_KEY] = Runner(matrix, session.run_dir, progress=progress, libvirt=session.libvirt)
    return config.stash[RUNNER_KEY]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    if not config.getoption("--matrix"):
        return
    run = config.stash[SESSION_KEY]
    matrix, cells, finished = run.matrix, run.cells, run.finished_cells()
    parent = CellCollector.from_parent(session, name=str(matrix.path.name))
    items[:] = [CellItem.from_parent(parent, name=cell.id, cell=cell, kernel=matrix.kernel(cell.kernel))
                for cell in cells if cell.id not in finished]
    # the cells did not come from a collector pytest walked; report them so "collected N items" is true
    config.hook.pytest_collectreport(report=pytest.CollectReport(parent.nodeid, "passed", None, list(items)))


def pytest_sessionfinish(session):
    config = session.config
    runner = config.stash.get(RUNNER_KEY, None)
    if runner is not None:
        del config.stash[RUNNER_KEY]
        runner.close()


def pytest_terminal_summary(terminalreporter, config):
    # an xdist worker's summary is not shown, and its session did not start the run: the controller finishes it
    if not config.getoption("--matrix") or SESSION_KEY not in config.stash or _is_worker(config):
        return
    from rich.console import Console
    from .render import render_terminal
    from .render.tables import context_for
    session = config.stash[SESSION_KEY]
    if not session.run_dir.runs():
        return
    records = session.finish()
    terminalreporter.section("nfslab compatibility table")
    console = Console(file=terminalreporter._tw._file, force_terminal=terminalreporter.hasmarkup,
                      width=max(terminalreporter._tw.fullwidth, 100))
    console.print(render_terminal(records, meta=session.run_dir.meta(),
                                  context=context_for(session.run_dir, cwd=os.getcwd())))
    terminalreporter.write_line(f"run directory: {session.run_dir.path} (table.md, table.html, junit.xml, logs/)")


def pytest_unconfigure(config):
    """Controller (or a run without xdist): remove this run's topologies, then the host unless asked to keep it."""
    if not config.getoption("--matrix") or _is_worker(config) or SESSION_KEY not in config.stash:
        return
    if os.geteuid() != 0:
        return
    from .host import Host
    session, host = config.stash[SESSION_KEY], Host()
    if not session.booted_anything(host):
        return  # this session booted nothing (e.g. --collect-only): the host is not ours to take down
    session.release(host, keep_host=config.getoption("--lab-keep-host"))
