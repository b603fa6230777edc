"""ci/gitlab-ci.yml as gitlab-ci-local runs it, without VMs: a stand-in `lab` (put in place by a stand-in
quickstart.sh) records each call and checks that the artifacts it needs arrived, so the chain shard → table →
compare → bisect → gate, the pipeline variables and the artifacts handed between isolated jobs are checked here;
tests/lab/test_pipeline.py runs the same file with the real lab."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests import CHECKOUT

GITLAB_CI_LOCAL = CHECKOUT / ".ci/node/node_modules/.bin/gitlab-ci-local"
FAKE_LAB = r"""#!/bin/bash
# a stand-in lab: logs its call; fails (exit 9) when an artifact it needs did not arrive
echo "lab $*" >> "$FAKE_LOG"
out=""; prev=""; for a in "$@"; do [ "$prev" = --output ] && out=$a; [ "$prev" = --runs ] && runs=$a; prev=$a; done
case "$1" in
  run) mkdir -p "$runs/r1" && : > "$runs/r1/table.md"; exit 1;;
  merge) ls shards/*/r1/table.md >/dev/null || exit 9; mkdir -p merged && : > merged/run.json;;
  table) [ -f merged/run.json ] || exit 9; [ -z "$out" ] || : > "$out";;
  fetch-baseline) mkdir -p baseline/merged;;
  compare) [ -f merged/run.json ] && [ -d baseline/merged ] || exit 9; echo '{}' > changes.json; exit 1;;
  bisect) [ -f changes.json ] || exit 9; mkdir -p bisect && : > bisect/report.md;;
esac
"""


def test_the_pipeline_runs_under_gitlab_ci_local_with_artifacts_between_jobs(tmp_path):
    if not GITLAB_CI_LOCAL.exists() or not shutil.which("rsync"):
        pytest.skip("gitlab-ci-local (npm, in .ci/node) or rsync missing; .ci/run installs both")
    repo = tmp_path / "repo"
    (repo / "ci").mkdir(parents=True)
    (repo / "matrices").mkdir()
    for name in ("ci/gitlab-ci.yml", "ci/gitlab-ci-cleanup.yml", "matrices/ci-two-kernels.yaml"):
        shutil.copy(CHECKOUT / name, repo / name)
    (tmp_path / "lab").write_text(FAKE_LAB)
    (repo / "quickstart.sh").write_text(f"#!/bin/sh\nmkdir -p .venv/bin && cp {tmp_path / 'lab'} .venv/bin/lab "
                                        f"&& chmod +x .venv/bin/lab\n")
    (repo / "quickstart.sh").chmod(0o755)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "pipeline"], check=True)
    log = tmp_path / "calls.log"
    jobs = ["shard: [debian-6.1-nofix]", "shard: [debian-6.1]", "table", "compare", "bisect", "gate"]
    r = subprocess.run([str(GITLAB_CI_LOCAL), "--file", "ci/gitlab-ci.yml", "--shell-isolation", "--no-color",
                        "--variable", "CI_PIPELINE_SOURCE=schedule",
                        "--variable", "NFSLAB_MATRIX=matrices/ci-two-kernels.yaml",
                        "--variable", "NFSLAB_BASELINE_URL=file:///nonexistent/baseline.zip",
                        "--variable", "NFSLAB_AFTER_CLEAN=no", "--variable", f"FAKE_LOG={log}", *jobs],
                       cwd=repo, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    calls = log.read_text().splitlines()
    assert sorted(calls[:2]) == [
        "lab run --matrix matrices/ci-two-kernels.yaml --kernels debian-6.1 --runs shards/debian-6.1",
        "lab run --matrix matrices/ci-two-kernels.yaml --kernels debian-6.1-nofix --runs shards/debian-6.1-nofix"]
    assert calls[2] == "lab merge merged shards/debian-6.1-nofix/r1 shards/debian-6.1/r1"
    assert any(c.startswith("lab fetch-baseline file:///nonexistent/baseline.zip --header JOB-TOKEN:") for c in calls)
    assert ("lab bisect versions --matrix matrices/ci-two-kernels.yaml --from-changes changes.json --report bisect"
            in calls)
    assert "lab clean" not in calls and (repo / "bisect/report.md").exists()
    for job in jobs:
        assert f"FAIL  {job}" not in r.stdout
