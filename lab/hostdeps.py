"""What the lab needs on its host, and the Debian package that brings each piece: the one map of it.

Grouped by what needs it, so a host is checked for what it will do: every run needs the lab host and the lab box;
a matrix with `capture: on` needs the capture tools; each kernel source kind needs its own (a Debian kernel package,
a module rebuild, a full kernel build). `lab setup` installs every group, `lab doctor` reports them group by group,
and `lab run` checks the groups of the rows it is about to run before it creates anything.

An entry is a command (found on PATH, as the lab's subprocesses will look for it) or an absolute path (a header, a
keyring, a Vagrant plugin: a glob that must match a file). tests/unit/test_hostdeps.py reads every command lab/ and
bench/ run and fails when one is not in this map.
"""
from __future__ import annotations

import glob
import shutil
from dataclasses import dataclass

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
VAGRANT_LIBVIRT = "/usr/share/rubygems-integration/all/specifications/vagrant-libvirt-*.gemspec"


@dataclass(frozen=True)
class Group:
    """What one part of the lab needs: entry (command or absolute path) → Debian package."""

    name: str
    used_by: str
    needs: dict[str, str]

    def missing(self) -> dict[str, str]:
        """The entries that are not here, with their packages, in the map's order."""
        return {what: package for what, package in self.needs.items() if not present(what)}


#: commands the lab copies into the guests' initramfs, where only a statically linked one runs
STATIC = {"busybox"}


def present(what: str) -> bool:
    if what.startswith("/"):
        return bool(glob.glob(what))
    path = shutil.which(what)
    return path is not None and (what not in STATIC or statically_linked(path))


