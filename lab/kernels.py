"""Turn a kernel spec into bootable files, or say honestly why it cannot be had here.

A registry keyed by the spec's `source` kind (tuxmake-style): `deb`, `box`, `build`. Each source either returns
`KernelFiles` (direct kernel boot: the kernel is a file, the box image never changes) or raises KernelUnavailable,
which makes every cell of that kernel SKIP with the reason — never a FAIL, never a silent gap.
"""
from __future__ import annotations

from pathlib import Path

from .boxes import Box, is_registered, kernel_release
from .errors import KernelUnavailable
from .paths import LabHome
from .spec import Kernel
from .topology import KernelFiles

BOX_SUITE = "bookworm"
BOX_KERNEL_PACKAGE = "linux-image-cloud-amd64"

SOURCES = {}


def source(kind: str):
    def register(fn):
        SOURCES[kind] = fn
        return fn
    return register


def resolve(kernel: Kernel, home: LabHome, box: Box) -> KernelFiles:
    """Files to boot `kernel`, or KernelUnavailable(reason)."""
    try:
        get = SOURCES[kernel.source_kind]
    except KeyError:
        raise KernelUnavailable(f"source kind '{kernel.source_kind}' is not supported") from None
    return get(kernel, home, box)


@source("deb")
def deb_kernel(kernel: Kernel, home: LabHome, box: Box) -> KernelFiles:
    """A Debian kernel package. The lab box's own kernel (bookworm cloud) is used straight from the box; other
    suites need the package fetched and its modules handed to the guest, which this version does not do yet."""
    suite, package = kernel.source["suite"], kernel.source["package"]
    if suite == BOX_SUITE and package == BOX_KERNEL_PACKAGE:
        return box_kernel_files(box)
    raise KernelUnavailable(f"deb {package} from {suite}: fetching kernels from other suites is not implemented "
                            f"in this version of nfslab (only {BOX_SUITE}'s {BOX_KERNEL_PACKAGE} is)")


def box_kernel_files(box: Box) -> KernelFiles:
    release = (box.dir / "release").read_text().strip() if (box.dir / "release").exists() \
        else kernel_release(box.rootfs)
    return KernelFiles(vmlinuz=box.dir / "vmlinuz", initrd=box.dir / "initrd", release=release)


@source("box")
def vagrant_box_kernel(kernel: Kernel, home: LabHome, box: Box) -> KernelFiles:
    """A distribution's own Vagrant box (CentOS 7, Ubuntu 16.04) pinned to a kernel package. Only usable where
    the box is already present: Vagrant Cloud and the distributions' mirrors are unreachable here."""
    name = kernel.source["name"]
    if not is_registered(home, name.replace("/", "-VAGRANTSLASH-")):
        raise KernelUnavailable(f"box {name} not found locally and Vagrant Cloud is unreachable from this machine "
                                f"(needs {kernel.source['kernel_package']})")
    raise KernelUnavailable(f"box {name} is present, but booting distribution boxes is not implemented in this "
                            f"version of nfslab")


@source("build")
def built_kernel(kernel: Kernel, home: LabHome, box: Box) -> KernelFiles:
    scope = kernel.source.get("scope", "full")
    raise KernelUnavailable(f"build ({scope}) of {kernel.source['tree']}: kernel builds are not implemented in this "
                            f"version of nfslab")


def server_kernel(home: LabHome, box: Box) -> KernelFiles:
    """The fixed server side: the box's bookworm kernel (matrix.yaml `server:` names its spec)."""
    return box_kernel_files(box)


def check_files(files: KernelFiles) -> KernelFiles:
    for p in (files.vmlinuz, files.initrd):
        if p is not None and not Path(p).exists():
            raise KernelUnavailable(f"kernel file missing: {p}")
    return files
