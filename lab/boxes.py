"""The lab's Vagrant box: Debian bookworm from debootstrap, booting without systemd, cached by a hash of its inputs.

Vagrant Cloud is unreachable here, and a stock systemd box needs ~2 min to bring 3 VMs up under TCG; this box
(busybox init → sshd before DHCP, no udev, tiny initramfs) needs ~25 s (docs/performance.md has the figures).
The box carries no kernel of its own in its metadata: the topology boots a kernel *file* directly (libvirt
kernel/initrd/cmdline), so changing the kernel under test never rebuilds an image.

Build steps, each logged under NFSLAB_HOME/boxes/<hash>/build.log:
debootstrap → customize (guest/ files, lab ssh key) → ext4 image → qcow2 → .box → `vagrant box add`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .errors import LabError
from .initrd import BOOT_MODULES, build_initrd
from .paths import PREFIX, LabHome
from .proc import run
from .progress import LatestLine, Phases
from .readers import build_inputs as reader_build_inputs, compile_argv, own as own_readers

SUITE = "bookworm"
PACKAGES = ("openssh-server", "sudo", "nfs-kernel-server", "nfs-common", "linux-image-cloud-amd64", "kmod",
            "procps", "busybox", "iproute2", "psmisc", "git",
            "strace")   # alice's traced reads (lab/syscalls.py)
#: bumped when the build steps change in a way the hashed inputs do not show
RECIPE_VERSION = "3"
GUEST = Path(__file__).parent / "guest"
IMAGE_SIZE = "3G"


@dataclass(frozen=True)
class Box:
    """A built box: the Vagrant name plus the files the kernel layer reuses (rootfs for modules, vmlinuz)."""

    name: str
    dir: Path

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs"

    @property
    def log(self) -> Path:
        return self.dir / "build.log"


def ensure_ssh_key(home: LabHome) -> Path:
    """The lab's own key pair (0600), generated once: guests trust it instead of Vagrant's public insecure key."""
    key = home.ssh_key
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nfslab", "-f", str(key)], step="ssh key",
            timeout=30)
    key.chmod(0o600)
    return key


def mirror() -> str:
    """The Debian mirror the host's apt already uses (only Debian's registry is reachable here), unless
    NFSLAB_DEBIAN_MIRROR names another (NFSLAB_MIRROR is the kernel tarballs' mirror: lab/tarballs.py)."""
    if os.environ.get("NFSLAB_DEBIAN_MIRROR"):
        return os.environ["NFSLAB_DEBIAN_MIRROR"]
    for src in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in src.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    return "http://deb.debian.org/debian"


def box_inputs(home: LabHome) -> dict:
    """Everything the box's content depends on; its hash names the box."""
    return {
        "recipe": RECIPE_VERSION,
        "suite": SUITE,
        "packages": sorted(PACKAGES),
        "initrd_modules": list(BOOT_MODULES),
        # the files baked into the box (a .j2 is skipped: the templates live in lab/templates/)
        "guest": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(GUEST.iterdir())
                  if p.is_file() and not p.name.endswith(".j2")},
        # nfslab's own readers: their source is hashed above with guest/, their compile lines here
        "readers": reader_build_inputs(),
        "ssh_pub": ensure_ssh_key(home).with_suffix(".pub").read_text().strip(),
    }


def box_name(home: LabHome) -> str:
    digest = hashlib.sha256(json.dumps(box_inputs(home), sort_keys=True).encode()).hexdigest()[:12]
    return f"{PREFIX}-bookworm-{digest}"


def vagrant_env(home: LabHome) -> dict:
    return dict(os.environ, VAGRANT_HOME=str(home.vagrant_home), VAGRANT_CHECKPOINT_DISABLE="1",
                VAGRANT_DEFAULT_PROVIDER="libvirt")


def is_registered(home: LabHome, name: str) -> bool:
    return (home.vagrant_home / "boxes" / name).is_dir()


def ensure_box(home: LabHome, progress=lambda msg: None) -> Box:
    """Return the lab box, building it first if its inputs changed (≈ 90 s cold, 0 s when cached)."""
    home.ensure()
    name = box_name(home)
    box = Box(name, home.boxes / name)
    if is_registered(home, name) and (box.dir / "done").exists():
        return box
    box.dir.mkdir(parents=True, exist_ok=True)
    box.log.write_text("")
    phase = Phases(progress)
    if not (box.rootfs / "usr/sbin/sshd").exists():
        phase("debootstrap", f"box: debootstrap {SUITE} (about a minute)")
        debootstrap(box, follow=LatestLine("box: debootstrap", progress, keep=lambda line: line.startswith("I: "))
                    .follow)
    phase("customize", "box: customizing the root filesystem")
    customize(box, home)
    phase("image", "box: building the initramfs and the disk image")
    build_initrd(box.rootfs / "lib/modules" / kernel_release(box.rootfs), box.dir / "initrd")
    make_image(box)
    phase("register", f"box: registering Vagrant box {name}")
    register(box, home)
    (box.dir / "done").write_text(json.dumps(box_inputs(home), indent=1))
    phase.end(f"box {name} built")
    return box


def debootstrap(box: Box, packages: tuple[str, ...] = PACKAGES, step: str = "box: debootstrap",
                timeout: float = 1200, follow=None, suite: str = SUITE) -> None:
    """Into a temporary directory first: an interrupted debootstrap never looks like a finished root filesystem.
    `follow` sees debootstrap's lines as they come (lab/proc.py run)."""
    tmp = box.dir / "rootfs.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, str(tmp), mirror()],
        step=step, timeout=timeout, log=box.log, follow=follow)
    shutil.rmtree(box.rootfs, ignore_errors=True)
    tmp.rename(box.rootfs)


