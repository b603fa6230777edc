"""Kernel sources: what each spec in kernels/ turns into on this machine, without booting anything."""
from pathlib import Path

import pytest

from lab import kernels
from lab.boxes import Box
from lab.errors import KernelUnavailable
from lab.paths import PROJECT, LabHome
from lab.spec import load_matrix


@pytest.fixture
def matrix():
    return load_matrix(PROJECT / "matrix.yaml")


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


def test_distribution_box_without_the_box_is_skipped_with_the_reason(matrix, box, tmp_path):
    with pytest.raises(KernelUnavailable, match="centos/7 not found locally.*Vagrant Cloud is unreachable"):
        kernels.resolve(matrix.kernel("centos7-3.10"), LabHome(tmp_path), box)


@pytest.mark.parametrize("name", ["mainline-4.19"])
def test_unimplemented_sources_say_so(matrix, box, tmp_path, name):
    with pytest.raises(KernelUnavailable, match="not implemented"):
        kernels.resolve(matrix.kernel(name), LabHome(tmp_path), box)


def test_missing_kernel_file_is_unavailable(box):
    (box.dir / "initrd").unlink()
    with pytest.raises(KernelUnavailable, match="initrd"):
        kernels.check_files(kernels.box_kernel_files(box))
