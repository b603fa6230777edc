"""One topology per kernel: server + alice + bob. Renders Vagrantfile.j2, brings it up and down, snapshots it.

Lifecycle (molecule-style): plan (pure `Topology` value) → create (networks, `vagrant up`) → snapshot "booted" →
revert between cells → destroy. Every libvirt object is named `nfslab-<lab id>-…` and recorded in the topology's
state file before it is created, so `lab clean` removes it after a crash.

Vagrant is driven through python-vagrant, wrapped so every call runs inside the lab namespace, has a timeout,
logs to the topology's log, and raises on failure (python-vagrant ≥ 1.0 only logs some failures: PR #162).
"""
from __future__ import annotations

import concurrent.futures
import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import jinja2
import vagrant

from .distro import INSECURE_KEY, DistroClient
from .errors import LabError
from .host import LIBVIRT_URI, POOL, Host
from .paths import PREFIX, VAGRANTFILE_TEMPLATE, LabHome
from .proc import log_line
from .spec import Timeouts
from .state import StateFile, locked

SERVER, ALICE, BOB = "server", "alice", "bob"
#: last octet of each machine on the NFS network (one place for the IP plan)
HOST_OCTET = {SERVER: 10, ALICE: 11, BOB: 12}
#: each concurrent topology gets a slot; the slot picks its two /24s (only inside the lab namespace)
MAX_SLOTS = 50
BASE_CMDLINE = ("root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet loglevel=3 mitigations=off nowatchdog "
                "audit=0 8250.nr_uarts=1 init=/sbin/lab-init")
SNAPSHOT = "booted"
PR_SET_PDEATHSIG = 1


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
    netns: str = "nfslab"
    uri: str = LIBVIRT_URI
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
         netns: str = "nfslab", memory: int = 512, boot_timeout: float = Timeouts.boot) -> Topology:
    """The pure topology value: the server keeps the fixed server kernel, alice and bob carry the one under test."""
    mgmt, nfs = networks_for_slot(lab_id, slot)

    def machine(name: str, k) -> Machine:
        ip = f"{nfs.prefix}.{HOST_OCTET[name]}"
        if isinstance(k, DistroClient):
            return Machine(name, ip, None, None, "", memory, box=k.box, box_version=k.box_version,
                           provision=k.provision)
        cmdline = " ".join(x for x in (BASE_CMDLINE, k.cmdline, f"nfslab.name={name}", f"nfslab.ip={ip}/24") if x)
        return Machine(name, ip, k.vmlinuz, k.initrd, cmdline, memory)

    machines = (machine(SERVER, server_kernel), machine(ALICE, client_kernel), machine(BOB, client_kernel))
    keys = (ssh_key, INSECURE_KEY) if isinstance(client_kernel, DistroClient) else (ssh_key,)
    return Topology(lab_id=lab_id, kernel_name=kernel_name, box=box, machines=machines, mgmt=mgmt, nfs=nfs,
                    ssh_keys=keys, driver=driver, emulator=emulator if driver == "qemu" else None, netns=netns,
                    boot_timeout=round(boot_timeout))


def render_vagrantfile(t: Topology, template: Path = VAGRANTFILE_TEMPLATE) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(template.read_text()).render(t=t)


def network_xml(net: Network, dhcp: bool) -> str:
    """An isolated libvirt network (no forward: nothing leaves the namespace); dnsmasq no-ping for fast leases."""
    dhcp_xml = (f"<dhcp><range start='{net.prefix}.100' end='{net.prefix}.254'/></dhcp>" if dhcp else "")
    return (f"<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>"
            f"<name>{net.name}</name><bridge name='{net.bridge}' stp='off' delay='0'/>"
            f"<ip address='{net.gateway}' netmask='255.255.255.0'>{dhcp_xml}</ip>"
            f"<dnsmasq:options><dnsmasq:option value='no-ping'/></dnsmasq:options></network>")


def new_lab_id() -> str:
    return secrets.token_hex(3)


