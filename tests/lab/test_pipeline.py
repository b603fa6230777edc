"""The nightly pipeline for real: ci/gitlab-ci.yml executed by gitlab-ci-local (npm; .ci/run installs it into
.ci/node) with its shell executor, jobs isolated in copies of the checkout and artifacts handed from job to job as
GitLab would: shard → table (merge) → compare with a baseline → bisect of the changed cell → gate.

The baseline is made here: a `merged/` run in which debian-6.1's one cell failed, zipped as GitLab serves the
`table` job's artifacts, and named by file:// URL (NFSLAB_BASELINE_URL). The new run passes that cell, so `lab
compare` reports a change and the bisect job takes it: with one kernel there is no range and it says so; with two
(debian-6.1-nofix, which fails the cell, then debian-6.1; with NFSLAB_PIPELINE_BISECT=1, as it takes twice as long)
it searches the range for the fix.

Each job runs `./quickstart.sh` in its own copy. The VM jobs' after_script (`lab clean`) is left out locally
(NFSLAB_AFTER_CLEAN=no: gitlab-ci-local would wipe the job's directory before it, see ci/gitlab-ci.yml); the test
runs `lab clean` itself at the end, which removes every lab resource on this host: run it when no other lab run is
going. About 10 min (one kernel) and 20 min (two) on 2 cores
with TCG, most of it the jobs' venvs, the boots (~40 s each) and the bisect's repeats.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lab.outcome import Verdict
from lab.results import ResultRecord, RunDir, now_iso
from tests import CHECKOUT

from .conftest import leftovers

GITLAB_CI_LOCAL = CHECKOUT / ".ci/node/node_modules/.bin/gitlab-ci-local"
CELL = "debian-6.1/vers=4.0/leases=on"


def checkout_copy(dest: Path) -> Path:
    """The checkout as it is now (uncommitted work too) as a git repository: gitlab-ci-local reads git."""
    listed = subprocess.run(["git", "-C", str(CHECKOUT), "ls-files", "-z", "-co", "--exclude-standard"],
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        source = CHECKOUT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    git = ["git", "-C", str(dest), "-c", "user.name=nfslab", "-c", "user.email=nfslab@localhost"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(dest)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "the checkout under test"], check=True)
    return dest


def baseline_zip(tmp_path: Path) -> Path:
    """A `table` job's artifacts from an earlier night: merged/ in which the cell failed."""
    run = RunDir.create(tmp_path / "earlier", "merged")
    run.write_meta({"run_id": "merged", "kernels": ["debian-6.1"], "axes": {"vers": ["4.0"], "leases": ["on"]}})
    verdict = Verdict("fail", reason="stale-data", first_new_after=9.0, stale_for=8.5, pass_within=2.0)
    run.append(ResultRecord(run_id="earlier", cell_id=CELL, kernel="debian-6.1", params={"vers": "4.0", "leases": "on"},
                            verdict=verdict.to_dict(), expected="pass", started=now_iso(), duration_s=70.0,
                            worker="main", observation=None, logs="", kernel_release="6.1.0-18-cloud-amd64"))
    archive = tmp_path / "baseline.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(run.path.rglob("*")):
            z.write(f, f.relative_to(tmp_path / "earlier"))
    return archive


@pytest.mark.parametrize("matrix, shards, bisects", [
    ("matrices/ci-one-kernel.yaml", ["debian-6.1"], False),
    pytest.param("matrices/ci-two-kernels.yaml", ["debian-6.1-nofix", "debian-6.1"], True, marks=pytest.mark.skipif(
        os.environ.get("NFSLAB_PIPELINE_BISECT") != "1", reason="~20 min: NFSLAB_PIPELINE_BISECT=1 runs it")),
], ids=["one-kernel", "two-kernels"])
def test_nightly_pipeline_runs_locally(tmp_path, matrix, shards, bisects):
    if not GITLAB_CI_LOCAL.exists():
        pytest.fail(f"{GITLAB_CI_LOCAL} missing (npm install --prefix .ci/node gitlab-ci-local@4.60.1, as .ci/run "
                    f"does)")
    repo = checkout_copy(tmp_path / "repo")
    jobs = [f"shard: [{k}]" for k in shards] + ["table", "compare", "bisect", "gate"]
    argv = [str(GITLAB_CI_LOCAL), "--file", "ci/gitlab-ci.yml", "--shell-isolation", "--no-color",
            "--variable", "CI_PIPELINE_SOURCE=schedule", "--variable", f"NFSLAB_MATRIX={matrix}",
            "--variable", "NFSLAB_AFTER_CLEAN=no",
            "--variable", f"NFSLAB_BASELINE_URL=file://{baseline_zip(tmp_path)}", *jobs]
    try:
        proc = subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=3 * 3600,
                              env=dict(os.environ, CI="true"))
    finally:   # the jobs' after_script `lab clean` is left out locally (NFSLAB_AFTER_CLEAN=no, ci/gitlab-ci.yml)
        subprocess.run([sys.executable, "-m", "lab", "clean"], cwd=CHECKOUT, capture_output=True, timeout=600)
    print(proc.stdout[-12000:], proc.stderr[-3000:])
    assert proc.returncode == 0, "a job failed (see its log above)"
    for job in jobs:
        assert f"PASS  {job}" in proc.stdout or f"WARN  {job}" in proc.stdout, f"{job} did not run"
    # artifacts came back from the jobs: the merged run has a real kernel result for every shard's cell
    merged = {r.cell_id: r for r in RunDir(repo / "merged").runs()}
    assert set(merged) == {f"{k}/vers=4.0/leases=on" for k in shards}
    assert all(r.status in ("pass", "fail") for r in merged.values()), {k: r.verdict for k, r in merged.items()}
    assert merged[CELL].status == "pass"
    assert (repo / "compatibility.md").read_text().count("debian-6.1") >= 1
    changes = json.loads((repo / "changes.json").read_text())
    [change] = [c for c in changes["changes"] if c["cell"] == CELL]
    assert (change["before"]["status"], change["after"]["status"]) == ("fail", "pass")
    report = repo / "bisect"
    if bisects:
        assert change.get("bisect") and change["bisect"]["kernels"] == ["debian-6.1-nofix", "debian-6.1"]
        assert report.is_dir() and any(report.iterdir()), "the bisect wrote no report"
    else:
        assert not change.get("bisect") and "no bisect" in proc.stdout
    assert leftovers() == []
