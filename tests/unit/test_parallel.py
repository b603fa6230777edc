"""`lab run --jobs N` without VMs (lab/parallel.py): scripted runners stand for the real ones. Every unit runs once,
each worker writes its own results file, a stop ends every worker and loses no record, a bug stops all and is
raised, `--keep` keeps one topology; and the progress of several running cells (lab/progress.py)."""
from __future__ import annotations

import _thread
import logging
import subprocess
import threading
import time
from types import SimpleNamespace

import pytest

from lab import parallel, progress
from lab.errors import LabError
from lab.outcome import Verdict
from lab.results import ResultRecord, RunDir, now_iso
from lab.runner import Cancelled
from lab.session import runs_to_do
from lab.spec import Cell

CELLS = [Cell(k, {"vers": v}) for k in ("a", "b", "c") for v in ("4.0", "4.1")]
MATRIX = SimpleNamespace(expected=lambda cell: "pass")


class Scripted:
    """A runner whose runs take `seconds` (or block until the run stops, for the cells in `hang`)."""

    made: list = []

    def __init__(self, matrix, run_dir, home=None, progress=None, worker=None, libvirt=None, seconds=0.01, hang=(), bug=()):
        self.matrix, self.run_dir, self.progress, self.worker = matrix, run_dir, progress, worker
        self.seconds, self.hang, self.bug = seconds, hang, bug
        self.stop, self.aborted, self.closed, self.kept = None, threading.Event(), 0, False
        self.ran: list = []
        Scripted.made.append(self)

    def run_cell(self, cell, repeat=1, repeats=1):
        self.progress(f"{cell.id}: reset")
        if cell.id in self.bug:
            raise ZeroDivisionError("a bug in the lab")
        if cell.id in self.hang:
            self.aborted.wait(10)
            if self.stop.is_set():
                raise Cancelled(cell.id)
            raise LabError("ssh", "broken")
        time.sleep(self.seconds)
        self.ran.append((cell.id, repeat))
        record = ResultRecord(run_id=self.run_dir.run_id, cell_id=cell.id, kernel=cell.kernel,
                              params=dict(cell.params), verdict=Verdict("pass", first_new_after=0.5).to_dict(),
                              expected="pass", started=now_iso(), duration_s=self.seconds, worker=self.worker,
                              observation=None, logs="", repeat=repeat, repeats=repeats)
        self.run_dir.append(record, self.worker)
        return record

    def abort(self):
        self.aborted.set()

    def close(self, keep=False):
        self.closed += 1
        self.kept = keep
        return f"topology of {self.worker}" if keep else None


def pool(tmp_path, jobs, keep=False, **script):
    Scripted.made = []
    shown = progress.RunProgress(runs_to_do(CELLS, 2, set()), 2, logging.getLogger("test"), jobs=jobs)
    factory = lambda *a, **kw: Scripted(*a, **kw, **script)   # noqa: E731
    return parallel.Workers(MATRIX, RunDir.create(tmp_path / "runs"), jobs, shown, home=None, keep=keep,
                            runner=factory), shown


def test_every_unit_runs_once_each_worker_with_its_own_results_file(tmp_path, monkeypatch):
    monkeypatch.setattr(parallel, "previous_records", lambda run_dir: [])
    workers, shown = pool(tmp_path, 3)
    todo = runs_to_do(CELLS, 2, set())
    workers.run(todo, 2)
    ran = sorted(u for r in Scripted.made for u in r.ran)
    assert ran == sorted((c.id, k) for c, k in todo)
    assert {r.worker for r in Scripted.made} == {"w1", "w2", "w3"}
    files = sorted(p.name for p in workers.run_dir.path.glob("results-*.jsonl"))
    assert files == ["results-w1.jsonl", "results-w2.jsonl", "results-w3.jsonl"]
    assert len(workers.run_dir.runs()) == len(todo)
    assert all(r.closed for r in Scripted.made)           # a worker with nothing left frees its VMs at once
    assert shown.runs_done == len(todo) and shown.cells_done == len(CELLS) and not shown.running


def test_one_job_runs_in_order_in_this_thread_as_before(tmp_path):
    workers, shown = pool(tmp_path, 1)
    todo = runs_to_do(CELLS, 2, set())
    workers.run(todo, 2)
    (only,) = Scripted.made
    assert only.worker is None and only.ran == [(c.id, k) for c, k in todo]
    assert [p.name for p in workers.run_dir.path.glob("results-*.jsonl")] == ["results-main.jsonl"]
    assert workers.close(keep=True) == "topology of None"


def test_ctrl_c_stops_every_worker_and_keeps_the_records_written(tmp_path, monkeypatch):
    monkeypatch.setattr(parallel, "previous_records", lambda run_dir: [])
    monkeypatch.setattr(parallel, "end_children", lambda: [])
    workers, shown = pool(tmp_path, 3, hang=("c/vers=4.1",), seconds=0.05)
    threading.Timer(0.5, _thread.interrupt_main).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        workers.run(runs_to_do(CELLS, 2, set()), 2)
    assert time.monotonic() - started < 5
    assert workers.stop.is_set() and all(r.aborted.is_set() for r in Scripted.made)
    kept = {(r.cell_id, r.repeat) for r in workers.run_dir.runs()}
    assert ("c/vers=4.1", 1) not in kept                  # the run cut short has no record: --resume runs it
    assert kept == {u for r in Scripted.made for u in r.ran}
    assert workers.close() is None and all(r.closed for r in Scripted.made)
    assert not shown.running


