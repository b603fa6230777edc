"""The initramfs of a Debian kernel package (lab/initrd.py): a generic-flavour kernel has ext4 and its checksum as
modules, so they go into the initramfs after their dependencies.

Seen on real VMs: `lab run --kernel linux-image-5.10.0-30-amd64_….deb` (Debian's generic flavour) never brought
alice and bob up (`Waiting for domain to get an IP address`, until the 300 s boot timeout): the initramfs loaded the
virtio modules only, and / is ext4, a module in that flavour (built in in the cloud one)."""
from __future__ import annotations

import gzip
import subprocess

from lab import initrd

DEP = """kernel/fs/ext4/ext4.ko: kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko kernel/lib/crc16.ko
kernel/fs/jbd2/jbd2.ko:
kernel/fs/mbcache.ko:
kernel/lib/crc16.ko:
kernel/crypto/crc32c_generic.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
"""


def modules_dir(tmp_path):
    d = tmp_path / "lib/modules/5.10.0-30-amd64"
    for line in DEP.splitlines():
        path = d / line.split(":")[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x7fELF module " + path.name.encode())
    (d / "modules.dep").write_text(DEP)
    return d


def test_a_generic_kernel_s_initramfs_loads_ext4_after_its_dependencies(tmp_path):
    d = modules_dir(tmp_path)
    order = initrd.load_order(initrd.module_index(d), initrd.ROOT_FS_MODULES)
    assert order[-1] == "kernel/fs/ext4/ext4.ko"
    for dep in ("kernel/fs/mbcache.ko", "kernel/fs/jbd2/jbd2.ko", "kernel/lib/crc16.ko"):
        assert order.index(dep) < order.index("kernel/fs/ext4/ext4.ko")
    assert "kernel/crypto/crc32c_generic.ko" in order       # crc32c_intel is not a module here: skipped
    out = initrd.build_initrd(d, tmp_path / "initrd", None, extra=initrd.ROOT_FS_MODULES)
    listing = subprocess.run(["cpio", "-it", "--quiet"], input=gzip.decompress(out.read_bytes()),
                             capture_output=True, check=True).stdout.decode().split()
    assert "lib/modules/ext4.ko" in listing and "lib/modules/jbd2.ko" in listing
    cpio = subprocess.run(["cpio", "-i", "--quiet", "--to-stdout", "modules.order"],
                          input=gzip.decompress(out.read_bytes()), capture_output=True, check=True).stdout.decode()
    loaded = cpio.split()
    assert loaded[:4] == ["virtio", "virtio_ring", "virtio_pci", "virtio_blk"]
    assert loaded.index("jbd2") < loaded.index("ext4") and loaded.index("mbcache") < loaded.index("ext4")


def test_without_extra_the_initramfs_is_the_box_s_virtio_only(tmp_path):
    """The lab's own box builds its initramfs without `extra`: its hash (lab/boxes.py) names BOOT_MODULES only."""
    d = modules_dir(tmp_path)
    out = initrd.build_initrd(d, tmp_path / "initrd", None)
    cpio = subprocess.run(["cpio", "-i", "--quiet", "--to-stdout", "modules.order"],
                          input=gzip.decompress(out.read_bytes()), capture_output=True, check=True).stdout.decode()
    assert cpio.split() == ["virtio", "virtio_ring", "virtio_pci", "virtio_blk"]
