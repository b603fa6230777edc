"""`lab run --keep-failing` without VMs: the first failing (or ERROR) run's topology is set aside as the cell left it
(marked kept in its state file, not destroyed, no later cell on it), the runner boots a fresh one for the next
cell, only one topology is kept across workers, and the command line reports it."""
from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab import parallel, progress, runner as runners
from lab.errors import LabError
from lab.outcome import Verdict
from lab.paths import LabHome
from lab.results import RunDir
from lab.session import runs_to_do
from lab.spec import Cell, load_matrix
from lab.paths import DEFAULT_MATRIX


class FakeLab:
    """A topology as the runner sees it: its state file, its connections, its VMs' health."""

    made: list = []

    def __init__(self):
        self.state: dict = {}
        self.disconnected = self.closed = False
        self.live = SimpleNamespace(state=SimpleNamespace(set=self.state.__setitem__), topology=self,
                                    console_log=lambda machine: Path("/nonexistent"))
        self.remotes: dict = {}
        self.cells: list[str] = []
        FakeLab.made.append(self)

    def log_to(self, log_dir):
        pass

    def disconnect(self):
        self.disconnected = True

    def close(self):
        self.closed = True

    def healthy(self):
        return True


@pytest.fixture
def scripted_runner(tmp_path, monkeypatch):
    """A real Runner whose topology and experiment are stand-ins: `outcomes[cell id]` is pass, fail or error."""
    FakeLab.made = []
    outcomes: dict[str, str] = {}

    def lab_for(self, kernel_name):
        if self.lab is None or self.lab_kernel != kernel_name:
            self.lab, self.lab_kernel = FakeLab(), kernel_name
        return self.lab

    def run_on(self, lab, cell, log_dir):
        lab.cells.append(cell.id)
        if outcomes.get(cell.id) == "error":
            raise LabError("nfs: mount", "mount timed out")
        return SimpleNamespace(to_dict=lambda: None, status=outcomes.get(cell.id, "pass")), "6.1.0"

    monkeypatch.setattr(runners.Runner, "_lab_for", lab_for)
    monkeypatch.setattr(runners.Runner, "_run_on", run_on)
    monkeypatch.setattr(runners, "classify", lambda obs, criteria: Verdict(obs.status, first_new_after=0.5))
    matrix = load_matrix(DEFAULT_MATRIX)
    r = runners.Runner(matrix, RunDir.create(tmp_path / "runs"), home=LabHome(tmp_path / "home"))
    return r, outcomes


def cells(*params):
    return [Cell("debian-6.1", {"vers": v, "leases": l}) for v, l in params]


@pytest.mark.parametrize("how", ["fail", "error"])
def test_first_failing_run_keeps_its_topology_and_the_next_cell_gets_a_fresh_one(scripted_runner, how):
    r, outcomes = scripted_runner
    first, failing, later, also_failing = cells(("4.0", "on"), ("4.0", "off"), ("4.1", "on"), ("4.1", "off"))
    outcomes.update({failing.id: how, also_failing.id: "fail"})
    claims = iter([True, False])
    r.keep_failing = lambda: next(claims)
    for cell in (first, failing, later, also_failing):
        r.run_cell(cell)
    kept, fresh = FakeLab.made
    assert kept.cells == [first.id, failing.id] and kept.state == {"kept": True} and kept.disconnected
    assert not kept.closed and fresh.cells == [later.id, also_failing.id]
    assert r.kept_topology is kept and r.kept_cell == failing.id
    r.lease.release = lambda: None
    r.close()
    assert fresh.closed and not kept.closed


def test_without_keep_failing_a_failing_cell_keeps_using_the_topology(scripted_runner):
    r, outcomes = scripted_runner
    a, b = cells(("4.0", "on"), ("4.1", "on"))
    outcomes[a.id] = "fail"
    r.run_cell(a)
    r.run_cell(b)
    assert len(FakeLab.made) == 1 and r.kept_topology is None


class Claiming:
    """A scripted runner that fails the cells in `failing` and asks to keep, like Runner does."""

    made: list = []

    def __init__(self, matrix, run_dir, home=None, progress=None, worker=None, libvirt=None):
        self.worker, self.stop, self.keep_failing = worker, None, None
        self.kept_topology = self.kept_cell = None
        Claiming.made.append(self)

    def run_cell(self, cell, repeat=1, repeats=1):
        if cell.kernel in ("b", "c") and self.keep_failing and self.keep_failing():
            self.kept_topology, self.kept_cell = f"topology of {cell.id}", cell.id
        return SimpleNamespace(status="fail")

    def abort(self):
        pass

    def close(self, keep=False):
        return None


@pytest.mark.parametrize("jobs", [1, 3])
def test_only_one_topology_is_kept_across_workers(tmp_path, monkeypatch, jobs):
    monkeypatch.setattr(parallel, "previous_records", lambda run_dir: [])
    monkeypatch.setattr(progress.RunProgress, "done", lambda *a, **kw: None)
    Claiming.made = []
    todo = runs_to_do([Cell(k, {"vers": v}) for k in ("a", "b", "c") for v in ("4.0", "4.1")], 1, set())
    shown = progress.RunProgress(todo, 1, __import__("logging").getLogger("test"), jobs=jobs)
    workers = parallel.Workers(SimpleNamespace(expected=lambda cell: "pass"), RunDir.create(tmp_path / "r"), jobs,
                               shown, runner=Claiming, keep_failing=True)
    workers.run(todo, 1)
    kept, cell = workers.kept_failing()
    assert [r.kept_topology for r in Claiming.made].count(None) == len(Claiming.made) - 1
    assert workers.close() == kept == f"topology of {cell}"
    if jobs == 1:
        assert cell == "b/vers=4.0"


def test_lab_run_keep_failing_reports_the_kept_topology(tmp_path, lab_cli, scripted_run):
    from lab.results import ResultRecord, now_iso

    class Scripted(Claiming):
        def __init__(self, matrix, run_dir, **kw):
            super().__init__(matrix, run_dir, **kw)
            self.matrix, self.run_dir = matrix, run_dir

        def run_cell(self, cell, repeat=1, repeats=1):
            status = "fail" if cell.params["leases"] == "off" else "pass"
            if status == "fail" and self.keep_failing():
                self.kept_topology = SimpleNamespace(kernel_name=cell.kernel, lab_id="ab12")
                self.kept_cell = cell.id
            record = ResultRecord(run_id=self.run_dir.run_id, cell_id=cell.id, kernel=cell.kernel,
                                  params=dict(cell.params), verdict=Verdict(status, first_new_after=0.5).to_dict(),
                                  expected=self.matrix.expected(cell), started=now_iso(), duration_s=1.0,
                                  worker="main", observation=None, logs="")
            self.run_dir.append(record)
            return record

    scripted_run(Scripted)
    r = lab_cli("run", "-k", "debian-6.1", "--keep-failing", "--runs", tmp_path / "runs", cwd=tmp_path)
    assert "kept: debian-6.1 (topology ab12, as debian-6.1/vers=4.0/leases=off left it): lab ssh debian-6.1@ab12 " \
           "alice | lab down debian-6.1@ab12" in r.stdout, r.stdout + r.stderr
    r = lab_cli("run", "--keep", "--keep-failing", cwd=tmp_path)
    assert r.returncode == 2 and "--keep and --keep-failing: give one" in r.stderr


def test_claim_is_true_once(tmp_path):
    w = parallel.Workers(SimpleNamespace(), RunDir.create(tmp_path / "r"), 1, None, keep_failing=True)
    results = []
    threads = [threading.Thread(target=lambda: results.append(w._first_failing())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