def _die_with_parent() -> None:
    """Runs in the child before exec: if the lab process is SIGKILLed mid-`vagrant up`, Vagrant gets SIGTERM
    instead of going on creating domains that `lab clean` may already have removed."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class NetnsVagrant(vagrant.Vagrant):
    """python-vagrant, run inside the lab namespace with a timeout on every call."""

    def __init__(self, root: Path, env: dict, netns_prefix: list[str], log: Path, timeout: float = 600):
        self._log = log
        self._prefix = netns_prefix
        self.timeout = timeout
        super().__init__(root=str(root), env=env, out_cm=self._log_cm, err_cm=self._log_cm)

    def _log_cm(self):
        return vagrant.make_file_cm(str(self._log), "a")()

    def _make_vagrant_command(self, args):
        return [*self._prefix, *super()._make_vagrant_command(args)]

    def _call_vagrant_command(self, args):
        command = self._make_vagrant_command(args)
        log_line(self._log, f"$ {' '.join(command)}")
        with self.out_cm() as out_fh, self.err_cm() as err_fh:
            subprocess.run(command, cwd=self.root, stdout=out_fh, stderr=err_fh, env=self.env, check=True,
                           timeout=self.timeout, preexec_fn=_die_with_parent)

    def _run_vagrant_command(self, args):
        command = self._make_vagrant_command(args)
        with self.err_cm() as err_fh:
            return subprocess.run(command, cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=err_fh,
                                  check=True, timeout=self.timeout, text=True, preexec_fn=_die_with_parent).stdout


def parse_ssh_config(text: str) -> dict[str, dict[str, str]]:
    """`vagrant ssh-config` of a multi-machine environment → {host: {key: value}} (values unquoted)."""
    hosts: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) != 2 or parts[0].startswith("#"):
            continue
        key, value = parts[0], parts[1].strip().strip('"')
        if key == "Host":
            current = hosts.setdefault(value, {})
        elif current is not None:
            current[key] = value
    return hosts


@dataclass
class SshTarget:
    name: str
    address: str
    port: int


@dataclass
class LiveTopology:
    """A topology that exists: its dir, state file, Vagrant handle; created by `create()`.

    What a variant may change is named here, so that it changes no step of the lifecycle: the Vagrantfile
    (`vagrantfile`), a network's libvirt XML (`network_definition`) and the options of `vagrant up` (`UP_OPTIONS`).
    bench/stock_box.py's baseline is such a variant."""

    UP_OPTIONS: ClassVar[dict] = {"no_provision": True}   # provisioning is the explicit step below, when needed

    topology: Topology
    host: Host
    dir: Path
    targets: dict[str, SshTarget] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def state(self) -> StateFile:
        return StateFile(self.dir / "state.json")

    @property
    def log(self) -> Path:
        return self.dir / "vagrant.log"

    def vagrant(self, timeout: float = 600) -> NetnsVagrant:
        from .boxes import vagrant_env
        return NetnsVagrant(self.dir, vagrant_env(self.host.home), self.host.netns_prefix(), self.log, timeout)

    # ---- create ------------------------------------------------------------------------------------------
    def create(self, progress=lambda msg: None) -> "LiveTopology":
        t = self.topology
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state.set("topology", {"lab_id": t.lab_id, "kernel": t.kernel_name, "dir": str(self.dir)})
        (self.dir / "Vagrantfile").write_text(self.vagrantfile())
        for net, dhcp in ((t.mgmt, True), (t.nfs, False)):
            self._define_network(net, dhcp)
        for d in t.domains:
            self.state.record("domain", d)
        progress(f"vagrant up {', '.join(m.name for m in t.machines)}")
        started = time.monotonic()
        try:
            with box_upload_guard(self.host, sorted({t.box, *(m.box for m in t.machines if m.box)})):
                self.vagrant(timeout=t.boot_timeout + 120).up(provider="libvirt", **self.UP_OPTIONS)
        except subprocess.TimeoutExpired:
            raise LabError("topology: vagrant up", f"no ssh after {t.boot_timeout + 120}s", self.log) from None
        except subprocess.CalledProcessError as e:
            raise LabError("topology: vagrant up", f"vagrant up exited {e.returncode}", self.log) from None
        if t.provisioned:
            progress(f"provisioning {', '.join(t.provisioned)} with their pinned kernel, then reloading them")
            self._provision_and_reload(t.provisioned)
        self.timings["up"] = time.monotonic() - started
        self.targets = self._ssh_targets()
        return self

    def vagrantfile(self) -> str:
        return render_vagrantfile(self.topology)

    def network_definition(self, net: Network, dhcp: bool) -> str:
        return network_xml(net, dhcp)

    def _provision_and_reload(self, machines: list[str]) -> None:
        v = self.vagrant(timeout=self.topology.boot_timeout + 1200)
        try:
            for name in machines:
                v.provision(vm_name=name)
                v.reload(vm_name=name, provision=False)
        except subprocess.TimeoutExpired:
            raise LabError("topology: provision", "provisioning or reload timed out", self.log) from None
        except subprocess.CalledProcessError as e:
            raise LabError("topology: provision", f"vagrant exited {e.returncode}", self.log) from None

    def _define_network(self, net: Network, dhcp: bool) -> None:
        self.state.record("network", net.name)
        existing = self.host.virsh("net-list", "--all", "--name").split()
        if net.name not in existing:
            xml = self.dir / f"{net.name}.xml"
            xml.write_text(self.network_definition(net, dhcp))
            self.host.virsh("net-define", str(xml), step="topology: define network")
        if net.name not in self.host.virsh("net-list", "--name").split():
            self.host.virsh("net-start", net.name, step="topology: start network")

    def _ssh_targets(self) -> dict[str, SshTarget]:
        """One `vagrant ssh-config` for all machines: each call is a Ruby start-up (≈ 3 s under TCG load), and
        asking per machine cost three of them on every boot."""
        hosts = parse_ssh_config(self.vagrant(timeout=120).ssh_config())
        targets = {}
        for m in self.topology.machines:
            conf = hosts.get(m.name, {})
            if "HostName" not in conf:
                raise LabError(f"topology: ssh-config {m.name}", "vagrant ssh-config gave no address", self.log)
            targets[m.name] = SshTarget(m.name, conf["HostName"], int(conf.get("Port", 22)))
        self.state.set("targets", {k: vars(v) for k, v in targets.items()})
        return targets

    # ---- snapshots ---------------------------------------------------------------------------------------
    def snapshot(self, name: str = SNAPSHOT) -> None:
        """Internal snapshot with RAM, taken before any NFS state exists (0.4 s for three VMs)."""
        self._each_domain(lambda d: self.host.virsh("snapshot-create-as", d, name, step=f"snapshot {d}"))
        self.state.set("snapshot", name)

    def revert(self, name: str = SNAPSHOT, timeout: float = Timeouts.revert) -> float:
        """Back to the booted state in ~3 s; the caller reconnects (guest TCP state was reverted too)."""
        started = time.monotonic()
        self._each_domain(lambda d: self.host.virsh("snapshot-revert", d, name, "--running",
                                                    step=f"revert {d}", timeout=timeout))
        return time.monotonic() - started

    def _each_domain(self, fn) -> None:
        with concurrent.futures.ThreadPoolExecutor(len(self.topology.domains)) as pool:
            for f in [pool.submit(fn, d) for d in self.topology.domains]:
                f.result()

    def domain_state(self, machine: str) -> str:
        return self.host.virsh("domstate", self.topology.domain(machine), check=False).strip()

    def console_log(self, machine: str) -> Path:
        return Path("/var/log/libvirt/qemu") / f"{self.topology.domain(machine)}.log"

    # ---- destroy -----------------------------------------------------------------------------------------
    def destroy(self) -> None:
        destroy_recorded(self.host, self.dir)


