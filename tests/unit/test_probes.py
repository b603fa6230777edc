"""The real-lab probe of a bisect without VMs: the Runner and the kernel preparation are replaced, so what is
checked is how their outcomes become builds and trials, where each run's logs are kept, and the kernel specs a
bisect derives (a series beyond the matrix's rows, the base spec moved onto a commit)."""
import pytest

from lab import kernels
from lab.errors import KernelUnavailable, LabError
from lab.paths import DEFAULT_MATRIX
from tests import CHECKOUT
from lab.probes import CellProbe, commit_kernel, commit_probe, with_kernels
from lab.results import ResultRecord, RunDir
from lab.spec import load_matrix

PARAMS = {"vers": "4.0", "leases": "on"}


@pytest.fixture
def matrix():
    return load_matrix(DEFAULT_MATRIX)


@pytest.fixture
def probe(matrix, tmp_path, monkeypatch):
    cells = CellProbe(matrix, PARAMS, RunDir(tmp_path / "cells"))
    cells.runner.box = object()           # as if prepared: no host, no box
    calls = []

    def run_cell(cell):
        calls.append(cell.id)
        log_dir = cells.runner.run_dir.log_dir(cell.id)
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / "timeline.txt").write_text(f"run {len(calls)}\n")
        status = "fail" if len(calls) % 2 else "pass"
        return ResultRecord("r", cell.id, cell.kernel, dict(cell.params), {"status": status}, "pass", "", 61.0,
                            "main", None, "")
    monkeypatch.setattr(cells.runner, "run_cell", run_cell)
    cells.calls = calls
    return cells


def test_runs_become_trials_and_each_keeps_its_logs(probe):
    first, second = probe.run("mainline-4.19"), probe.run("mainline-4.19")
    assert (first.status, second.status, first.seconds) == ("fail", "pass", 61.0)
    logs = probe.runner.run_dir.log_dir("mainline-4.19/vers=4.0/leases=on")
    assert (logs / "run-1" / "timeline.txt").read_text() == "run 1\n"
    assert (logs / "run-2" / "timeline.txt").read_text() == "run 2\n"
    assert probe.title("mainline-4.19").startswith("Linux 4.19.1")


@pytest.mark.parametrize("raised, result", [
    (None, "ok"),
    (KernelUnavailable("box centos/7 not found"), "unavailable"),
    (LabError("build: mainline-4.19", "make failed", "/x/build.log"), "failed"),
])
def test_prepare_turns_a_failed_build_into_a_build_result(probe, monkeypatch, raised, result):
    def resolve(kernel, home, box, progress):
        if raised:
            raise raised
        return kernels.KernelFiles(CHECKOUT / "README.md", None, "4.19.1")
    monkeypatch.setattr(kernels, "resolve", resolve)
    build = probe.prepare("mainline-4.19")
    assert build.result == result
    assert (str(raised) in build.detail) if raised else build.detail == ""


def test_commit_probe_builds_the_base_spec_at_each_commit(probe, matrix, monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(kernels, "resolve", lambda kernel, *a: seen.append(kernel) or
                        kernels.KernelFiles(CHECKOUT / "README.md", None, "4.19.1"))
    commit = "92716306ad8a28c066c1055ade1e47f16574d012"
    p = commit_probe(probe, matrix.kernel("mainline-4.19"), tmp_path, None)
    assert p.prepare(commit).ok
    kernel = seen[0]
    assert kernel.name == "mainline-4.19-g92716306ad8a"
    assert kernel.source["tree"] == str(tmp_path.resolve()) and kernel.source["ref"] == commit
    assert kernel.source["config"] == "config/lab-4.19.config" and kernel.path == matrix.kernel("mainline-4.19").path
    assert kernel.expected(PARAMS) == "fail", "expectations come from the base"
    p.run(commit)
    assert probe.calls == ["mainline-4.19-g92716306ad8a/vers=4.0/leases=on"]


def test_commit_kernel_needs_a_build_spec(matrix):
    with pytest.raises(ValueError, match="'deb' kernel"):
        commit_kernel(matrix.kernel("debian-6.1"), CHECKOUT, "0" * 40)
    assert commit_kernel(matrix.kernel("debian-6.1-nofix"), CHECKOUT, "1" * 40, "full").source["scope"] == "full"


def test_with_kernels_loads_specs_beyond_the_rows(matrix, tmp_path):
    slim = load_matrix(DEFAULT_MATRIX)
    slim = type(slim)(**{**slim.__dict__, "known": {"debian-6.1": slim.known["debian-6.1"]}})
    grown = with_kernels(slim, ["debian-6.1-nofix", "mainline-4.19"])
    assert {"debian-6.1-nofix", "mainline-4.19", "debian-6.1"} <= set(grown.known)
    with pytest.raises(ValueError, match="unknown kernel 'debian-9'"):
        with_kernels(slim, ["debian-9"])


def test_module_scope_takes_fs_nfs_from_the_commit(matrix, tmp_path, monkeypatch):
    """A module-only bisect (a 6.1 tree's fs/nfs commits): the spec moved onto a commit builds that commit's fs/nfs."""
    import subprocess
    monkeypatch.delenv("NFSLAB_LINUX_TREE", raising=False)
    repo = tmp_path / "linux"
    (repo / "fs/nfs").mkdir(parents=True)
    git = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True,  # noqa: E731
                                    text=True).stdout.strip()
    git("init", "-q")
    commits = []
    for text in ("old", "new"):
        (repo / "fs/nfs/Makefile").write_text("obj-m += nfs.o\n")
        (repo / "fs/nfs/dir.c").write_text(f"/* {text} */\n")
        git("add", "-A")
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", text)
        commits.append(git("rev-parse", "HEAD"))
    spec = commit_kernel(matrix.kernel("debian-6.1-nofix"), repo, commits[0])
    assert spec.source["scope"] == "module:fs/nfs" and spec.base == "debian-6.1"
    assert kernels._module_git_tree(spec) == repo.resolve()
    assert kernels._module_git_tree(matrix.kernel("debian-6.1-nofix")) is None      # Debian's linux-source-6.1
    src = kernels.git_nfs_source(repo, commits[0], tmp_path / "src", tmp_path / "build.log")
    assert (src / "fs/nfs/dir.c").read_text() == "/* old */\n"
    not_git = tmp_path / "plain"
    not_git.mkdir()
    with pytest.raises(KernelUnavailable, match="only Debian's linux-source-6.1 or a git checkout"):
        kernels._module_git_tree(commit_kernel(matrix.kernel("debian-6.1-nofix"), not_git, commits[0]))
