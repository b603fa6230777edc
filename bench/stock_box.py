"""The benchmark's baseline: a stock systemd Debian box brought up with Vagrant's default settings.

Vagrant Cloud is unreachable here, so the box is built locally, the way a stock box is made: debootstrap
bookworm with systemd, udev, ifupdown and isc-dhcp-client, a `vagrant` user that trusts Vagrant's public insecure
key, password-less sudo, DHCP on eth0. No tuning: systemd boots it, initramfs-tools makes its initrd, the kernel
command line is the plain one.

One difference from a Vagrant Cloud box, printed with every result: the box has no bootloader. Its own kernel and
initramfs-tools initrd are booted through libvirt's kernel boot (as the first measured baseline did), which
skips the BIOS and bootloader a real stock box goes through, so the baseline is, if anything, slightly fast.

The box is cached by a hash of its inputs under NFSLAB_HOME/bench/boxes/<name>/, like lab/boxes.py caches the
lab's box, and registered in the lab's own VAGRANT_HOME so the lab's Host (namespace, libvirtd, pool) runs it.

    python bench/stock_box.py            # build it (≈ 2–3 min of debootstrap the first time), or say it is cached
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):                       # run as a script: python bench/stock_box.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import topology
from lab.boxes import Box, debootstrap, is_registered, make_image, register, user_id
from lab.distro import INSECURE_KEY
from lab.errors import LabError
from lab.paths import PREFIX, LabHome
from lab.proc import run

SUITE = "bookworm"
#: a stock Debian cloud box's packages, less busybox (a stock box has none)
PACKAGES = ("systemd-sysv", "udev", "ifupdown", "isc-dhcp-client", "openssh-server", "sudo",
            "linux-image-cloud-amd64", "initramfs-tools", "nfs-kernel-server", "nfs-common", "iproute2", "kmod",
            "procps")
#: the stock box's kernel command line: no tuning (no quiet, no mitigations=off, no init=)
CMDLINE = "root=/dev/vda rw console=ttyS0 net.ifnames=0"
#: bumped when the build steps change in a way the hashed inputs do not show
RECIPE_VERSION = "1"
TEMPLATE = Path(__file__).resolve().parent / "Vagrantfile.stock.j2"
#: a stock box comes up in ~2 min here; give Vagrant room under load
BOOT_TIMEOUT = 600
HOSTNAME = "bookworm"


@dataclass(frozen=True)
class StockBox:
    name: str
    dir: Path

    @property
    def box(self) -> Box:
        """The same shape as the lab's box, so lab.boxes.make_image/register work on it unchanged."""
        return Box(self.name, self.dir)

    @property
    def vmlinuz(self) -> Path:
        return self.dir / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.dir / "initrd"

    @property
    def release(self) -> str:
        return (self.dir / "release").read_text().strip()

    @property
    def log(self) -> Path:
        return self.dir / "build.log"

    def kernel_files(self) -> topology.KernelFiles:
        return topology.KernelFiles(self.vmlinuz, self.initrd, self.release)


def bench_dir(home: LabHome) -> Path:
    return home.root / "bench"


def insecure_public_key() -> str:
    return INSECURE_KEY.with_suffix(".pub").read_text().strip()


def box_inputs() -> dict:
    return {"recipe": RECIPE_VERSION, "suite": SUITE, "packages": sorted(PACKAGES), "cmdline": CMDLINE,
            "hostname": HOSTNAME, "insecure_pub": insecure_public_key()}


def box_name() -> str:
    """`nfslab-stock-bookworm-<hash>`: outside `lab clean`'s pattern for stale lab boxes (nfslab-bookworm-*)."""
    digest = hashlib.sha256(json.dumps(box_inputs(), sort_keys=True).encode()).hexdigest()[:12]
    return f"{PREFIX}-stock-{SUITE}-{digest}"


def cached(home: LabHome) -> StockBox | None:
    """The built box if it exists for the current inputs (no side effects: safe in a dry run)."""
    box = StockBox(box_name(), bench_dir(home) / "boxes" / box_name())
    return box if is_registered(home, box.name) and (box.dir / "done").exists() else None