def remove_domain(host: Host, domain: str) -> bool:
    """Snapshots first (libvirt refuses to undefine a domain that has some), then stop and undefine; False if the
    domain did not exist."""
    if not host.virsh("domstate", domain, check=False).strip():
        return False
    for snap in host.virsh("snapshot-list", domain, "--name", check=False).split():
        host.virsh("snapshot-delete", domain, snap, check=False)
    host.virsh("destroy", domain, check=False)
    host.virsh("undefine", domain, "--nvram", check=False)
    if domain in host.virsh("list", "--all", "--name", check=False).split():
        host.virsh("undefine", domain, check=False)   # older libvirt: --nvram on a domain without NVRAM fails
    return True


def destroy_recorded(host: Host, topo_dir: Path) -> list[str]:
    """Remove everything a topology's state file names, whether or not its creator is still alive.

    Order matters: snapshots before domains (libvirt refuses to undefine a domain with snapshots),
    domains before networks and volumes."""
    state = StateFile(topo_dir / "state.json")
    removed = []
    if not host.libvirtd_running():
        return removed
    domains = [r["name"] for r in state.resources("domain")]
    for d in domains:
        if remove_domain(host, d):
            removed.append(f"domain {d}")
        state.forget("domain", d)
    for name in pool_volumes(host):
        if any(name.startswith(d) for d in domains):
            host.virsh("vol-delete", "--pool", POOL, name, check=False)
            removed.append(f"volume {name}")
    for r in state.resources("network"):
        if r["name"] in host.virsh("net-list", "--all", "--name", check=False).split():
            host.virsh("net-destroy", r["name"], check=False)
            host.virsh("net-undefine", r["name"], check=False)
            removed.append(f"network {r['name']}")
        state.forget("network", r["name"])
    shutil.rmtree(topo_dir / ".vagrant", ignore_errors=True)
    state.set("destroyed", True)
    return removed


