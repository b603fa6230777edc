"""A topology as a pure value: which machines, kernels, networks and addresses, and the Vagrantfile and network
XML they render to (golden-tested). Nothing here touches the host; lab/topology/live.py makes a plan exist."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import jinja2

from ..distro import GUEST_PACKAGES, INSECURE_KEY, DistroClient
from ..host import LIBVIRT_URI, POOL
from ..libvirt import LibvirtTarget
from ..paths import PREFIX, VAGRANTFILE_TEMPLATE
from ..timeouts import Timeouts

SERVER, ALICE, BOB = "server", "alice", "bob"
#: last octet of each machine on the NFS network (one place for the IP plan)
HOST_OCTET = {SERVER: 10, ALICE: 11, BOB: 12}
#: each concurrent topology gets a slot; the slot picks its two /24s (only inside the lab namespace)
MAX_SLOTS = 50
BASE_CMDLINE = ("root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet loglevel=3 mitigations=off nowatchdog "
                "audit=0 8250.nr_uarts=1 init=/sbin/lab-init")
SNAPSHOT = "booted"


@dataclass(frozen=True)
class KernelFiles:
    """A bootable kernel as files (direct kernel boot): no image rebuild to change the kernel under test."""

    vmlinuz: Path
    initrd: Path | None
    release: str
    cmdline: str = ""          # extra kernel arguments this kernel needs
    nfs_modules: str = ""      # where the NFS client modules must load from ("updates" for rebuilt ones)


@dataclass(frozen=True)
class Network:
    name: str
    bridge: str
    cidr: str                  # e.g. 192.168.200.0/24

    @property
    def prefix(self) -> str:
        return self.cidr.rsplit(".", 1)[0]

    @property
    def gateway(self) -> str:
        return f"{self.prefix}.1"


@dataclass(frozen=True)
class Machine:
    """One VM. Lab-box machines boot a kernel file; a distribution client (`box` set) boots its own disk after
    `provision` installed the pinned kernel, and Vagrant configures its NFS address (it has no lab-init)."""

    name: str
    nfs_ip: str
    kernel: Path | None
    initrd: Path | None
    cmdline: str
    memory: int = 512
    box: str | None = None
    box_version: str | None = None
    provision: str | None = None
    packages: Path | None = None    # the host's directory Vagrant uploads before `provision` runs


@dataclass(frozen=True)
class Topology:
    """Everything Vagrantfile.j2 needs, as one value (golden-tested)."""

    lab_id: str
    kernel_name: str
    box: str
    machines: tuple[Machine, ...]
    mgmt: Network
    nfs: Network
    ssh_keys: tuple[Path, ...]   # the lab's key; distribution boxes first accept only Vagrant's public one
    driver: str = "qemu"
    emulator: Path | None = None
    netns: str = "nfslab"      # where vagrant runs ("" for a remote libvirt reached from this machine's namespace)
    uri: str = LIBVIRT_URI
    proxy_command: str | None = None   # a remote libvirt: Vagrant's ssh to the VMs goes through its host
    pool: str = POOL
    boot_timeout: int = round(Timeouts.boot)   # Vagrant's config.vm.boot_timeout, whole seconds

    @property
    def domain_prefix(self) -> str:
        return f"{PREFIX}-{self.lab_id}-"

    def domain(self, machine: str) -> str:
        return self.domain_prefix + machine

    @property
    def provisioned(self) -> list[str]:
        """Machines that need `vagrant up --provision` and a reload into their new kernel."""
        return [m.name for m in self.machines if m.provision]

    @property
    def domains(self) -> list[str]:
        return [self.domain(m.name) for m in self.machines]

    def machine(self, name: str) -> Machine:
        return next(m for m in self.machines if m.name == name)


def networks_for_slot(lab_id: str, slot: int) -> tuple[Network, Network]:
    return (Network(f"{PREFIX}-{lab_id}-mgmt", f"nfl{slot}m", f"192.168.{100 + slot}.0/24"),
            Network(f"{PREFIX}-{lab_id}-nfs", f"nfl{slot}n", f"192.168.{200 + slot}.0/24"))


def plan(*, lab_id: str, slot: int, kernel_name: str, box: str, server_kernel: KernelFiles,
         client_kernel: "KernelFiles | DistroClient", ssh_key: Path, driver: str = "qemu", emulator: Path | None = None,
         netns: str = "nfslab", memory: int = 512, boot_timeout: float = Timeouts.boot,
         libvirt: LibvirtTarget = LibvirtTarget()) -> Topology:
    """The pure topology value: the server keeps the fixed server kernel, alice and bob carry the one under test.
    With a remote `libvirt`, the kernel files are paths on its host (lab/remotelibvirt.py `stage`)."""
    mgmt, nfs = networks_for_slot(lab_id, slot)

    def machine(name: str, k) -> Machine:
        ip = f"{nfs.prefix}.{HOST_OCTET[name]}"
        if isinstance(k, DistroClient):
            return Machine(name, ip, None, None, "", memory, box=k.box, box_version=k.box_version,
                           provision=k.provision, packages=k.packages)
        cmdline = " ".join(x for x in (BASE_CMDLINE, k.cmdline, f"nfslab.name={name}", f"nfslab.ip={ip}/24") if x)
        return Machine(name, ip, k.vmlinuz, k.initrd, cmdline, memory)

    machines = (machine(SERVER, server_kernel), machine(ALICE, client_kernel), machine(BOB, client_kernel))
    keys = (ssh_key, INSECURE_KEY) if isinstance(client_kernel, DistroClient) else (ssh_key,)
    return Topology(lab_id=lab_id, kernel_name=kernel_name, box=box, machines=machines, mgmt=mgmt, nfs=nfs,
                    ssh_keys=keys, driver=driver, emulator=emulator if driver == "qemu" else None, netns=netns,
                    boot_timeout=round(boot_timeout), uri=libvirt.uri, proxy_command=libvirt.proxy_command)


def render_vagrantfile(t: Topology, template: Path = VAGRANTFILE_TEMPLATE) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["ruby"] = ruby_string
    return env.from_string(template.read_text()).render(t=t, guest_packages=GUEST_PACKAGES)


def ruby_string(text: str) -> str:
    """A single-quoted Ruby literal: nothing in it is interpolated (`#{…}`), only \\ and \' are escapes."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def network_xml(net: Network, dhcp: bool) -> str:
    """An isolated libvirt network (no forward: nothing leaves the namespace); dnsmasq no-ping for fast leases."""
    dhcp_xml = (f"<dhcp><range start='{net.prefix}.100' end='{net.prefix}.254'/></dhcp>" if dhcp else "")
    return (f"<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>"
            f"<name>{net.name}</name><bridge name='{net.bridge}' stp='off' delay='0'/>"
            f"<ip address='{net.gateway}' netmask='255.255.255.0'>{dhcp_xml}</ip>"
            f"<dnsmasq:options><dnsmasq:option value='no-ping'/></dnsmasq:options></network>")


def new_lab_id() -> str:
    return secrets.token_hex(3)