def _install(src: str, dest: Path, mode: int = 0o755) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(GUEST / src, dest)
    dest.chmod(mode)


def customize(box: Box, home: LabHome) -> None:
    """Make the debootstrapped tree a lab guest: lab-init, the lab key for vagrant and root, no machine-id."""
    r = box.rootfs
    _install("lab-init", r / "sbin/lab-init")
    _install("lab-rc", r / "etc/lab-rc")
    _install("inittab", r / "etc/inittab", 0o644)
    _install("udhcpc.script", r / "etc/nfslab/udhcpc.script")
    _install("shutdown", r / "usr/local/sbin/shutdown")
    _install("acpi-power", r / "etc/acpi/PWRF/00000080")
    for reader in own_readers():   # static, so the guest's libc does not matter
        binary = r / reader.binary
        binary.parent.mkdir(parents=True, exist_ok=True)
        run(compile_argv(reader, binary), step=f"box: compile reader {reader.name}", timeout=120, log=box.log)
        binary.chmod(0o755)
    (r / "etc/hostname").write_text("lab\n")
    (r / "etc/hosts").write_text("127.0.0.1 localhost\n")
    (r / "etc/fstab").write_text("/dev/vda / ext4 rw,noatime 0 1\n")
    # vagrant-libvirt #913/#1737: a baked-in machine-id gives every VM the same DHCP lease
    (r / "etc/machine-id").write_text("")
    (r / "etc/ssh/sshd_config.d/nfslab.conf").write_text(
        "UseDNS no\nGSSAPIAuthentication no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n")
    run(["chroot", str(r), "sh", "-c", "id vagrant >/dev/null 2>&1 || useradd -m -s /bin/bash vagrant"],
        step="box: vagrant user", timeout=60, log=box.log)
    (r / "etc/sudoers.d/vagrant").write_text("vagrant ALL=(ALL) NOPASSWD:ALL\n")
    (r / "etc/sudoers.d/vagrant").chmod(0o440)
    pub = home.ssh_key.with_suffix(".pub").read_text()
    for user_home, uid in ((r / "home/vagrant", user_id(r, "vagrant")), (r / "root", 0)):
        ssh = user_home / ".ssh"
        ssh.mkdir(parents=True, exist_ok=True)
        (ssh / "authorized_keys").write_text(pub)
        for p in (ssh, ssh / "authorized_keys"):
            os.chown(p, uid, uid)
        ssh.chmod(0o700)
        (ssh / "authorized_keys").chmod(0o600)
    run(["chroot", str(r), "apt-get", "clean"], step="box: apt clean", timeout=60, log=box.log)
    shutil.rmtree(r / "var/lib/apt/lists", ignore_errors=True)
    (r / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)


def user_id(rootfs: Path, user: str) -> int:
    """A user's uid in a root filesystem's /etc/passwd (the box's `vagrant`; bench/stock_box.py's too)."""
    for line in (rootfs / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2])
    raise LabError("box: vagrant user", f"user {user} missing in {rootfs}/etc/passwd")


def kernel_release(rootfs: Path) -> str:
    releases = sorted(p.name for p in (rootfs / "lib/modules").iterdir())
    if not releases:
        raise LabError("box: kernel", f"no kernel modules under {rootfs}/lib/modules")
    return releases[-1]


def make_image(box: Box) -> None:
    """ext4 straight from the tree (`mkfs.ext4 -d`), uncompressed qcow2: 5 s faster to build and to boot."""
    raw = box.dir / "root.raw"
    raw.unlink(missing_ok=True)
    run(["truncate", "-s", IMAGE_SIZE, str(raw)], step="box: image", timeout=30, log=box.log)
    run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(box.rootfs), str(raw)], step="box: mkfs", timeout=600,
        log=box.log)
    run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(box.dir / "box.img")], step="box: qcow2",
        timeout=600, log=box.log)
    raw.unlink()
    release = kernel_release(box.rootfs)
    shutil.copyfile(box.rootfs / "boot" / f"vmlinuz-{release}", box.dir / "vmlinuz")
    (box.dir / "vmlinuz").chmod(0o644)
    (box.dir / "release").write_text(release + "\n")


def register(box: Box, home: LabHome) -> None:
    (box.dir / "metadata.json").write_text(json.dumps({"provider": "libvirt", "format": "qcow2",
                                                       "virtual_size": int(IMAGE_SIZE.rstrip("G"))}))
    # box defaults only: the topology's Vagrantfile sets kernel, initrd, cmdline and the accelerator
    (box.dir / "Vagrantfile").write_text('Vagrant.configure("2") do |config|\nend\n')
    archive = box.dir / f"{box.name}.box"
    with tarfile.open(archive, "w") as tar:
        for name in ("metadata.json", "Vagrantfile", "box.img"):
            tar.add(box.dir / name, arcname=name)
    run(["vagrant", "box", "add", "--force", "--name", box.name, str(archive)], step="box: vagrant box add",
        timeout=600, log=box.log, env=vagrant_env(home))
    archive.unlink()
    (box.dir / "box.img").unlink()  # vagrant keeps its own copy


def prune_stale(home: LabHome) -> list[str]:
    """Boxes whose inputs changed since (an older box hash): their Vagrant registration and build dir go."""
    if not home.ssh_key.exists():
        return []
    current = box_name(home)
    removed = []
    for parent in (home.vagrant_home / "boxes", home.boxes):
        for d in sorted(parent.glob(f"{PREFIX}-{SUITE}-*")) if parent.is_dir() else []:
            if d.name != current:
                shutil.rmtree(d, ignore_errors=True)
                removed.append(f"stale box {d.name}")
    return sorted(set(removed))