def ensure(home: LabHome, progress=lambda msg: None) -> StockBox:
    """The stock box, built first if its inputs changed (≈ 2–3 min cold, 0 s cached)."""
    home.ensure()
    box = cached(home)
    if box is not None:
        return box
    box = StockBox(box_name(), bench_dir(home) / "boxes" / box_name())
    box.dir.mkdir(parents=True, exist_ok=True)
    for d in (bench_dir(home), box.dir.parent, box.dir):
        d.chmod(0o755)                                   # qemu (libvirt-qemu) reads vmlinuz and initrd from here
    box.log.write_text("")
    rootfs = box.box.rootfs
    if not (rootfs / "usr/sbin/sshd").exists():
        progress(f"stock box: debootstrap {SUITE} with systemd (a few minutes)")
        debootstrap(box.box, tuple(PACKAGES), step="stock box: debootstrap", timeout=1800)
    progress("stock box: vagrant user, insecure key, DHCP on eth0")
    customize(rootfs)
    progress("stock box: disk image (ext4 → qcow2) and its initramfs-tools initrd")
    make_image(box.box)                                  # also copies vmlinuz and writes release
    release = box.release
    initrd = rootfs / "boot" / f"initrd.img-{release}"
    if not initrd.exists():                              # debootstrap normally runs update-initramfs itself
        run(["chroot", str(rootfs), "update-initramfs", "-c", "-k", release], step="stock box: initramfs",
            timeout=600, log=box.log)
    shutil.copyfile(initrd, box.initrd)
    box.initrd.chmod(0o644)
    progress(f"stock box: registering Vagrant box {box.name}")
    register(box.box, home)
    shutil.rmtree(rootfs)                                # 370 MB; the image and the kernel files are all it needs
    (box.dir / "done").write_text(json.dumps(box_inputs(), indent=1) + "\n")
    return box


def customize(r: Path, hostname: str = HOSTNAME, root: str = "/dev/vda") -> None:
    """What makes a root filesystem a Vagrant box (user, key, sudo, DHCP), less what only the lab's no-systemd box
    needs. `root` is what fstab mounts on / (bench/distro_box.py's box has a partition, found by UUID)."""
    (r / "etc/hostname").write_text(hostname + "\n")
    (r / "etc/hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {hostname}\n")
    run(["chroot", str(r), "sh", "-c", "id vagrant >/dev/null 2>&1 || useradd -m -s /bin/bash -G sudo vagrant; "
                                       "echo vagrant:vagrant | chpasswd; echo root:vagrant | chpasswd"],
        step="stock box: vagrant user", timeout=60)
    uid = user_id(r, "vagrant")
    ssh = r / "home/vagrant/.ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    (ssh / "authorized_keys").write_text(insecure_public_key() + "\n")
    for p in (ssh, ssh / "authorized_keys"):
        os.chown(p, uid, uid)
    ssh.chmod(0o700)
    (ssh / "authorized_keys").chmod(0o600)
    (r / "etc/sudoers.d/vagrant").write_text("vagrant ALL=(ALL) NOPASSWD:ALL\n")
    (r / "etc/sudoers.d/vagrant").chmod(0o440)
    (r / "etc/network/interfaces").write_text("auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n")
    (r / "etc/fstab").write_text(f"{root} / ext4 errors=remount-ro 0 1\n")
    # what Vagrant boxes customarily set (no DNS lookup per login)
    (r / "etc/ssh/sshd_config.d/vagrant.conf").write_text("UseDNS no\nGSSAPIAuthentication no\n")
    run(["chroot", str(r), "systemctl", "enable", "serial-getty@ttyS0.service"], step="stock box: serial getty",
        timeout=60)
    # vagrant-libvirt #913/#1737: a baked-in machine-id gives every VM the same DHCP lease
    (r / "etc/machine-id").write_text("")
    run(["chroot", str(r), "apt-get", "clean"], step="stock box: apt clean", timeout=60)
    shutil.rmtree(r / "var/lib/apt/lists", ignore_errors=True)
    (r / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)


# ---- the baseline topology -----------------------------------------------------------------------------------------

