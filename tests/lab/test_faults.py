"""Lab failures provoked for real must be ERROR with the failing step and a log path, never a kernel verdict,
and the cells after them must still run. Also: no lab network may appear in the host namespace."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from lab import kernels, nfs
from lab.cleanup import clean_everything
from lab.paths import DEFAULT_MATRIX, LabHome
from lab.results import RunDir
from lab.runner import Runner
from lab.spec import load_matrix
from lab.topology import KernelFiles

from .conftest import leftovers


@pytest.fixture
def runner(tmp_path):
    matrix = load_matrix(DEFAULT_MATRIX)
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


def qemu_pid(domain: str) -> int:
    """The qemu process of one lab domain (started by the lab's own libvirtd)."""
    ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return next(int(line.split()[0]) for line in ps.splitlines()
                if "qemu-system" in line and f"guest={domain}," in line)


def test_vm_dying_mid_cell_is_an_error_and_the_next_cell_gets_a_new_topology(runner, monkeypatch):
    import os
    import signal
    import threading

    from lab.experiments import race
    real_run = race.run

    def run_and_kill_alice(alice, bob, scenario, settings, setup, on_change=lambda t0: None, **hooks):
        domain = runner.lab.live.topology.domain("alice")
        # the fault: alice's qemu dies 1 s after bob's change, while her reader loop is running; race.run's
        # other hooks (on_planned: lab/quiet.py) are passed on as they came
        return real_run(alice, bob, scenario, settings, setup,
                        on_change=lambda t0: (on_change(t0), threading.Timer(
                            1.0, os.kill, (qemu_pid(domain), signal.SIGKILL)).start()), **hooks)

    monkeypatch.setattr(race, "run", run_and_kill_alice)
    broken = runner.run_cell(cell(runner.matrix, "4.0"))
    assert broken.status == "error", broken.verdict
    assert broken.verdict["reason"].startswith("rename"), broken.verdict   # the step that was running
    assert "log:" in broken.verdict["detail"]
    assert runner.lab is None                                              # the broken topology was dropped

    monkeypatch.setattr(race, "run", real_run)
    healthy = runner.run_cell(cell(runner.matrix, "4.1"))
    assert healthy.status in ("pass", "fail"), healthy.verdict
    assert runner.lab is not None


def test_ssh_refused_and_a_missing_export_are_errors_on_one_topology(runner, monkeypatch):
    from lab.runner import KernelLab
    real_reset = KernelLab.reset

    def reset_then_stop_sshd(self):
        real_reset(self)
        # the fault: bob's sshd goes away (listener and sessions), so the lab's next command on bob is refused
        self.remotes["bob"].run("setsid sh -c 'sleep 0.5; kill $(pidof sshd)' >/dev/null 2>&1 </dev/null &")
        time.sleep(2)

    monkeypatch.setattr(KernelLab, "reset", reset_then_stop_sshd)
    refused = runner.run_cell(cell(runner.matrix, "4.0"))
    assert refused.status == "error", refused.verdict
    assert "ssh to bob" in refused.verdict["detail"], refused.verdict      # named: which VM, and that ssh broke
    monkeypatch.setattr(KernelLab, "reset", real_reset)

    start = nfs.start_server

    def start_then_unexport(server, setup, subnet, **kw):
        info = start(server, setup, subnet, **kw)
        server.run("exportfs -ua")                    # the fault: nfsd runs, the export is gone
        return info

    monkeypatch.setattr(nfs, "start_server", start_then_unexport)
    unexported = runner.run_cell(cell(runner.matrix, "4.1"))
    assert unexported.status == "error", unexported.verdict
    assert unexported.verdict["reason"].startswith("nfs: mount"), unexported.verdict
