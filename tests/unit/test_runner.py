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
