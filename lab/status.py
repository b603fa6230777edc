"""What the lab has up now, read from its state files, and how to reach it: `lab status`, `lab ssh`, `lab down`.

A topology outlives its run only when `lab run --keep` marked it kept (`kept: true` in its state file): the next
run's orphan cleanup leaves it alone, `lab down` and `lab clean` remove it. Everything here comes from the state
files the lab wrote before creating anything; libvirt is asked only for each machine's state.

One kernel may have several topologies up: `lab run --jobs N` can split a kernel's runs over two workers, and two
runs with `--keep` each keep one. `lab ssh` then picks none of them by itself: KERNEL@TOPOLOGY (the lab id `lab
status` shows) names one, and KERNEL alone is one line listing the choices. `lab down KERNEL` removes every kept
one of the kernel, `lab down KERNEL@TOPOLOGY` that one.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from .cleanup import clean_everything, host_for, topology_dirs
from .daemons import process_running, read_pid
from .host import Host
from .paths import PREFIX
from .safeload import cut
from .topology import destroy_recorded, read_state


class NotUp(Exception):
    """What the user asked for is not up: one line naming what is, exit 2."""


@dataclass(frozen=True)
class MachineUp:
    name: str
    domain: str
    state: str                 # libvirt's domstate; "?" when libvirtd is not running
    address: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class TopologyUp:
    lab_id: str
    kernel: str
    run: str
    pid: int | None
    alive: bool                # its run is still going
    kept: bool
    dir: Path
    machines: tuple[MachineUp, ...]
    libvirt: str | None = None   # a remote libvirt's URI (--libvirt-uri); None: the lab's own

    def machine(self, name: str) -> MachineUp | None:
        return next((m for m in self.machines if m.name == name), None)

    def to_dict(self) -> dict:
        return {**asdict(self), "dir": str(self.dir), "machines": [asdict(m) for m in self.machines]}


@dataclass(frozen=True)
class HostUp:
    netns: str
    netns_exists: bool
    libvirtd_pid: int | None
    libvirtd_running: bool

    @property
    def up(self) -> bool:
        return self.netns_exists or self.libvirtd_running


def host_status(host: Host) -> HostUp:
    return HostUp(host.netns, host.netns_exists(), read_pid(host.home.run / "libvirtd.pid"), host.libvirtd_running())


def topologies(host: Host, ask_libvirt: bool = True) -> list[TopologyUp]:
    """Every topology whose state file says it is not destroyed, oldest lab directory first."""
    asking = ask_libvirt and host.libvirtd_running()
    found = []
    for topo_dir in topology_dirs(host.home):
        data = read_state(topo_dir)
        lab_id = data.get("topology", {}).get("lab_id", topo_dir.name)
        prefix = f"{PREFIX}-{lab_id}-"
        targets = data.get("targets", {})
        there = host_for(host, topo_dir)   # a remote libvirt's topology is asked there
        remote = there.libvirt.uri if there.libvirt.remote else None
        asking_there = asking if there is host else ask_libvirt and there.libvirtd_running()
        machines = []
        for r in data.get("resources", []):
            if r.get("kind") != "domain":
                continue
            name = r["name"][len(prefix):] if r["name"].startswith(prefix) else r["name"]
            state = there.virsh("domstate", r["name"], check=False).strip() if asking_there else "?"
            target = targets.get(name, {})
            machines.append(MachineUp(name, r["name"], state or "gone", target.get("address"), target.get("port")))
        pid = data.get("pid")
        found.append(TopologyUp(lab_id, data.get("topology", {}).get("kernel", "?"), data.get("run", ""), pid,
                                bool(pid) and process_running(int(pid)), bool(data.get("kept")), topo_dir,
                                tuple(machines), remote))
    return found


def _how(t: TopologyUp) -> str:
    return "kept" if t.kept else f"run pid {t.pid} {'running' if t.alive else 'gone'}"


def describe(t: TopologyUp) -> str:
    """One line: `debian-6.1 (topology abc123, kept)`."""
    return f"{t.kernel} (topology {t.lab_id}, {_how(t)})"


def _what_is_up(tops: list[TopologyUp]) -> str:
    return f"up: {'; '.join(describe(t) for t in tops)}" if tops else "no topology is up"


def find(tops: list[TopologyUp], kernel: str, machine: str,
         lab_id: str | None = None) -> tuple[TopologyUp, MachineUp]:
    """The machine of the kernel's one kept (or running) topology to log into, or of the topology `lab_id` names;
    NotUp when there is none, or several and no lab id to choose (one line listing them)."""
    candidates = [t for t in tops if t.kernel == kernel and (t.kept or t.alive)]
    if lab_id is not None:
        candidates = [t for t in candidates if t.lab_id == lab_id]
        if not candidates:
            raise NotUp(f"no topology {cut(lab_id)} of kernel {cut(kernel)} is up ({_what_is_up(tops)})")
    if not candidates:
        raise NotUp(f"no topology of kernel {cut(kernel)} is up ({_what_is_up(tops)})")
    if len(candidates) > 1:
        choices = ", ".join(f"{t.kernel}@{t.lab_id} ({_how(t)})" for t in candidates)
        raise NotUp(f"kernel {cut(kernel)} has {len(candidates)} topologies up, name one: {choices} (e.g. lab ssh "
                    f"{candidates[0].kernel}@{candidates[0].lab_id} {cut(machine)})")
    t = candidates[0]
    m = t.machine(machine)
    if m is None:
        raise NotUp(f"no machine {cut(machine)} in {describe(t)} (machines: {', '.join(x.name for x in t.machines)})")
    if not m.address:
        raise NotUp(f"{cut(machine)} of {describe(t)} has no ssh address recorded yet (it is still booting)")
    return t, m


def ssh_argv(host: Host, machine: MachineUp, command: list[str] | None = None) -> list[str]:
    """ssh from inside the lab namespace as root with the lab's key (what the box and the distribution clients'
    provisioning trust it for); the VMs are rebuilt every run, so their host keys are neither checked nor kept. On a
    remote libvirt, through its host (the proxy command the topology's Vagrantfile has)."""
    proxy = ["-o", f"ProxyCommand={host.libvirt.proxy_command}"] if host.libvirt.remote else []
    return [*host.netns_prefix(), "ssh", *proxy, "-i", str(host.home.ssh_key), "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-p", str(machine.port or 22), f"root@{machine.address}", *(command or [])]


def ssh(host: Host, kernel: str, machine: str, command: list[str] | None = None,
        lab_id: str | None = None) -> None:
    """Replace this process with ssh, so the terminal is ssh's (no Python between the user and the VM)."""
    t, m = find(topologies(host), kernel, machine, lab_id)
    argv = ssh_argv(host_for(host, t.dir), m, command)
    os.execvp(argv[0], argv)


def down(host: Host, kernel: str | None = None, keep_host: bool = False, lab_id: str | None = None) -> list[str]:
    """Destroy the kept topologies (of this kernel, or only the one `lab_id` names, or all), as `lab clean` does
    one, then the host if nothing else uses it; NotUp if a kernel is named and none of its topologies is kept."""
    tops = topologies(host, ask_libvirt=False)
    kept = [t for t in tops if t.kept and (kernel is None or t.kernel == kernel)
            and (lab_id is None or t.lab_id == lab_id)]
    if kernel is not None and not kept:
        which = f"topology {cut(lab_id)} of kernel" if lab_id is not None else "topology of kernel"
        raise NotUp(f"no kept {which} {cut(kernel)} ({_what_is_up(tops)})")
    removed = []
    for t in kept:
        removed += destroy_recorded(host, t.dir)
        shutil.rmtree(t.dir, ignore_errors=True)
    if kept and not keep_host and not host.other_users() and not topology_dirs(host.home):
        removed += clean_everything(host.home)
    return removed


def lines(host_up: HostUp, tops: list[TopologyUp]) -> list[str]:
    """`lab status`: the host, then a line a topology."""
    if not host_up.up and not tops:
        return ["nothing is up"]
    daemon = (f"libvirtd pid {host_up.libvirtd_pid}" if host_up.libvirtd_running else "libvirtd not running")
    out = [f"host: namespace {host_up.netns} {'up' if host_up.netns_exists else 'absent'}, {daemon}"]
    for t in tops:
        machines = ", ".join(f"{m.name} {m.state}" + (f" {m.address}:{m.port}" if m.address else "")
                             for m in t.machines)
        out.append(f"{t.kernel}: topology {t.lab_id}, {'kept' if t.kept else 'not kept'}, run pid {t.pid} "
                   f"{'running' if t.alive else 'gone'}, run {t.run or '?'}"
                   f"{f', on {t.libvirt}' if t.libvirt else ''}; {machines or 'no machines recorded'}")
    if not tops:
        out.append("no topology is up")
    return out


def as_json(host_up: HostUp, tops: list[TopologyUp]) -> str:
    return json.dumps({"host": {**asdict(host_up), "up": host_up.up},
                       "topologies": [t.to_dict() for t in tops]})