def plan(*, lab_id: str, slot: int, box: str, kernel: topology.KernelFiles, driver: str = "qemu",
         netns: str = "nfslab") -> topology.Topology:
    """The lab's IP plan and names with the stock box: same three machines, same networks, same libvirt objects
    (so the lab's state files and cleanup cover it), the stock command line, QEMU's default TCG cache."""
    t = topology.plan(lab_id=lab_id, slot=slot, kernel_name="stock-box", box=box, server_kernel=kernel,
                      client_kernel=kernel, ssh_key=INSECURE_KEY, driver=driver, emulator=None, netns=netns)
    return dataclasses.replace(t, machines=tuple(dataclasses.replace(m, cmdline=CMDLINE) for m in t.machines),
                               ssh_keys=(), boot_timeout=BOOT_TIMEOUT)


def render_vagrantfile(t: topology.Topology) -> str:
    return topology.render_vagrantfile(t, TEMPLATE)


def network_xml(net: topology.Network) -> str:
    """The management network as a stock setup has it: DHCP with dnsmasq's default ping check (no `no-ping`), but
    isolated like every lab network (the network rule: nothing is forwarded out of the namespace)."""
    return (f"<network><name>{net.name}</name><bridge name='{net.bridge}' stp='off' delay='0'/>"
            f"<ip address='{net.gateway}' netmask='255.255.255.0'>"
            f"<dhcp><range start='{net.prefix}.100' end='{net.prefix}.254'/></dhcp></ip></network>")


class StockTopology(topology.LiveTopology):
    """The baseline's lifecycle is the lab's (state file first, same domain and network names, destroy_recorded),
    with the stock Vagrantfile, a management network without no-ping, and `vagrant up` with its defaults: Vagrant
    detects the guest, replaces the insecure key, sets the hostname and configures eth1 itself."""

    UP_OPTIONS = {}

    def create(self, progress=lambda msg: None) -> "StockTopology":
        self.state.set("bench_kind", "stock")           # which figure its VMs' memory belongs to
        return super().create(progress)

    def vagrantfile(self) -> str:
        return render_vagrantfile(self.topology)

    def network_definition(self, net: topology.Network, dhcp: bool) -> str:
        return network_xml(net) if net == self.topology.mgmt else super().network_definition(net, dhcp)

    def private_key(self, machine: str) -> Path:
        """The key Vagrant inserted in place of the insecure one (insert_key's default)."""
        key = self.dir / ".vagrant" / "machines" / machine / "libvirt" / "private_key"
        return key if key.exists() else INSECURE_KEY

    def ssh_argv(self, machine: str) -> list[str]:
        tgt = self.targets[machine]
        return [*self.host.netns_prefix(), "ssh", "-i", str(self.private_key(machine)), "-p", str(tgt.port),
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
                f"vagrant@{tgt.address}", "true"]

    def wait_ssh(self, machine: str, timeout: float = 120) -> float:
        """Until `ssh … true` works as Vagrant's user with Vagrant's key (how a user would check it)."""
        started = time.monotonic()
        while True:
            cp = run(self.ssh_argv(machine), step=f"stock {machine}: ssh", timeout=30, log=self.log, check=False)
            if cp.returncode == 0:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise LabError(f"stock {machine}: ssh", f"no ssh within {timeout:.0f}s", self.log)
            time.sleep(0.3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build (or find cached) the benchmark's stock systemd box.")
    parser.add_argument("--print-name", action="store_true", help="print the box name and whether it is cached")
    args = parser.parse_args(argv)
    home = LabHome.default()
    if args.print_name:
        box = cached(home)
        print(f"{box_name()} {'cached in ' + str(box.dir) if box else 'not built'}")
        return 0
    if os.geteuid() != 0:
        print("stock_box: needs root (debootstrap, chroot)", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        box = ensure(home, progress=lambda msg: print(f"[{time.monotonic() - started:6.1f}s] {msg}", flush=True))
    except LabError as e:
        print(f"stock_box: {e}", file=sys.stderr)
        return 3
    print(f"{box.name} ({box.release}) in {box.dir}, {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