def pool_volumes(host: Host) -> list[str]:
    """The names of the volumes in the lab's storage pool (`virsh vol-list`: Name Path); none if libvirtd is not
    answering."""
    return [line.split()[0] for line in host.virsh("vol-list", POOL, check=False).splitlines() if line.split()]


@dataclass(frozen=True)
class Reservation:
    """A topology that has a name, a slot and a state file, and nothing else yet."""

    lab_id: str
    slot: int
    dir: Path


def reserve(home: LabHome, run: Path | str) -> Reservation:
    """A new topology's id, slot and state file, written before any of its resources exists: the slot (under a lock,
    so concurrent runners never share a /24), the run it belongs to, and this process's pid (a dead pid marks it
    orphaned after a SIGKILL: lab/cleanup.py `clean_orphans`)."""
    with locked(home.topologies / ".slots.lock"):
        lab_id = new_lab_id()
        while (home.topologies / lab_id).exists():   # 3 random bytes: rare, but two labs must never share a dir
            lab_id = new_lab_id()
        topo_dir = home.topologies / lab_id
        state = StateFile(topo_dir / "state.json")
        slot = allocate_slot(home)
        state.set("slot", slot)
    state.set("run", str(run))
    state.set("pid", os.getpid())
    return Reservation(lab_id, slot, topo_dir)


@contextmanager
def box_upload_guard(host: Host, boxes: list[str]):
    """Around `vagrant up`: the first topology to use a box uploads it into the pool as a base volume, and two
    uploads of one box at once collide (vagrant-libvirt #278, "Volume for domain is already created"). So while
    a box has no volume, an up holds a lock that the next one waits for; once all have one, ups run side by side."""
    prefixes = [box.replace("/", "-VAGRANTSLASH-") for box in boxes]
    with locked(host.home.state / "box-upload.lock"):
        volumes = pool_volumes(host)
        uploaded = all(any(name.startswith(p) for name in volumes) for p in prefixes)
        if not uploaded:
            yield
    if uploaded:
        yield


def allocate_slot(home: LabHome) -> int:
    """The lowest slot no live topology uses (slots pick the /24s; collisions would join two labs' networks)."""
    used = set()
    for f in home.topologies.glob("*/state.json"):
        data = json.loads(f.read_text() or "{}")
        if not data.get("destroyed") and "slot" in data:
            used.add(data["slot"])
    for slot in range(MAX_SLOTS):
        if slot not in used:
            return slot
    raise LabError("topology: slot", f"{MAX_SLOTS} topologies already exist; run `lab clean`")
