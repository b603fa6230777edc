"""A distribution-style Vagrant box built here, so the `box` source kind runs end to end.

The rows whose kernel comes as a distribution's box (centos7-3.10, ubuntu1604-4.4) need Vagrant Cloud, which is
unreachable here. This builds a box the way a distribution publishes one for vagrant-libvirt, from Debian 11
bullseye, and matrices/kernels/debian-11-box.yaml runs it through exactly their path (lab/boxsource.py): the box
is added to the lab's Vagrant home under a name and version, boots its own disk, and the provisioner installs a
pinned kernel package, makes it GRUB's default, reboots into it, and `uname -r` must name it.

What makes it a distribution's box rather than the lab's: a partitioned disk (an MBR with one ext4 root
partition), GRUB (grub-pc) in the MBR, Debian's own linux-image-amd64 booted by GRUB from the disk with its
initramfs-tools initrd, systemd and udev, ifupdown with DHCP on eth0 (Vagrant configures eth1 itself: it detects
the Debian guest), a `vagrant` user that trusts Vagrant's public insecure key, password-less sudo, sshd,
nfs-common, and the console on ttyS0 (kernel, getty and GRUB).

Phases, each a progress line, timed at the end: debootstrap → customize → disk (ext4 written into the partition
with `mkfs.ext4 -d`: no mount) → bootloader (grub-install and update-grub in a chroot of the disk: the only step
with a loop device, released in `finally` and checked to be gone, and with mounts, which exist only in a mount
namespace of that step's own and end with it, even on SIGKILL) → package (qcow2, metadata.json, Vagrantfile, tar).

Cached by a hash of its inputs under NFSLAB_HOME/bench/boxes/<name>-<hash>/; the finished box is
NFSLAB_HOME/boxes/<FILE>, where the box source kind looks for a spec's `file:` (after NFSLAB_MIRROR's
directories).

    python bench/distro_box.py            # build it (as root; ≈ 2 min the first time), or say it is cached
    python bench/distro_box.py --add      # … and add it to the lab's Vagrant home as nfslab/debian-11 VERSION
    python bench/distro_box.py --check-provision   # … and run debian-11-box's provisioner on a copy of its disk

--check-provision is the box path without a VM: the row's pinned package fetched by the host, its provisioning
script (lab/templates/provision-debian.sh.j2) run in a chroot of a copy of the box's disk, and GRUB's default
then checked to be the pinned kernel's entry (≈ 30 s).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import stat
import struct
import sys
import tarfile
import time
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):                       # run as a script: python bench/distro_box.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stock_box
from lab import boxsource
from lab.boxes import Box, debootstrap, kernel_release
from lab.errors import LabError
from lab.paths import PREFIX, LabHome
from lab.proc import run
from lab.progress import LatestLine, Phases

#: the box as a spec names it (matrices/kernels/debian-11-box.yaml): name, version and file, pinned together
NAME = "nfslab/debian-11"
#: Debian 11.11 (bullseye's last point release) and this recipe's revision: bump the last part with any change
#: of what the box holds (tests/unit/golden/distro-box-inputs.json shows the inputs in review)
VERSION = "11.11.1"
FILE = f"{PREFIX}-debian-11-{VERSION}.box"
SUITE = "bullseye"
HOSTNAME = "bullseye"
#: what a Debian cloud box has that a Vagrant box needs, with Debian's generic kernel and GRUB for BIOS
PACKAGES = ("systemd-sysv", "udev", "ifupdown", "isc-dhcp-client", "openssh-server", "sudo", "procps", "iproute2",
            "kmod", "initramfs-tools", "linux-image-amd64", "grub-pc", "nfs-common")
DISK_GIB = 4
SECTOR = 512
#: the partition starts at 1 MiB, as fdisk puts it: the gap before it holds GRUB's core.img
PART_START = 2048
#: the ext4 features bullseye's kernel (5.10), e2fsck (1.46) and GRUB (2.06) all know, whatever the host's
#: mke2fs.conf says (e2fsprogs 1.47 can enable orphan_file, which 5.10 would mount read-only)
MKE2FS_CONF = """[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384
[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
"""
#: GRUB and the kernel on the serial console (libvirt logs it; the box has no video), eth0/eth1 names for
#: ifupdown and Vagrant, a short menu wait (under TCG every second counts three times)
GRUB_DEFAULTS = """GRUB_TIMEOUT=1
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8 net.ifnames=0 biosdevname=0"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
"""
#: a root filesystem command's PATH and locale, whatever the caller's are
CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}


@dataclass(frozen=True)
class DistroBox:
    """A build directory (rootfs, disk, log, `done`) and the finished box file."""

    dir: Path
    file: Path

    @property
    def box(self) -> Box:
        """The shape lab.boxes.debootstrap works on."""
        return Box(NAME, self.dir)

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs"

    @property
    def raw(self) -> Path:
        return self.dir / "disk.raw"

    @property
    def mnt(self) -> Path:
        return self.dir / "mnt"

    @property
    def log(self) -> Path:
        return self.dir / "build.log"


# ---- what the box is made of (pure) ----------------------------------------------------------------------------

def box_inputs() -> dict:
    """Everything the box's content depends on; its hash names the build (and, reproducibly, the disk's UUID)."""
    return {"name": NAME, "version": VERSION, "suite": SUITE, "packages": sorted(PACKAGES), "hostname": HOSTNAME,
            "disk_gib": DISK_GIB, "part_start": PART_START, "mke2fs": MKE2FS_CONF, "grub": GRUB_DEFAULTS,
            "insecure_pub": stock_box.insecure_public_key()}


def digest() -> str:
    return hashlib.sha256(json.dumps(box_inputs(), sort_keys=True).encode()).hexdigest()


def fs_uuid() -> str:
    """The root filesystem's UUID, from the inputs: the same inputs give the same fstab and grub.cfg."""
    return str(uuidlib.UUID(digest()[:32], version=4))


def build_dir(home: LabHome) -> Path:
    return home.root / "bench" / "boxes" / f"{PREFIX}-debian-11-{digest()[:12]}"


def _chs(lba: int) -> bytes:
    """An MBR's cylinder/head/sector address of a sector (255 heads, 63 sectors), or the 'beyond CHS' marker that
    fdisk writes past cylinder 1023; BIOS and GRUB use the LBA fields."""
    if lba >= 1024 * 255 * 63:
        return b"\xfe\xff\xff"
    cylinder, head, sector = lba // (255 * 63), lba // 63 % 255, lba % 63 + 1
    return bytes((head, sector | (cylinder >> 2) & 0xC0, cylinder & 0xFF))


def partition_table(disk_bytes: int, disk_id: int, start: int = PART_START) -> bytes:
    """Bytes 440–511 of the disk's first sector: the disk signature, one bootable Linux (0x83) partition from
    `start` to the end of the disk, three empty entries, 0x55AA. Bytes 0–439 stay GRUB's (grub-install writes them
    and keeps these)."""
    sectors = disk_bytes // SECTOR - start
    end = start + sectors - 1
    entry = b"\x80" + _chs(start) + b"\x83" + _chs(end) + struct.pack("<II", start, sectors)
    return struct.pack("<IH", disk_id, 0) + entry + bytes(48) + b"\x55\xaa"


def metadata() -> dict:
    """The box's metadata.json: vagrant-libvirt's provider, image format and disk size in GiB."""
    return {"provider": "libvirt", "format": "qcow2", "virtual_size": DISK_GIB}


#: the box's own Vagrantfile: nothing the topology does not set itself (a box Vagrantfile is merged under it)
BOX_VAGRANTFILE = 'Vagrant.configure("2") do |config|\nend\n'


#: the device nodes a chroot of the disk gets besides the disk and its partition
DEV_NODES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")


def chroot_script(root: Path, part: str, nodes: list[tuple[str, str, int, int]], uuid: str,
                  commands: list[str]) -> str:
    """The shell that runs `commands` (`$root` is the mounted root filesystem) in a mount namespace of its own:
    the partition at `root`; a private /dev holding only `nodes` (name, b|c, major, minor) and
    /dev/disk/by-uuid/<uuid> (update-grub writes root=UUID= only when that link exists, and the host has no udev to
    make it); /proc and /sys. Nothing is unmounted: the mounts end with the namespace, when the shell exits, and
    no other process ever sees them (an `ip netns exec` elsewhere copies the host's mounts, and would keep ours)."""
    q = shlex.quote
    lines = ["set -eu", f"root={q(str(root))}", f"mount {q(part)} \"$root\"",
             'mount -t tmpfs -o mode=0755,size=1m nfslab-dev "$root/dev"']
    lines += [f'mknod -m 600 "$root/dev/{name}" {kind} {major} {minor}' for name, kind, major, minor in nodes]
    lines += ['mkdir -p "$root/dev/disk/by-uuid"',
              f'ln -s ../../{q(Path(part).name)} "$root/dev/disk/by-uuid/{uuid}"',
              'mount -t proc proc "$root/proc"', 'mount -t sysfs -o ro sysfs "$root/sys"', *commands]
    return "\n".join(lines) + "\n"


def loop_devices(losetup_j: str) -> list[str]:
    """The devices of `losetup -j FILE`'s lines (`/dev/loop3: [2049]:131 (/…/disk.raw)`)."""
    return [line.split(":", 1)[0] for line in losetup_j.splitlines() if line.startswith("/dev/loop")]


#: where core.img must look for /boot/grub: the first partition of the disk the BIOS booted (grub-install's
#: choice when /boot is on the disk it installs to, as on an installed Debian)
GRUB_PREFIX = "(,msdos1)/boot/grub"
#: boot.img's field with the sector core.img starts at (grub-core/boot/i386/pc/boot.S, GRUB_BOOT_MACHINE_KERNEL_SECTOR)
KERNEL_SECTOR_AT = 0x5C
#: bytes grub-bios-setup changes in the copy of core.img it embeds (the blocklist length, the boot partition)
SETUP_PATCHES = 8


def grub_prefix(verbose: str) -> str | None:
    """The prefix `grub-install --verbose` gave grub-mkimage (`--prefix '(,msdos1)/boot/grub'`)."""
    found = re.search(r"grub-mkimage .*--prefix '([^']*)'", verbose)
    return found.group(1) if found else None


def bootloader_problems(head: bytes, core: bytes, prefix: str | None, grub_cfg: str, uuid: str,
                        release: str) -> list[str]:
    """What would keep GRUB from booting `release` off this disk, from its first MiB (`head`: the MBR and the gap
    core.img is embedded in), core.img as grub-install made it, its prefix and grub.cfg; [] when all is in place."""
    problems = []
    if b"GRUB" not in head[:440] or head[510:512] != b"\x55\xaa":
        problems.append("the MBR holds no GRUB boot code")
    elif struct.unpack_from("<Q", head, KERNEL_SECTOR_AT)[0] != 1:
        problems.append("the MBR's boot code does not load core.img from sector 1")
    embedded = head[SECTOR:SECTOR + len(core)]
    if not core or sum(a != b for a, b in zip(embedded, core)) > SETUP_PATCHES or len(embedded) < len(core):
        problems.append("core.img is not embedded after the MBR")
    if prefix != GRUB_PREFIX:
        problems.append(f"core.img looks for GRUB's files in {prefix!r}, not {GRUB_PREFIX!r}")
    if f"vmlinuz-{release}" not in grub_cfg:
        problems.append(f"grub.cfg has no entry for {release}")
    if f"root=UUID={uuid}" not in grub_cfg or f"--fs-uuid --set=root {uuid}" not in grub_cfg:
        problems.append(f"grub.cfg does not find and boot the root filesystem by its UUID {uuid}")
    if "/dev/loop" in grub_cfg:
        problems.append("grub.cfg names the build's loop device")
    return problems


#: what the initramfs needs to find and mount the root filesystem on a virtio disk by UUID
INITRD_NEEDS = ("virtio_blk.ko", "virtio_pci.ko", "ext4.ko", "bin/udevadm", "scripts/local")


def initrd_problems(listing: str) -> list[str]:
    """What `lsinitramfs` of the box's initrd lacks of INITRD_NEEDS."""
    names = listing.splitlines()
    return [f"the initramfs has no {need}" for need in INITRD_NEEDS if not any(n.endswith(need) for n in names)]


def provisioned_problems(grub_cfg: str, boot: list[str], uuid: str, release: str) -> list[str]:
    """What keeps a provisioned box from booting `release` next: its kernel and initrd in /boot, and GRUB's default
    being exactly its entry in the submenu (`gnulinux-advanced-<uuid>>gnulinux-<release>-advanced-<uuid>`)."""
    problems = [f"/boot has no {name}" for name in (f"vmlinuz-{release}", f"initrd.img-{release}") if name not in boot]
    entry = f"gnulinux-{release}-advanced-{uuid}"
    if f"'{entry}'" not in grub_cfg:
        problems.append(f"grub.cfg has no entry {entry}")
    if f'set default="gnulinux-advanced-{uuid}>{entry}"' not in grub_cfg:
        problems.append(f"grub.cfg's default is not {entry}")
    return problems


# ---- the build -----------------------------------------------------------------------------------------------

def cached(home: LabHome) -> DistroBox | None:
    box = DistroBox(build_dir(home), home.boxes / FILE)
    return box if (box.dir / "done").exists() and box.file.is_file() else None


def ensure(home: LabHome, progress=lambda msg: None) -> DistroBox:
    """The box file, built first if its inputs changed or it is missing (≈ 10 min cold under nice, 0 s cached)."""
    home.ensure()
    box = cached(home)
    if box is not None:
        return box
    box = DistroBox(build_dir(home), home.boxes / FILE)
    box.dir.mkdir(parents=True, exist_ok=True)
    box.log.write_text("")
    release_leftovers(box)
    phase = Phases(progress)
    if not (box.rootfs / "usr/sbin/sshd").exists():
        phase("debootstrap", f"distro box: debootstrap {SUITE} with systemd, GRUB and linux-image-amd64 (minutes)")
        debootstrap(box.box, PACKAGES, step="distro box: debootstrap", timeout=3600, suite=SUITE,
                    follow=LatestLine("distro box: debootstrap", progress,
                                      keep=lambda line: line.startswith("I: ")).follow)
    uuid = fs_uuid()
    phase("customize", "distro box: vagrant user, insecure key, DHCP on eth0, serial console, fstab by UUID")
    customize(box, uuid)
    release = kernel_release(box.rootfs)
    listing = run(["chroot", str(box.rootfs), "lsinitramfs", f"/boot/initrd.img-{release}"],
                  step="distro box: lsinitramfs", timeout=300, log=box.log, env=CHROOT_ENV).stdout
    if problems := initrd_problems(listing):
        raise LabError("distro box: initramfs", "; ".join(problems), box.log)
    phase("disk", f"distro box: {DISK_GIB} GiB disk, MBR, ext4 root partition {uuid}")
    make_disk(box, uuid)
    phase("bootloader", f"distro box: grub-install and update-grub in the disk (GRUB boots {release})")
    install_bootloader(box, uuid, release)
    phase("package", f"distro box: qcow2, metadata.json, Vagrantfile → {box.file}")
    package(box)
    shutil.rmtree(box.rootfs)                            # ≈ 700 MB; the box file is all that is needed
    (box.dir / "done").write_text(json.dumps({**box_inputs(), "release": release, "uuid": uuid}, indent=1) + "\n")
    phase.end(f"distro box {NAME} {VERSION} ({release}) built")
    return box


def customize(box: DistroBox, uuid: str) -> None:
    """A Vagrant box's user, key, sudo and DHCP (as the stock box has them), then what a disk with a bootloader
    needs: fstab by UUID, GRUB's serial settings, and the disk GRUB is reinstalled on when grub-pc is upgraded."""
    r = box.rootfs
    stock_box.customize(r, hostname=HOSTNAME, root=f"UUID={uuid}")
    (r / "etc/default/grub.d").mkdir(parents=True, exist_ok=True)
    (r / "etc/default/grub.d/10-nfslab-box.cfg").write_text(GRUB_DEFAULTS)
    run(["chroot", str(r), "debconf-set-selections"], input="grub-pc grub-pc/install_devices multiselect /dev/vda\n",
        step="distro box: grub-pc install device", timeout=60, log=box.log, env=CHROOT_ENV)


def make_disk(box: DistroBox, uuid: str) -> None:
    """The raw disk: ext4 made from the tree straight into the partition's place (`-E offset`), then the partition
    table (after mkfs, which may zero the sectors it starts on)."""
    box.raw.unlink(missing_ok=True)
    size = DISK_GIB << 30
    run(["truncate", "-s", str(size), str(box.raw)], step="distro box: disk", timeout=30, log=box.log)
    conf = box.dir / "mke2fs.conf"
    conf.write_text(MKE2FS_CONF)
    part_kib = (size - PART_START * SECTOR) // 1024
    run(["mkfs.ext4", "-q", "-F", "-L", "root", "-U", uuid, "-E", f"offset={PART_START * SECTOR}",
         "-d", str(box.rootfs), str(box.raw), f"{part_kib}k"], step="distro box: mkfs", timeout=1200, log=box.log,
        env=dict(os.environ, MKE2FS_CONFIG=str(conf)))
    with box.raw.open("r+b") as f:
        f.seek(440)
        f.write(partition_table(size, int(uuid[:8], 16)))


def install_bootloader(box: DistroBox, uuid: str, release: str) -> None:
    """grub-install into the MBR and update-grub, run by the box's own GRUB in a chroot of the disk's root
    filesystem; then check what they wrote (copied out to box.dir/out)."""
    out = box.dir / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    installed = in_disk(box, uuid, [
        'chroot "$root" grub-install --verbose --target=i386-pc "--modules=part_msdos ext2" "$disk"',
        'chroot "$root" update-grub',
        f'cp "$root/boot/grub/grub.cfg" "$root/boot/grub/i386-pc/core.img" {shlex.quote(str(out))}/'],
        step="distro box: bootloader", timeout=1200)
    with box.raw.open("rb") as f:
        head = f.read(PART_START * SECTOR)
    problems = bootloader_problems(head, (out / "core.img").read_bytes(),
                                   grub_prefix(installed.stdout + installed.stderr), (out / "grub.cfg").read_text(),
                                   uuid, release)
    if problems:
        raise LabError("distro box: bootloader", "; ".join(problems), box.log)


def in_disk(box: DistroBox, uuid: str, commands: list[str], *, step: str, timeout: float,
            env: dict | None = None):
    """Run shell `commands` against the raw disk's root filesystem (`$root`, the disk's device `$disk`): the disk
    attached as a loop device with its partition, mounted only inside a mount namespace of the command's own
    (chroot_script). The loop device is released whatever happens, and checked to be gone."""
    with attached(box) as (disk, part):
        nodes = []
        for path in (disk, part, *DEV_NODES):
            st = os.stat(path)
            nodes.append((Path(path).name, "b" if stat.S_ISBLK(st.st_mode) else "c", os.major(st.st_rdev),
                          os.minor(st.st_rdev)))
        script = f"disk={shlex.quote(disk)}\n" + chroot_script(box.mnt, part, nodes, uuid, commands)
        box.mnt.mkdir(exist_ok=True)
        done = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], step=step,
                   timeout=timeout, log=box.log, env={**CHROOT_ENV, **(env or {})})
    left = attached_to(box)
    if left:
        raise LabError(step, f"{', '.join(left)} still attached to {box.raw} (something holds its partition; "
                             f"`partx --delete` and `losetup --detach` it once it is free)", box.log)
    return done


