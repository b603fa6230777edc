"""bench/distro_box.py's pure parts: the partition table, what is read back from mountinfo and losetup, the checks of
the bootloader, the initramfs and a provisioned disk, the box's metadata, and that debian-11-box's spec pins exactly
the box this builds. Building it needs root, debootstrap and a loop device: `python bench/distro_box.py`."""
from __future__ import annotations

import json
import struct

import pytest

from bench import distro_box as d
from lab.spec import load_kernel

UUID = "fdf362c4-fb9f-4854-b11d-0c28ace6bdb5"
GiB = 1 << 30


def test_the_partition_table_is_what_fdisk_writes_for_one_bootable_linux_partition():
    table = d.partition_table(4 * GiB, 0xFDF362C4)
    assert len(table) == 512 - 440
    mbr = bytes(440) + table
    assert mbr[440:444] == bytes.fromhex("c462f3fd") and mbr[444:446] == b"\0\0"   # disk signature
    entry = mbr[446:462]
    assert entry[0] == 0x80 and entry[4] == 0x83                                   # bootable, Linux
    assert entry[1:4] == bytes.fromhex("202100")                                 # CHS of sector 2048
    assert entry[5:8] == bytes.fromhex("2aa00a")                                 # CHS of the last sector
    assert struct.unpack("<II", entry[8:]) == (2048, 4 * GiB // 512 - 2048)
    assert mbr[462:510] == bytes(48) and mbr[510:] == b"\x55\xaa"


def test_sectors_past_cylinder_1023_are_marked_beyond_chs():
    assert d._chs(0) == bytes((0, 1, 0))
    assert d._chs(1024 * 255 * 63) == b"\xfe\xff\xff"
    assert d.partition_table(1 << 40, 1)[6 + 5:6 + 8] == b"\xfe\xff\xff"


def test_the_chroot_mounts_exist_only_in_its_own_namespace_with_a_private_dev():
    nodes = [("loop3", "b", 7, 3), ("loop3p1", "b", 259, 0), ("null", "c", 1, 3)]
    script = d.chroot_script(d.Path("/b/my dir/mnt"), "/dev/loop3p1", nodes, UUID, ['chroot "$root" update-grub'])
    lines = script.splitlines()
    assert lines[:4] == ["set -eu", "root='/b/my dir/mnt'", 'mount /dev/loop3p1 "$root"',
                         'mount -t tmpfs -o mode=0755,size=1m nfslab-dev "$root/dev"']
    assert 'mknod -m 600 "$root/dev/loop3p1" b 259 0' in lines and 'mknod -m 600 "$root/dev/null" c 1 3' in lines
    assert f'ln -s ../../loop3p1 "$root/dev/disk/by-uuid/{UUID}"' in lines   # update-grub's root=UUID=
    assert lines[-1] == 'chroot "$root" update-grub' and "umount" not in script   # the namespace ends them


def test_loop_devices_of_losetup_associated():
    out = "/dev/loop3: [2049]:131 (/b/disk.raw)\n/dev/loop5: [2049]:131 (/b/disk.raw)\n"
    assert d.loop_devices(out) == ["/dev/loop3", "/dev/loop5"] and d.loop_devices("") == []


def test_grub_prefix_is_read_from_grub_install_verbose():
    verbose = ("grub-install: info: grub-mkimage --directory '/usr/lib/grub/i386-pc' --prefix '(,msdos1)/boot/grub' "
               "--output '/boot/grub/i386-pc/core.img'  --dtb '' --format 'i386-pc'\n")
    assert d.grub_prefix(verbose) == "(,msdos1)/boot/grub" and d.grub_prefix("nothing") is None


def good_disk():
    core = bytes(range(256)) * 100
    boot = bytearray(440)
    boot[0x180:0x184] = b"GRUB"
    struct.pack_into("<Q", boot, d.KERNEL_SECTOR_AT, 1)
    head = bytearray(bytes(boot) + d.partition_table(4 * GiB, 1) + core + bytes(d.PART_START * 512))
    head[512 + 508] ^= 0xFF                            # grub-bios-setup's own changes to the embedded copy
    grub_cfg = (f"search --no-floppy --fs-uuid --set=root {UUID}\n"
                f"linux /boot/vmlinuz-5.10.0-32-amd64 root=UUID={UUID} ro console=ttyS0\n")
    return bytes(head[:d.PART_START * 512]), core, grub_cfg


def test_a_whole_bootloader_has_no_problems():
    head, core, grub_cfg = good_disk()
    assert d.bootloader_problems(head, core, d.GRUB_PREFIX, grub_cfg, UUID, "5.10.0-32-amd64") == []


@pytest.mark.parametrize("damage, problem", [
    (lambda h, c, p, g: (bytes(440) + h[440:], c, p, g), "the MBR holds no GRUB boot code"),
    (lambda h, c, p, g: (h[:d.KERNEL_SECTOR_AT] + struct.pack("<Q", 34) + h[d.KERNEL_SECTOR_AT + 8:], c, p, g),
     "does not load core.img from sector 1"),
    (lambda h, c, p, g: (h[:512] + bytes(len(c)) + h[512 + len(c):], c, p, g), "core.img is not embedded"),
    (lambda h, c, p, g: (h, c, "(hostdisk//dev/loop0,msdos1)/boot/grub", g), "looks for GRUB's files in"),
    (lambda h, c, p, g: (h, c, p, g.replace("5.10.0-32", "5.10.0-30")), "no entry for 5.10.0-32-amd64"),
    (lambda h, c, p, g: (h, c, p, g.replace(f"root=UUID={UUID}", "root=/dev/loop0p1")), "names the build's loop"),
])
def test_each_bootloader_fault_is_named(damage, problem):
    head, core, prefix, grub_cfg = damage(*good_disk()[:2], d.GRUB_PREFIX, good_disk()[2])
    problems = d.bootloader_problems(head, core, prefix, grub_cfg, UUID, "5.10.0-32-amd64")
    assert any(problem in p for p in problems), problems


def test_the_initramfs_must_find_a_virtio_disk_by_uuid():
    listing = "\n".join(["scripts/local", "usr/bin/udevadm", "usr/lib/modules/5.10.0-32-amd64/kernel/fs/ext4/ext4.ko",
                         "usr/lib/modules/5.10.0-32-amd64/kernel/drivers/virtio/virtio_pci.ko"])
    assert d.initrd_problems(listing) == ["the initramfs has no virtio_blk.ko"]


def test_a_provisioned_disk_boots_the_pinned_kernel_next():
    entry = f"gnulinux-5.10.0-30-amd64-advanced-{UUID}"
    cfg = (f"   set default=\"gnulinux-advanced-{UUID}>{entry}\"\n"
           f"\tmenuentry 'Debian' $menuentry_id_option '{entry}' {{\n")
    boot = ["initrd.img-5.10.0-30-amd64", "initrd.img-5.10.0-32-amd64", "vmlinuz-5.10.0-30-amd64"]
    assert d.provisioned_problems(cfg, boot, UUID, "5.10.0-30-amd64") == []
    assert d.provisioned_problems(cfg.replace("set default", "set defualt"), boot[1:], UUID, "5.10.0-30-amd64") == [
        "/boot has no initrd.img-5.10.0-30-amd64", f"grub.cfg's default is not {entry}"]


def test_metadata_and_box_vagrantfile():
    assert d.metadata() == {"provider": "libvirt", "format": "qcow2", "virtual_size": d.DISK_GIB}
    assert d.BOX_VAGRANTFILE == 'Vagrant.configure("2") do |config|\nend\n'


def test_the_disk_uuid_follows_the_inputs():
    assert d.fs_uuid() == d.fs_uuid() and len(d.fs_uuid()) == 36
    assert d.build_dir(d.LabHome(d.Path("/h"))).name == f"nfslab-debian-11-{d.digest()[:12]}"


def test_the_boxs_inputs_are_shown_in_review(golden):
    """A change to what the box holds shows here; bump VERSION with it (and debian-11-box's version and file)."""
    golden.check("distro-box-inputs.json", json.dumps(d.box_inputs(), indent=1, sort_keys=True) + "\n")


def test_debian_11_box_pins_exactly_the_box_this_builds():
    source = load_kernel(d.SPEC).source
    assert (source["name"], source["version"], source["file"]) == (d.NAME, d.VERSION, d.FILE)
    assert source["suite"] == d.SUITE
    assert source["kernel_package"] != "linux-image-amd64"     # a kernel the provisioner must install and select