def test_a_bug_in_one_worker_stops_all_and_is_raised(tmp_path, monkeypatch):
    monkeypatch.setattr(parallel, "previous_records", lambda run_dir: [])
    monkeypatch.setattr(parallel, "end_children", lambda: [])
    workers, _ = pool(tmp_path, 2, bug=("a/vers=4.0",), hang=("c/vers=4.1",))
    with pytest.raises(ZeroDivisionError):
        workers.run(runs_to_do(CELLS, 2, set()), 2)
    assert workers.stop.is_set()


def test_keep_leaves_the_topology_of_the_run_that_finished_last(tmp_path, monkeypatch):
    monkeypatch.setattr(parallel, "previous_records", lambda run_dir: [])
    workers, _ = pool(tmp_path, 2, keep=True)
    workers.run(runs_to_do(CELLS, 2, set()), 2)
    assert not any(r.closed for r in Scripted.made)       # nothing destroyed before close() picks one
    kept = workers.close(keep=True)
    assert kept == f"topology of {workers.last.worker}"
    assert [r.kept for r in Scripted.made].count(True) == 1


def test_previous_records_read_this_run_and_the_newest_other(tmp_path):
    runs = tmp_path / "runs"
    old, new, this = (RunDir.create(runs, name) for name in ("20260101-000000-aaaa", "20260102-000000-bbbb", "c"))
    for rd, cell, secs in ((old, "a/x", 10.0), (new, "a/x", 30.0), (this, "b/x", 50.0)):
        rd.append(ResultRecord(run_id=rd.run_id, cell_id=cell, kernel=cell[0], params={},
                               verdict=Verdict("pass").to_dict(), expected="pass", started=now_iso(), duration_s=secs,
                               worker="main", observation=None, logs=""))
    time.sleep(0.01)
    (new.path / "results-main.jsonl").touch()
    found = {(r.cell_id, r.duration_s) for r in parallel.previous_records(this)}
    assert found == {("b/x", 50.0), ("a/x", 30.0)}


def test_resolve_jobs():
    assert parallel.resolve_jobs(4, 10) == 4
    assert parallel.resolve_jobs(8, 3) == 3                # never more workers than runs
    assert 1 <= parallel.resolve_jobs("auto", 84) <= 84


def test_children_are_found_and_ended_by_pid():
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert child.pid in parallel.children()
        assert child.pid in parallel.end_children()
        assert child.wait(timeout=10) != 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


# ---- progress of several running cells ----------------------------------------------------------------------------

def test_eta_divides_the_work_left_among_the_workers():
    assert progress.eta_seconds([60], 10, jobs=5) == 120
    assert progress.eta_seconds([60], 2, jobs=5) == 60        # two runs left: two workers at most
    assert progress.eta_seconds([60], 10, current=100, jobs=5) == 100
    assert progress.eta_text([60], 10, jobs=1) == progress.eta_text([60], 10)


def test_several_running_cells_each_with_its_worker(caplog):
    a, b = Cell("k", {"vers": "4.0"}), Cell("k", {"vers": "4.1"})
    shown = progress.RunProgress([(a, 1), (a, 2), (b, 1)], 2, logging.getLogger("lab-test"), jobs=2)
    shown.start(a, 2, "w1")
    shown.start(b, 1, "w2")
    with caplog.at_level(logging.INFO, logger="lab-test"):
        shown.phase_for("w2")(f"{b.id}: nfs server + mounts")
    assert "[w2] k/vers=4.1: nfs server + mounts" in caplog.text
    status = shown.status_text()
    assert "w1 k/vers=4.0 run 2/2: starting" in status and "w2 k/vers=4.1 run 1/2: nfs server + mounts" in status
    done = SimpleNamespace(status="pass", duration_s=20.0, verdict_obj=SimpleNamespace(summary=lambda: "✓"))
    shown.done(a, 2, done, "w1")          # a's runs finish out of order: a is done only with its other run
    assert shown.cells_done == 0 and list(shown.running) == ["w2"]
    shown.start(a, 1, "w1")
    shown.done(a, 1, done, "w1")
    assert shown.cells_done == 1 and shown.runs_done == 2
    shown.stopped("w2")
    assert not shown.running


def test_one_boot_at_a_time_and_a_waiting_boot_ends_when_the_run_stops():
    import threading as th

    from lab import runner as R
    from lab.quiet import Quiet
    waiting = R.Runner.__new__(R.Runner)
    waiting.stop, waiting.progress, waiting.quiet = th.Event(), lambda msg: None, Quiet()
    assert R.BOOTS.acquire(blocking=False)          # another worker is booting
    try:
        waiting.stop.set()
        with pytest.raises(R.Cancelled):
            with waiting._boot_turn("k"):
                pass
    finally:
        R.BOOTS.release()
    waiting.stop.clear()
    with waiting._boot_turn("k"):                   # free: taken at once, and given back after
        assert not R.BOOTS.acquire(blocking=False)
    assert R.BOOTS.acquire(blocking=False)
    R.BOOTS.release()
