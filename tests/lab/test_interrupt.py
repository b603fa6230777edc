"""Ctrl-C in the middle of a cell: `lab run` stops within seconds, leaves no VM, network, namespace or daemon, and
keeps the cells it finished; `lab run --resume` then runs only the rest."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from lab.results import RunDir

from .conftest import leftovers

LAB = [sys.executable, "-c", "from lab.cli import main; main()"]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def second_cell_running(runs: Path):
    for alice_log in runs.glob("*/logs/debian-6.1__vers=4.0__leases=off/alice.log"):
        if "nfslab-alice.sh" in alice_log.read_text():
            return alice_log
    return None


def test_ctrl_c_mid_cell_keeps_finished_cells_and_resume_runs_the_rest(tmp_path):
    runs = tmp_path / "runs"
    with (tmp_path / "run1.log").open("w") as log:
        proc = subprocess.Popen([*LAB, "run", "--kernels", "debian-6.1", "--runs", str(runs)], stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: second_cell_running(runs), 600, "the second cell's experiment")
            interrupted = time.monotonic()
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(timeout=180)
            stopped_in = time.monotonic() - interrupted
        finally:
            if proc.poll() is None:
                proc.kill()
    print((tmp_path / "run1.log").read_text()[-3000:])
    assert rc == 130
    assert stopped_in < 60, f"teardown took {stopped_in:.0f}s"
    assert leftovers() == []
    run_dir = next(runs.iterdir())
    first = {r.cell_id: r for r in RunDir(run_dir).records()}
    assert list(first) == ["debian-6.1/vers=4.0/leases=on"]          # finished before Ctrl-C, kept
    assert first["debian-6.1/vers=4.0/leases=on"].status in ("pass", "fail")

    resumed = subprocess.run([*LAB, "run", "--kernels", "debian-6.1", "--resume", str(run_dir)],
                             capture_output=True, text=True, timeout=1200)
    print(resumed.stdout[-3000:], resumed.stderr[-3000:])
    assert resumed.returncode in (0, 1), resumed.stderr               # 1: a kernel result contradicts history
    assert "3 cells to run, 1 already done" in resumed.stderr
    after = {r.cell_id: r for r in RunDir(run_dir).records()}
    assert len(after) == 4 and all(r.status in ("pass", "fail") for r in after.values())
    assert after["debian-6.1/vers=4.0/leases=on"].started == first["debian-6.1/vers=4.0/leases=on"].started
    assert leftovers() == []
