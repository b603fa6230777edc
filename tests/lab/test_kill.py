"""SIGKILL of the runner — nothing of its own can run after it — at two points: during `vagrant up` and mid-cell.
What it leaves must be found and removed from the state files alone: by `lab clean`, and by the next `lab run`
before it starts. Also: two runs at once get separate topologies (slots, networks) and both finish."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from lab.paths import LabHome
from lab.results import RunDir

from .conftest import leftovers
from .test_interrupt import wait_for

LAB = [sys.executable, "-c", "from lab.cli import main; main()"]
ONE_CELL = """kernels: [debian-6.1]
server: debian-6.1
axes:
  vers: ["{vers}"]
experiment: {{name: rename, duration: 30s, interval: 0.5s, pass_within: 2s, settle: 5s}}
"""


def one_cell_matrix(tmp_path: Path, vers: str = "4.0") -> Path:
    """A one-cell matrix next to a symlink of the project's kernels/ (matrices find kernels/ above them)."""
    from lab.paths import KERNELS
    folder = tmp_path / f"m{vers}"
    folder.mkdir()
    (folder / "kernels").symlink_to(KERNELS)
    (folder / "matrix.yaml").write_text(ONE_CELL.format(vers=vers))
    return folder / "matrix.yaml"


def topologies() -> list[Path]:
    return sorted(LabHome.default().topologies.glob("*/state.json"))


def vagrant_up_running() -> bool:
    return any("vagrant up" in Path(s).parent.joinpath("vagrant.log").read_text(errors="replace")
               for s in map(str, topologies()) if Path(s).parent.joinpath("vagrant.log").exists())


def alice_loop_running(runs: Path) -> bool:
    return any("nfslab-alice.sh" in log.read_text() for log in runs.glob("*/logs/*/alice.log"))


def start_run(matrix: Path, runs: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([*LAB, "run", "--matrix", str(matrix), "--runs", str(runs)], stdout=log.open("w"),
                            stderr=subprocess.STDOUT)


def kill_hard(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def test_sigkill_during_up_and_mid_cell_leaves_nothing_after_lab_clean_or_the_next_run(tmp_path):
    matrix = one_cell_matrix(tmp_path)
    runs = tmp_path / "runs"

    # 1. SIGKILL while vagrant is creating the VMs; `lab clean` removes what it created
    proc = start_run(matrix, runs, tmp_path / "kill-up.log")
    wait_for(vagrant_up_running, 300, "vagrant up to start")
    time.sleep(8)                                       # domains are being defined and started
    kill_hard(proc)
    time.sleep(3)                                       # vagrant got SIGTERM from its dying parent (PDEATHSIG)
    assert topologies(), "the killed run recorded its topology before creating it"
    clean = subprocess.run([*LAB, "clean"], capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr
    assert leftovers() == [] and topologies() == []

    # 2. SIGKILL mid-cell; the next `lab run` removes the orphaned topology before it starts, then runs
    proc = start_run(matrix, runs, tmp_path / "kill-cell.log")
    wait_for(lambda: alice_loop_running(runs), 600, "alice's reader to run")
    kill_hard(proc)
    orphan = [json.loads(s.read_text())["topology"]["lab_id"] for s in topologies()]
    assert orphan and any(f"nfslab-{orphan[0]}-" in line for line in leftovers() + _domains())
    rerun = subprocess.run([*LAB, "run", "--matrix", str(matrix), "--runs", str(runs)], capture_output=True,
                           text=True, timeout=900)
    print(rerun.stderr[-3000:])
    assert rerun.returncode in (0, 1), rerun.stderr
    assert f"removed domain nfslab-{orphan[0]}-alice (left by a run that was killed)" in rerun.stderr
    assert leftovers() == [] and topologies() == []


def _domains() -> list[str]:
    from lab.host import Host
    host = Host(LabHome.default())
    return host.virsh("list", "--all", "--name", check=False).split() if host.libvirtd_running() else []


def test_two_runs_at_once_use_separate_topologies_and_both_finish(tmp_path):
    runs = tmp_path / "runs"
    procs = [start_run(one_cell_matrix(tmp_path, vers), runs / vers, tmp_path / f"run-{vers}.log")
             for vers in ("4.0", "4.1")]
    try:
        wait_for(lambda: len(topologies()) == 2, 300, "both runs to have a topology")
        slots = sorted(json.loads(s.read_text())["slot"] for s in topologies())
        assert len(set(slots)) == 2, slots                  # separate networks and bridges
        codes = [p.wait(timeout=1200) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for vers, code in zip(("4.0", "4.1"), codes):
        print((tmp_path / f"run-{vers}.log").read_text()[-2000:])
        assert code in (0, 1), f"run {vers} exited {code}"
        records = RunDir(next((runs / vers).iterdir())).records()
        assert [r.status in ("pass", "fail") for r in records] == [True], [r.verdict for r in records]
    assert leftovers() == [] and topologies() == []
