"""Kernel sources: what each spec in kernels/ turns into on this machine, without booting anything."""
from pathlib import Path

import pytest

from lab import kernels
from lab.boxes import Box
from lab.errors import KernelUnavailable
from lab.paths import DEFAULT_MATRIX, LabHome
from lab.spec import load_matrix


@pytest.fixture
def matrix():
    return load_matrix(DEFAULT_MATRIX)


@pytest.fixture
def box(tmp_path):
    d = tmp_path / "box"
    d.mkdir()
    for name in ("vmlinuz", "initrd"):
        (d / name).write_text("x")
    (d / "release").write_text("6.1.0-50-cloud-amd64\n")
    return Box("nfslab-bookworm-test", d)


def test_bookworm_cloud_kernel_is_the_box_kernel(matrix, box, tmp_path):
    files = kernels.resolve(matrix.kernel("debian-6.1"), LabHome(tmp_path), box)
    assert files.vmlinuz == box.dir / "vmlinuz" and files.release == "6.1.0-50-cloud-amd64"


@pytest.mark.parametrize("name, pinned, package", [
    ("centos7-3.10", "centos/7 1809.01", "kernel-3.10.0-862.11.6.el7"),
    ("ubuntu1604-4.4", "generic/ubuntu1604", "linux-image-4.4.0-130-generic")])
def test_distribution_box_rows_say_they_lack_only_their_downloads(matrix, box, tmp_path, name, pinned, package):
    with pytest.raises(KernelUnavailable) as info:
        kernels.resolve(matrix.kernel(name), LabHome(tmp_path), box)
    assert str(info.value) == (
        f"box {pinned} is not in the lab's Vagrant home and Vagrant Cloud is unreachable from this machine, and "
        f"{package} must be downloaded by the host (the VMs have no network), which fetches kernel packages only "
        f"from Debian suites (source.box.suite); apart from these downloads the row takes the box path that "
        f"debian-11-box runs here (matrices/box-source.yaml, its box built by bench/distro_box.py)")


def test_config_fragment_options_must_survive_olddefconfig():
    fragment = "# comment\nCONFIG_NFS_FS=y\nCONFIG_VIRTIO_BLK=y\n# CONFIG_MODULES is not set\n"
    config = "CONFIG_NFS_FS=y\n# CONFIG_VIRTIO_BLK is not set\n"
    assert kernels.config_missing(fragment, config) == ["CONFIG_VIRTIO_BLK"]


def test_build_key_changes_with_any_input():
    base = kernels.build_key("1", "tree", b"config", b"patch")
    assert base == kernels.build_key("1", "tree", b"config", b"patch")
    assert base != kernels.build_key("1", "tree", b"config")            # the -fix row differs from the plain one
    assert base != kernels.build_key("1", "tree", b"config2", b"patch")


def test_patches_of_the_fix_row_exist_and_a_missing_one_is_unavailable(matrix, tmp_path):
    fix = matrix.kernel("mainline-4.19-fix")
    assert [p.name for p in kernels.patch_files(fix)] == ["be189f7e-4.19.patch"]
    broken = load_kernel_with(tmp_path, fix, patches=["patches/nope.patch"])
    with pytest.raises(KernelUnavailable, match="nope.patch does not exist"):
        kernels.patch_files(broken)


def load_kernel_with(tmp_path, kernel, **source):
    from dataclasses import replace
    return replace(kernel, source={**kernel.source, **source}, path=tmp_path / kernel.path.name)


def test_linux_tree_override(monkeypatch, matrix, tmp_path):
    monkeypatch.setenv("NFSLAB_LINUX_TREE", str(tmp_path))
    assert kernels.linux_tree(matrix.kernel("mainline-4.19")) == tmp_path
    monkeypatch.setenv("NFSLAB_LINUX_TREE", str(tmp_path / "missing"))
    with pytest.raises(KernelUnavailable, match="NFSLAB_LINUX_TREE"):
        kernels.linux_tree(matrix.kernel("mainline-4.19"))


def test_module_closure_follows_modules_dep(tmp_path):
    from lab import initrd
    (tmp_path / "modules.dep").write_text(
        "kernel/fs/nfs/nfsv4.ko.xz: kernel/fs/nfs/nfs.ko.xz kernel/net/sunrpc/sunrpc.ko.xz\n"
        "kernel/fs/nfs/nfs.ko.xz: kernel/net/sunrpc/sunrpc.ko.xz\n"
        "kernel/net/sunrpc/sunrpc.ko.xz:\n"
        "kernel/drivers/char/hw_random/virtio-rng.ko.xz:\n"
        "kernel/fs/ext4/ext4.ko.xz:\n")
    index = initrd.module_index(tmp_path)
    assert initrd.module_closure(index, ["nfsv4", "virtio-rng", "not_a_module"]) == [
        "kernel/drivers/char/hw_random/virtio-rng.ko.xz", "kernel/fs/nfs/nfs.ko.xz", "kernel/fs/nfs/nfsv4.ko.xz",
        "kernel/net/sunrpc/sunrpc.ko.xz"]


def test_missing_kernel_file_is_unavailable(box):
    (box.dir / "initrd").unlink()
    with pytest.raises(KernelUnavailable, match="initrd"):
        kernels.check_files(kernels.box_kernel_files(box))


def test_tree_identity_of_a_plain_directory_follows_its_files(tmp_path):
    tree = tmp_path / "linux"
    (tree / "fs/nfs").mkdir(parents=True)
    (tree / "Makefile").write_text("all:\n")
    (tree / "fs/nfs/dir.c").write_text("int x;\n")
    first = kernels.tree_identity(tree, None)
    assert first == kernels.tree_identity(tree, None)
    (tree / "fs/nfs/dir.c").write_text("int x, y;\n")
    assert kernels.tree_identity(tree, None) != first
    with pytest.raises(KernelUnavailable, match="neither"):
        kernels.tree_identity(tmp_path, None)


def test_tree_identity_of_a_git_checkout_is_the_commit(tmp_path):
    import subprocess
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "f").write_text("1")
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert kernels.tree_identity(tmp_path, None) == head
    assert kernels.tree_identity(tmp_path, "HEAD") == head


def test_meta_package_resolves_to_the_concrete_image():
    from lab import debian

    class FakeSuite:
        suite = "trixie"

        def depends(self, package):
            return {"linux-image-cloud-amd64": ["linux-image-6.12.117+deb13-cloud-amd64"]}.get(package, [])

    assert debian.image_package(FakeSuite(), "linux-image-cloud-amd64") == "linux-image-6.12.117+deb13-cloud-amd64"
    assert debian.image_package(FakeSuite(), "linux-image-6.12.117+deb13-cloud-amd64").endswith("cloud-amd64")
    with pytest.raises(KernelUnavailable, match="names no linux-image"):
        debian.image_package(FakeSuite(), "linux-headers-amd64")