@contextlib.contextmanager
def attached(box: DistroBox):
    """The raw disk as a loop device with its partition (added with partx: this kernel does not scan loop
    devices' partition tables itself); both released on the way out."""
    disk = run(["losetup", "--find", "--show", str(box.raw)], step="distro box: losetup", timeout=60,
               log=box.log).stdout.strip()
    try:
        run(["partx", "--add", disk], step="distro box: partx", timeout=60, log=box.log)
        part = f"{disk}p1"
        deadline = time.monotonic() + 10
        while not Path(part).exists():
            if time.monotonic() > deadline:
                raise LabError("distro box: partition", f"{part} did not appear", box.log)
            time.sleep(0.1)
        yield disk, part
    finally:
        detach(disk, box.log)


def detach(disk: str, log: Path, timeout: float = 30) -> None:
    """The partition first, then the device: detached while it still has a partition added by partx, a loop
    device only marks itself to be cleared, and stays. A partition whose filesystem was just unmounted (its
    namespace just ended) can be busy for a moment, so its removal is retried."""
    name = Path(disk).name
    deadline = time.monotonic() + timeout
    while (Path("/sys/block") / name / f"{name}p1").exists():
        cp = run(["partx", "--delete", disk], step="distro box: partx --delete", timeout=60, log=log, check=False)
        if cp.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    run(["losetup", "--detach", disk], step="distro box: losetup --detach", timeout=60, log=log, check=False)


