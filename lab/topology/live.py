"""A topology that exists: created (networks, `vagrant up`), snapshotted after boot, reverted between cells, destroyed.

Vagrant is driven through python-vagrant, wrapped so every call runs inside the lab namespace, has a timeout,
logs to the topology's log, and raises on failure (python-vagrant ≥ 1.0 only logs some failures: PR #162).
"""
from __future__ import annotations

import concurrent.futures
import ctypes
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import vagrant

from ..errors import LabError
from ..host import Host
from ..proc import log_line
from ..timeouts import Timeouts
from .plan import SNAPSHOT, Network, Topology, network_xml, render_vagrantfile
from .resources import box_upload_guard, destroy_recorded
from .statefile import TopologyStateFile, state_file

PR_SET_PDEATHSIG = 1


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
    def state(self) -> TopologyStateFile:
        return state_file(self.dir)

    @property
    def log(self) -> Path:
        return self.dir / "vagrant.log"

    def vagrant(self, timeout: float = 600) -> NetnsVagrant:
        from ..boxes import vagrant_env
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