def statically_linked(path: str) -> bool:
    """An x86-64 ELF executable that names no program interpreter (no PT_INTERP): Debian's `busybox` is dynamic,
    `busybox-static` is not, and both install /bin/busybox."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4:6] != b"\x02\x01":   # 64-bit, little-endian
                return False
            offset, size, count = (int.from_bytes(head[a:b], "little") for a, b in ((32, 40), (54, 56), (56, 58)))
            f.seek(offset)
            table = f.read(size * count)
    except OSError:
        return False
    return size > 0 and all(int.from_bytes(table[i:i + 4], "little") != 3 for i in range(0, len(table), size))


LAB_HOST = Group("lab host", "every `lab run`: the namespace, libvirtd, QEMU and Vagrant", {
    "ip": "iproute2", "unshare": "util-linux", "mount": "mount", "sh": "dash",
    "virsh": "libvirt-clients", "libvirtd": "libvirt-daemon-system", "virtlogd": "libvirt-daemon-system",
    "qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils",
    "vagrant": "vagrant", VAGRANT_LIBVIRT: "vagrant-libvirt",
    # libvirt's own helpers for the lab's networks
    "dnsmasq": "dnsmasq-base", "iptables": "iptables", "ebtables": "ebtables",
    # `lab ssh` into a kept topology
    "ssh": "openssh-client",
})
LAB_BOX = Group("lab box", "`lab setup`, `lab box build` and every run: debootstrap → ext4 → qcow2, initramfs", {
    "debootstrap": "debootstrap", KEYRING: "debian-archive-keyring", "chroot": "coreutils",
    "truncate": "coreutils", "mkfs.ext4": "e2fsprogs", "qemu-img": "qemu-utils", "ssh-keygen": "openssh-client",
    "vagrant": "vagrant",
    # the initramfs: busybox is copied into it, so it must be the static one
    "busybox": "busybox-static", "cpio": "cpio", "gzip": "gzip", "find": "findutils", "depmod": "kmod",
    "xz": "xz-utils", "zstd": "zstd",
    # nfslab's own readers (lab/readers.py), compiled static into the box: gcc and glibc's static archive
    "gcc": "gcc", "/usr/lib/*/libc.a": "libc6-dev",
})
CAPTURE = Group("capture", "matrices with `capture: on` (the default one): dumpcap records, tshark decodes", {
    "dumpcap": "tshark", "tshark": "tshark",
})
DEB = Group("deb kernel", "`deb` rows, and the headers and sources of module builds: fetched with a private apt", {
    "apt-get": "apt", "apt-cache": "apt", KEYRING: "debian-archive-keyring", "dpkg-deb": "dpkg",
    "depmod": "kmod", "busybox": "busybox-static", "cpio": "cpio", "gzip": "gzip", "find": "findutils",
    "xz": "xz-utils", "zstd": "zstd",
})
MODULE_BUILD = Group("module build", "`build` rows with `scope: module:fs/nfs`: fs/nfs against Debian's headers", {
    "make": "make", "gcc-12": "gcc-12", "ccache": "ccache", "patch": "patch", "sh": "dash", "tar": "tar",
    "xz": "xz-utils", "git": "git", "find": "findutils", "sort": "coreutils", "cp": "coreutils",
    "/usr/include/stdio.h": "libc6-dev",
})
FULL_BUILD = Group("full build", "`build` rows with `scope: full`: a bzImage from a kernel tree", {
    "make": "make", "gcc": "gcc", "ccache": "ccache", "bison": "bison", "flex": "flex", "bc": "bc",
    "patch": "patch", "sh": "dash", "tar": "tar", "xz": "xz-utils", "git": "git", "find": "findutils",
    "sort": "coreutils", "cp": "coreutils", "/usr/include/stdio.h": "libc6-dev",
    "/usr/include/gelf.h": "libelf-dev", "/usr/include/openssl/ssl.h": "libssl-dev",
})
BOX_ROW = Group("distribution box", "`box` rows: the box added to Vagrant, the kernel package fetched with apt", {
    "vagrant": "vagrant", "apt-get": "apt", "apt-cache": "apt", KEYRING: "debian-archive-keyring",
})
DISTRO_BOX = Group("distribution box build", "bench/distro_box.py: debian-11-box's box, a disk with GRUB, built here", {
    "debootstrap": "debootstrap", KEYRING: "debian-archive-keyring", "chroot": "coreutils", "truncate": "coreutils",
    "mkfs.ext4": "e2fsprogs", "qemu-img": "qemu-utils",
    # grub-install needs the disk as a block device: a loop device, its partition added with partx, mounted in
    # a mount namespace of its own with a private /dev
    "losetup": "mount", "partx": "util-linux", "unshare": "util-linux", "mount": "mount", "mknod": "coreutils",
    "mkdir": "coreutils", "ln": "coreutils", "cp": "coreutils", "ls": "coreutils", "sh": "dash",
})
BENCH = Group("benchmarks", "bench/: the stock-box baseline (ssh as Vagrant's user), the 4.19.1 bisect history", {
    "ssh": "openssh-client", "git": "git", "tar": "tar", "chroot": "coreutils",
})
REMOTE_HOST = Group("remote host", "lab/remotehost.py: a second lab host on this machine (sshd + libvirtd in a "
                    "namespace), what `--libvirt-uri qemu+ssh://…` is tested against", {
    "sshd": "openssh-server", "ssh": "openssh-client", "ssh-keygen": "openssh-client", "ip": "iproute2",
    "unshare": "util-linux", "mount": "mount", "mkdir": "coreutils", "sh": "dash", "ps": "procps",
    "virsh": "libvirt-clients",
    "libvirtd": "libvirt-daemon-system", "virtlogd": "libvirt-daemon-system",
    "virt-ssh-helper": "libvirt-daemon",
})
GROUPS = (LAB_HOST, LAB_BOX, CAPTURE, DEB, MODULE_BUILD, FULL_BUILD, BOX_ROW, DISTRO_BOX, BENCH, REMOTE_HOST)


def commands(groups=GROUPS) -> list[str]:
    """The commands (not files) of these groups, once each."""
    return list(dict.fromkeys(what for group in groups for what in group.needs if not what.startswith("/")))


def kernel_groups(source_kind: str, scope: str | None = None) -> tuple[Group, ...]:
    """What a kernel of this source kind needs beyond every run's groups."""
    if source_kind == "deb":
        return (DEB,)
    if source_kind == "box":
        return (BOX_ROW,)
    if source_kind == "build":
        return (DEB, MODULE_BUILD) if scope == "module:fs/nfs" else (FULL_BUILD,)
    return ()


def kind_label(source_kind: str, scope: str | None = None) -> str:
    """The source kind as `lab doctor` and the error of `lab run` name it."""
    if source_kind == "build":
        return "module build" if scope == "module:fs/nfs" else "full build"
    return {"deb": "deb kernel", "image": "kernel image", "box": "distribution box"}.get(source_kind, source_kind)


def packages(groups=GROUPS) -> list[str]:
    """Every package of these groups, sorted (what `lab setup` would install on an empty host)."""
    return sorted({package for group in groups for package in group.needs.values()})


def missing_packages(groups=GROUPS) -> list[str]:
    """The packages of what is missing from these groups, sorted (what `lab setup` installs)."""
    return sorted({package for group in groups for package in group.missing().values()})


def install_hint(packages_: list[str]) -> str:
    return f"`apt-get install {' '.join(packages_)}`"