def attached_to(box: DistroBox) -> list[str]:
    """The loop devices backed by the box's raw disk."""
    if not box.raw.exists():
        return []
    return loop_devices(run(["losetup", "--associated", str(box.raw)], step="distro box: losetup --associated",
                            timeout=60, log=box.log, check=False).stdout)


def release_leftovers(box: DistroBox) -> None:
    """What a build killed mid-bootloader left: loop devices on its disk (its mounts died with their namespace)."""
    for disk in attached_to(box):
        detach(disk, box.log)


def package(box: DistroBox) -> None:
    """qcow2 (uncompressed: vagrant-libvirt uploads it as the base volume, and TCG reads it faster), the metadata
    and Vagrantfile, in a tar written under a temporary name: only a whole box is ever at box.file."""
    image = box.dir / "box.img"
    run(["qemu-img", "convert", "-O", "qcow2", str(box.raw), str(image)], step="distro box: qcow2",
        timeout=1200, log=box.log)
    box.raw.unlink()
    (box.dir / "metadata.json").write_text(json.dumps(metadata()) + "\n")
    (box.dir / "Vagrantfile").write_text(BOX_VAGRANTFILE)
    box.file.parent.mkdir(parents=True, exist_ok=True)
    part = box.file.with_name(f".{box.file.name}.{os.getpid()}.part")
    try:
        with tarfile.open(part, "w") as tar:
            for name in ("metadata.json", "Vagrantfile", "box.img"):
                tar.add(box.dir / name, arcname=name)
        part.replace(box.file)
    finally:
        part.unlink(missing_ok=True)
    image.unlink()


