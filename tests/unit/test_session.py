"""lab/session.py: the run around the runners, as `lab run` and `pytest --matrix` share it (no VMs)."""
from lab.paths import DEFAULT_MATRIX
from lab.results import ResultRecord, RunDir
from lab.session import RunSession, run_directory
from lab.spec import load_matrix

LAB_RUN_KEYS = ["matrix", "kernels", "axes", "server", "command", "run_id", "started", "repeats", "experiment",
                "specs"]
#: what a finished run adds; `pytest --matrix` writes every key `lab run` does (tests/unit/test_plugin.py)
FINISH_KEYS = ["finished", "wall_s"]


def session(tmp_path, **kwargs):
    matrix = load_matrix(DEFAULT_MATRIX)
    cells = matrix.cells(["debian-6.1"])
    return RunSession(matrix, cells, kwargs.pop("run_dir", None) or run_directory(tmp_path), **kwargs)


def record(s, cell, k, status="pass"):
    return ResultRecord(run_id=s.run_dir.run_id, cell_id=cell.id, kernel=cell.kernel, params=dict(cell.params),
                        verdict={"status": status}, expected="pass", started="2026-11-23T10:45:00+00:00",
                        duration_s=1.0, worker="main", observation=None, logs="", repeat=k, repeats=s.repeats)


def test_lab_run_records_its_provenance_at_start_and_finish(tmp_path):
    s = session(tmp_path, repeats=2, command="lab run -k debian-6.1")
    s.start()
    meta = s.run_dir.meta()
    assert list(meta) == LAB_RUN_KEYS and meta["repeats"] == 2 and meta["run_id"] == s.run_dir.run_id
    assert meta["command"] == "lab run -k debian-6.1" and meta["experiment"]["repeats"] == 2
    s.finish()
    assert list(s.run_dir.meta()) == [*LAB_RUN_KEYS, *FINISH_KEYS]
    assert (s.run_dir.path / "table.md").is_file() and (s.run_dir.path / "junit.xml").is_file()


def test_a_resumed_run_keeps_its_repeats_start_and_finished_runs(tmp_path):
    first = session(tmp_path, repeats=3)
    first.start()
    started = first.run_dir.meta()["started"]
    cell = first.cells[0]
    first.run_dir.append(record(first, cell, 1))
    first.run_dir.append(record(first, cell, 2, "error"))   # a lab error is worth another try
    again = session(tmp_path, run_dir=RunDir(first.run_dir.path), resumed=True)
    assert again.repeats == 3
    assert (cell, 1) not in again.todo() and (cell, 2) in again.todo()
    assert again.runs_left(cell) == [2, 3] and again.finished_cells() == set()
    again.start()
    assert again.run_dir.meta()["started"] == started


def test_a_new_run_skips_nothing(tmp_path):
    s = session(tmp_path)
    s.run_dir.append(record(s, s.cells[0], 1))   # written by this very run (an xdist worker, say)
    assert s.finished_cells() == set() and len(s.todo()) == len(s.cells) * s.repeats
