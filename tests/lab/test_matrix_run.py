"""The vertical slice, for real: `pytest --matrix --kernels debian-6.1` boots server + alice + bob and gives four
verdicts, each with its timeline on disk, and leaves nothing behind."""
from __future__ import annotations

import subprocess
import sys

from lab.paths import DEFAULT_MATRIX
from lab.results import RunDir

from .conftest import leftovers


def test_debian_61_row_gives_four_real_verdicts(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-rA",
                           f"--matrix={DEFAULT_MATRIX}", "--kernels", "debian-6.1", f"--run-dir={run_dir}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    print(proc.stdout[-8000:], proc.stderr[-3000:])
    records = {r.cell_id: r for r in RunDir(run_dir).records()}
    assert sorted(records) == ["debian-6.1/vers=4.0/leases=off", "debian-6.1/vers=4.0/leases=on",
                               "debian-6.1/vers=4.1/leases=off", "debian-6.1/vers=4.1/leases=on"]
    for cell_id, record in records.items():
        # a kernel result (pass or fail), never a lab error: the lab itself must work here
        assert record.status in ("pass", "fail"), f"{cell_id}: {record.verdict}"
        reads = record.observation["reads"]
        after = [r for r in reads if r["t"] > 0]
        # at least `settle` (5 s) of reading after the rename: the early stop needs that much unbroken new data
        assert len(after) >= 5 and after[-1]["t"] >= 5.0, f"{cell_id}: timeline too short: {after}"
        assert any(r["t"] < 0 and r["kind"] == "old" for r in reads), f"{cell_id}: no read before the rename"
        assert record.observation["meta"]["mounts"]["alice"]["vers"] == record.params["vers"]
        assert record.kernel_release.startswith("6.1.")
        assert (run_dir / record.logs / "timeline.txt").stat().st_size > 0
        assert "mount -t nfs" in (run_dir / record.logs / "alice.log").read_text()
    table = (run_dir / "table.md").read_text()
    assert "debian-6.1" in table and "vers=4.0" in table
    assert "nfslab compatibility table" in proc.stdout
    assert leftovers() == []
