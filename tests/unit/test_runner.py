"""The runner's bookkeeping without VMs: skips and build errors are asked for once per kernel and become
SKIP / ERROR records, never pass or fail."""
from pathlib import Path

import pytest

from lab import kernels
from lab.boxes import Box
from lab.errors import KernelUnavailable, LabError
from lab.paths import DEFAULT_MATRIX, LabHome
from lab.results import RunDir
from lab.runner import Runner
from lab.spec import load_matrix


@pytest.fixture
def runner(tmp_path):
    r = Runner(load_matrix(DEFAULT_MATRIX), RunDir.create(tmp_path / "runs"), home=LabHome(tmp_path / "home"))
    r.box = Box("nfslab-test", tmp_path)   # prepared: no host, no box build
    return r


def test_unavailable_kernel_is_skipped_and_asked_once(runner, monkeypatch):
    calls = []

    def unavailable(kernel, *args, **kw):
        calls.append(kernel.name)
        raise KernelUnavailable("box centos/7 not found locally")

    monkeypatch.setattr(kernels, "resolve", unavailable)
    records = [runner.run_cell(c) for c in runner.matrix.cells(["centos7-3.10"])]
    assert [r.status for r in records] == ["skip"] * 4
    assert records[0].verdict["reason"] == "box centos/7 not found locally"
    assert calls == ["centos7-3.10"]
    assert len(RunDir(runner.run_dir.path).records()) == 4


def test_failed_build_is_an_error_for_every_cell_of_the_kernel(runner, monkeypatch):
    calls = []

    def broken_build(kernel, *args, **kw):
        calls.append(kernel.name)
        raise LabError("build: mainline-4.19", "make exited 2", "/var/lib/nfslab/kernels/x/build.log")

    monkeypatch.setattr(kernels, "resolve", broken_build)
    records = [runner.run_cell(c) for c in runner.matrix.cells(["mainline-4.19"])]
    assert [r.status for r in records] == ["error"] * 4
    assert all("build.log" in r.verdict["detail"] for r in records)
    assert calls == ["mainline-4.19"]
    assert all(r.expected in ("pass", "fail") for r in records)   # the expectation is kept; the result is ERROR


def test_host_users_are_tracked_by_live_pid(tmp_path):
    import os
    import subprocess
    from lab.host import Host
    host = Host(LabHome(tmp_path))
    host.register_user()
    assert host.other_users() == []                       # this process is not "another" user
    other = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / "state" / "users" / str(other.pid)).write_text("")
        (tmp_path / "state" / "users" / "999999999").write_text("")   # a dead user is forgotten
        assert host.other_users() == [other.pid]
        assert not (tmp_path / "state" / "users" / "999999999").exists()
    finally:
        other.kill()
        other.wait()
    host.unregister_user()
    assert not (tmp_path / "state" / "users" / str(os.getpid())).exists()


def test_a_session_that_booted_nothing_leaves_the_host_alone(tmp_path):
    """`pytest --matrix --collect-only` must not take down a host another run is using: found when a unit-test
    run pulled the lab namespace from under a real run. (Home and namespace name point elsewhere, so even the
    old behaviour could not touch the real lab.)"""
    import os
    import subprocess
    import sys
    env = {**os.environ, "NFSLAB_HOME": str(tmp_path / "home"), "NFSLAB_NETNS": "nfslab-unit-test"}
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                        f"--matrix={DEFAULT_MATRIX}", "--kernels", "debian-6.1"],
                       capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (tmp_path / "home" / "state").exists()      # nothing was registered, created or cleaned


def test_a_cell_runs_repeats_times_each_with_its_record_and_log_directory(runner, monkeypatch):
    def unavailable(kernel, *args, **kw):
        raise KernelUnavailable("box centos/7 not found locally")
    monkeypatch.setattr(kernels, "resolve", unavailable)
    cell = runner.matrix.cells(["centos7-3.10"])[0]
    records = [runner.run_cell(cell, k, 3) for k in (1, 2, 3)]
    assert [(r.repeat, r.repeats) for r in records] == [(1, 3), (2, 3), (3, 3)]
    assert records[1].logs.endswith("centos7-3.10__vers=4.0__leases=on/run-2")
    assert len(runner.run_dir.runs()) == 3 and len(runner.run_dir.records()) == 1


def test_resume_runs_only_missing_repeats_cell_by_cell():
    from lab.session import runs_to_do
    from lab.spec import Cell
    a, b = Cell("k", {"vers": "4.0"}), Cell("k", {"vers": "4.1"})
    done = {("k/vers=4.0", 1), ("k/vers=4.0", 3), ("k/vers=4.1", 1)}
    assert [(c.id, k) for c, k in runs_to_do([a, b], 3, done)] == [("k/vers=4.0", 2), ("k/vers=4.1", 2),
                                                                   ("k/vers=4.1", 3)]
    assert runs_to_do([a, b], 1, done) == []


def test_lab_run_exit_code_follows_the_cells():
    from lab.aggregate import cells_of
    from lab.aggregate import run_exit_code
    from lab.outcome import Verdict
    from lab.results import ResultRecord

    def rec(cell, status, expected, k=1, n=1):
        v = {"pass": Verdict("pass", first_new_after=0.5), "fail": Verdict("fail", reason="estale"),
             "error": Verdict.error("boot", "x")}[status]
        return ResultRecord(run_id="r", cell_id=cell, kernel=cell.split("/")[0], params={}, verdict=v.to_dict(),
                            expected=expected, started=f"2026-11-23T10:00:0{k}+00:00", duration_s=1.0,
                            worker="main", observation=None, logs="", repeat=k, repeats=n)
    assert run_exit_code(cells_of([rec("a/x", "pass", "pass"), rec("b/x", "fail", "fail")])) == 0
    assert run_exit_code(cells_of([rec("a/x", "pass", "pass", 1, 2), rec("a/x", "fail", "pass", 2, 2)])) == 1
    assert run_exit_code(cells_of([rec("a/x", "pass", "fail", 1, 2), rec("a/x", "fail", "fail", 2, 2)])) == 0
    assert run_exit_code(cells_of([rec("a/x", "error", "pass")])) == 3
    assert run_exit_code(cells_of([rec("a/x", "error", "pass", 1, 2), rec("a/x", "pass", "pass", 2, 2)])) == 0
