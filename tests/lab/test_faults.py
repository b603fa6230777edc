"""Lab failures provoked for real must be ERROR with the failing step and a log path, never a kernel verdict,
and the cells after them must still run. Also: no lab network may appear in the host namespace."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab import kernels, nfs
from lab.cleanup import clean_everything
from lab.paths import PROJECT, LabHome
from lab.results import RunDir
from lab.runner import Runner
from lab.spec import load_matrix
from lab.topology import KernelFiles

from .conftest import leftovers


@pytest.fixture
def runner(tmp_path):
    matrix = load_matrix(PROJECT / "matrix.yaml")
    r = Runner(matrix, RunDir.create(tmp_path / "runs"))
    r.prepare()
    yield r
    r.close()
    clean_everything()
    assert leftovers() == []


def cell(matrix, vers="4.1", leases="on"):
    return next(c for c in matrix.cells(["debian-6.1"]) if c.params == {"vers": vers, "leases": leases})


def test_unbootable_kernel_is_an_error_with_its_log(runner, monkeypatch):
    garbage = LabHome.default().kernels / "garbage" / "vmlinuz"
    garbage.parent.mkdir(parents=True, exist_ok=True)
    garbage.write_bytes(b"this is not a kernel\n" * 100)
    garbage.parent.chmod(0o755)
    # every VM of the topology gets it: qemu refuses it ("invalid kernel header") and vagrant up fails
    monkeypatch.setattr(kernels, "resolve", lambda *args, **kw: KernelFiles(garbage, None, "garbage"))
    record = runner.run_cell(cell(runner.matrix))
    assert record.status == "error", record.verdict
    assert record.verdict["reason"].startswith("topology"), record.verdict
    log = record.verdict["detail"].rsplit("log: ", 1)[-1].rstrip(")")
    assert Path(log).exists(), record.verdict["detail"]


def test_nfsd_stopped_is_an_error_and_the_next_cell_still_runs(runner, monkeypatch):
    start = nfs.start_server

    def start_then_stop_nfsd(server, setup, subnet, **kw):
        info = start(server, setup, subnet, **kw)
        server.run("rpc.nfsd 0; exportfs -ua")     # the fault: nfsd really stops on the server VM
        return info

    monkeypatch.setattr(nfs, "start_server", start_then_stop_nfsd)
    broken = runner.run_cell(cell(runner.matrix, "4.0"))
    assert broken.status == "error", broken.verdict
    assert broken.verdict["reason"].startswith("nfs: mount"), broken.verdict
    assert "log:" in broken.verdict["detail"]

    # lab networks exist only inside the lab namespace while the topology is up
    host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "nfl" not in host_links and "virbr" not in host_links
    host_addrs = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    assert "192.168.1" not in host_addrs and "192.168.2" not in host_addrs

    monkeypatch.setattr(nfs, "start_server", start)
    healthy = runner.run_cell(cell(runner.matrix, "4.1"))
    assert healthy.status in ("pass", "fail"), healthy.verdict
    assert RunDir(runner.run_dir.path).records()[0].run_id == runner.run_dir.run_id
