"""bench/stable_history.py's inputs, without making the history: the patch texts are 4.19.64's NFS series in
upstream order with the right authors and upstream ids, the first equals the project's be189f7e patch, they apply
in order to 4.19.1 without fuzz (4.19.1 found as the lab finds mainline-4.19's tree), and the kernel specs and
matrices built on the history name its tags."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from bench import kernel_history, stable_history
from lab.paths import KERNELS, LabHome
from lab.spec import load_kernel, load_matrix
from tests import CHECKOUT

#: where this machine keeps the pruned 4.19.1 tarball (the mirror .ci/run names); elsewhere NFSLAB_MIRROR may
#: name one, and without either the test that needs 4.19.1 skips: a unit test never downloads it
SHARED_MIRROR = Path("/work/shared/kernels")

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
    ours = (KERNELS / "patches/be189f7e-4.19.patch").read_text()
    series = (stable_history.SERIES / stable_history.PATCHES[0].file).read_text()
    assert body_lines(series.split("\n--- a/", 1)[1]) == body_lines(ours.split("\n--- a/", 1)[1])


def mirror_with_4191() -> Path | None:
    """A directory that holds one of mainline-4.19's tarballs: NFSLAB_MIRROR's, else this machine's shared one."""
    tree = load_kernel(kernel_history.SPEC).source["tree"]
    dirs = [Path(d) for d in os.environ.get("NFSLAB_MIRROR", "").split(":") if d] + [SHARED_MIRROR]
    return next((d for d in dirs if any((d / t.file).is_file() for t in tree.tarballs)), None)


def test_the_patches_apply_in_order_to_4191_without_fuzz(tmp_path, monkeypatch):
    mirror = mirror_with_4191()
    if mirror is None:
        pytest.skip(f"no 4.19.1 tarball in NFSLAB_MIRROR or {SHARED_MIRROR}")
    monkeypatch.setenv("NFSLAB_MIRROR", str(mirror))
    tarball = kernel_history.find_tarball("test", home=LabHome(tmp_path / "home"), progress=lambda msg: None)
    # two files, wherever they are: kernel.org's tarball has a top directory (linux-4.19.1/), the pruned one none
    unpacked = tmp_path / "tree"
    unpacked.mkdir()
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(unpacked), "--wildcards", "*fs/nfs/dir.c",
                    "*fs/nfs/nfs4proc.c"], check=True)
    tree = unpacked if (unpacked / "fs").is_dir() else next(unpacked.iterdir())
    for patch in stable_history.PATCHES:
        path = stable_history.SERIES / patch.file
        for extra in (["--dry-run"], []):
            r = subprocess.run(["patch", "-p1", "-d", str(tree), "-i", str(path), *extra], capture_output=True,
                               text=True)
            assert r.returncode == 0 and "fuzz" not in r.stdout and "FAILED" not in r.stdout, r.stdout
    assert "inode);;" not in (tree / "fs/nfs/dir.c").read_text()


def test_the_histories_take_4191_from_the_lab_s_tarball_lookup(tmp_path, monkeypatch):
    """No path of this machine in the scripts: mainline-4.19's `tree:` through lab/tarballs.py (a mirror's file is
    checked against its sha256, so a wrong one stops the script with the lab's words), or --tarball as given."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "linux-4.19.1.tar.xz").write_bytes(b"not linux")
    monkeypatch.setenv("NFSLAB_MIRROR", str(mirror))
    with pytest.raises(SystemExit) as stop:
        kernel_history.find_tarball("stable_history", home=LabHome(tmp_path / "home"))
    assert str(stop.value).startswith(f"stable_history: the 4.19.1 tree: kernel tree: verify: {mirror}/linux-4.19.1")
    given = tmp_path / "any.tar.xz"
    with pytest.raises(SystemExit, match="not found"):
        kernel_history.find_tarball("stable_history", given)
    given.write_bytes(b"")
    assert kernel_history.find_tarball("stable_history", given) == given
    for script in ("kernel_history.py", "bisect_history.py", "stable_history.py"):
        assert "shared/kernels" not in (CHECKOUT / "bench" / script).read_text(), script


def test_the_specs_and_matrices_name_the_historys_tags():
    tags = {"base", "tip", stable_history.STABLE_TAG} | {p.tag for p in stable_history.PATCHES}
    steps = load_matrix(CHECKOUT / "matrices/stable-4.19.64.yaml")
    revert = load_matrix(CHECKOUT / "matrices/v41-window-revert.yaml")
    mainline_config = KERNELS / load_kernel(kernel_history.SPEC).source["config"]
    for kernel in steps.kernels + revert.kernels:
        assert kernel.path.parent == CHECKOUT / "matrices/kernels"          # experiment rows, not packaged ones
        assert kernel.source["tree"] == str(stable_history.DEFAULT_DEST)
        assert kernel.source["ref"] in tags
        assert (kernel.path.parent / kernel.source["config"]).resolve() == mainline_config.resolve()
    assert steps.kernel(steps.server).path.parent == KERNELS                   # the server is nfslab's own
    assert [k.source["ref"] for k in steps.kernels] == ["base", *(p.tag for p in stable_history.PATCHES[:3]), "tip"]
    assert revert.axes["vers"] == ["4.1"]
    assert revert.kernel("stable-4.19.64-tip-revert").source["patches"] == [
        str(kernel_history.HISTORIES / "revert-culprit-4.19.64.patch")]