# ---- the provisioner on the built box, without a VM ---------------------------------------------------------------

#: the row that pins a kernel over this box's own (its kernel_package and suite are what --check-provision installs)
SPEC = Path(__file__).resolve().parent.parent / "matrices" / "kernels" / "debian-11-box.yaml"


def check_provision(home: LabHome, box: DistroBox, progress=lambda msg: None) -> str:
    """Run the box row's provisioning script (lab/templates/provision-debian.sh.j2, as lab/distro.py renders it)
    in a chroot of a copy of the box's disk, with the package the host fetched where Vagrant would upload it, and
    check that GRUB would boot the pinned kernel next: everything of the box path but the VM and its reboot.
    Returns the release; LabError with what is wrong. The copy, its loop device and mounts are gone afterwards."""
    from lab import distro
    from lab.spec import load_kernel
    src = load_kernel(SPEC).source
    package = src["kernel_package"]
    release = distro.family_of(package).release(package)
    progress(f"check: fetching {package} from Debian {src['suite']}")
    packages = boxsource.fetch_package(home, src["suite"], package)
    work = DistroBox(box.dir / "check", box.file)
    release_leftovers(work)
    shutil.rmtree(work.dir, ignore_errors=True)
    work.dir.mkdir(parents=True)
    uuid = fs_uuid()
    try:
        progress(f"check: a copy of {box.file.name}'s disk")
        with tarfile.open(box.file) as tar, tar.extractfile("box.img") as image, \
                (work.dir / "box.img").open("wb") as copy:   # by name: no path from the archive is used
            shutil.copyfileobj(image, copy, 1 << 20)
        run(["qemu-img", "convert", "-O", "raw", str(work.dir / "box.img"), str(work.raw)],
            step="check: raw copy", timeout=1200, log=work.log)
        (work.dir / "box.img").unlink()
        progress(f"check: provisioning {release} in a chroot (the kernel's postinst builds its initramfs)")
        script = work.dir / "nfslab-provision.sh"
        script.write_text(distro.provision_script(package, "ssh-ed25519 AAAAcheck nfslab-check"))
        out = work.dir / "out"
        out.mkdir()
        q = shlex.quote
        in_disk(work, uuid, [f'cp -r {q(str(packages))} "$root{distro.GUEST_PACKAGES}"',
                             f'cp {q(str(script))} "$root/tmp/nfslab-provision.sh"',
                             'chroot "$root" sh /tmp/nfslab-provision.sh',
                             f'cp "$root/boot/grub/grub.cfg" {q(str(out))}/',
                             f'ls -1 "$root/boot" > {q(str(out))}/boot'],
                step="check: provision", timeout=3600, env={"HOME": "/root"})
        problems = provisioned_problems((out / "grub.cfg").read_text(), (out / "boot").read_text().split(), uuid,
                                        release)
        if problems:
            raise LabError("check: provisioned box", "; ".join(problems), work.log)
    finally:
        if not attached_to(work):                        # else kept, so the next check finds and releases it
            work.raw.unlink(missing_ok=True)
    progress(f"check: GRUB boots {release} next (log: {work.log})")
    return release


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=f"Build (or find cached) {NAME} {VERSION}, a distribution-style "
                                                 f"Debian 11 box for the box source kind.")
    parser.add_argument("--print-name", action="store_true", help="print the box file and whether it is built")
    parser.add_argument("--add", action="store_true",
                        help=f"also add it to the lab's Vagrant home as {NAME} {VERSION} (lab run does it too)")
    parser.add_argument("--check-provision", action="store_true",
                        help="also run debian-11-box's provisioner in a chroot of a copy of the box's disk (no VM)")
    args = parser.parse_args(argv)
    home = LabHome.default()
    if args.print_name:
        box = cached(home)
        print(f"{home.boxes / FILE} {'built' if box else 'not built'}")
        return 0
    if os.geteuid() != 0:
        print("distro_box: needs root (debootstrap, chroot, losetup, mount)", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        box = ensure(home, progress=lambda msg: print(f"[{time.monotonic() - started:6.1f}s] {msg}", flush=True))
        if args.add:
            boxsource.add_box(home, NAME, VERSION, box.file, box.log)
        if args.check_provision:
            check_provision(home, box, progress=lambda msg: print(f"[{time.monotonic() - started:6.1f}s] {msg}",
                                                                  flush=True))
    except LabError as e:
        print(f"distro_box: {e}", file=sys.stderr)
        return 3
    size = box.file.stat().st_size
    print(f"{NAME} {VERSION}: {box.file} ({size / 2**20:.0f} MiB), {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
