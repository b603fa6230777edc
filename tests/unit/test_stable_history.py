"""bench/stable_history.py's inputs, without making the history: the patch texts are 4.19.64's NFS series in
upstream order with the right authors and upstream ids, the first equals the project's be189f7e patch, they apply
in order to 4.19.1 without fuzz, and the kernel specs and matrices built on the history name its tags."""
from __future__ import annotations

import re
import subprocess

import pytest

from bench import kernel_history, stable_history
from lab.paths import PROJECT
from lab.spec import load_matrix

UPSTREAM = ["be189f7e7f03de35887e5a85ddcf39b91b5d7fc1", "5ceb9d7fdaaf6d8ced6cd7861cf1deb9cd93fa47",
            "c7944ebb9ce9461079659e9e6ec5baaf73724b3b", "42f72cf368c502c435af4e206e26d651cfb7d9ad"]


def commits():
    return [stable_history.read_commit(stable_history.SERIES / p.file) for p in stable_history.PATCHES]


def test_the_series_in_upstream_order_with_its_authors():
    assert [c.upstream for c in commits()] == UPSTREAM
    assert [c.subject for c in commits()] == [
        "NFS: Fix dentry revalidation on NFSv4 lookup", "NFS: Refactor nfs_lookup_revalidate()",
        "NFSv4: Fix lookup revalidate of regular files", "NFS: Remove redundant semicolon"]
    assert [c.author[1] for c in commits()] == ["trond.myklebust@hammerspace.com"] * 3 + \
        ["zhangliguang@linux.alibaba.com"]
    assert [p.in_stable for p in stable_history.PATCHES] == [True, True, True, False]
    for commit in commits():
        assert commit.body.startswith(f"commit {commit.upstream} upstream.\n")
        assert "Signed-off-by: Trond Myklebust" in commit.body


def test_every_patch_names_its_source():
    for patch in stable_history.PATCHES:
        head = (stable_history.SERIES / patch.file).read_text().split("\nFrom: ", 1)[0]
        assert re.search(r"Message-Id <[^>]+>\n  https://lore\.kernel\.org/stable/", head), patch.file


def body_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line[:1] in " +-" and not line.startswith(("---", "+++"))]


def test_the_first_patch_is_the_projects_be189f7e():
    ours = (PROJECT / "kernels/patches/be189f7e-4.19.patch").read_text()
    series = (stable_history.SERIES / stable_history.PATCHES[0].file).read_text()
    assert body_lines(series.split("\n--- a/", 1)[1]) == body_lines(ours.split("\n--- a/", 1)[1])


@pytest.mark.skipif(not kernel_history.TARBALL.exists(), reason=f"{kernel_history.TARBALL} not here")
def test_the_patches_apply_in_order_to_4191_without_fuzz(tmp_path):
    subprocess.run(["tar", "-xJf", str(kernel_history.TARBALL), "-C", str(tmp_path), "fs/nfs/dir.c",
                    "fs/nfs/nfs4proc.c"], check=True)
    for patch in stable_history.PATCHES:
        path = stable_history.SERIES / patch.file
        for extra in (["--dry-run"], []):
            r = subprocess.run(["patch", "-p1", "-d", str(tmp_path), "-i", str(path), *extra], capture_output=True,
                               text=True)
            assert r.returncode == 0 and "fuzz" not in r.stdout and "FAILED" not in r.stdout, r.stdout
    assert "inode);;" not in (tmp_path / "fs/nfs/dir.c").read_text()


def test_the_specs_and_matrices_name_the_historys_tags():
    tags = {"base", "tip", stable_history.STABLE_TAG} | {p.tag for p in stable_history.PATCHES}
    steps = load_matrix(PROJECT / "matrices/stable-4.19.64.yaml")
    revert = load_matrix(PROJECT / "matrices/v41-window-revert.yaml")
    for kernel in steps.kernels + revert.kernels:
        assert kernel.source["tree"] == str(stable_history.DEFAULT_DEST)
        assert kernel.source["ref"] in tags
    assert [k.source["ref"] for k in steps.kernels] == ["base", *(p.tag for p in stable_history.PATCHES[:3]), "tip"]
    assert revert.axes["vers"] == ["4.1"]
    assert revert.kernel("stable-4.19.64-tip-revert").source["patches"] == [
        str(kernel_history.HISTORIES / "revert-culprit-4.19.64.patch")]
