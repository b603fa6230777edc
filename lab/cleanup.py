"""Removing what the lab created, from its state files: after a normal run, a Ctrl-C, or a SIGKILL.

Topologies are found by their state files (written before anything was created) and, as a last resort, by the
`nfslab-` name prefix inside the lab's own libvirtd; the host (daemons, namespace, pool) goes last. A topology that
`lab run --keep` left up (`kept` in its state file) is removed only by `lab down` and `lab clean`.

A topology made on a remote libvirt (`--libvirt-uri`) is removed there: its state file names that libvirt
(`host_for`). Every remote libvirt the lab prepared is cleaned like the lab's own: strays, the lab's volumes, the pool
if the lab made it (lab/remotelibvirt.py).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .daemons import process_running
from .host import POOL, Host, HostLease
from .libvirt import LibvirtTarget
from .log import log
from .paths import PREFIX, LabHome
from .remotelibvirt import RemoteLibvirtHost, recorded_targets, target_of
from .topology import destroy_recorded, pool_volumes, read_state, recorded_dirs, remove_domain


def host_for(host: Host, topo: Path) -> Host:
    """The host whose libvirt holds this topology: the one given, or the remote libvirt its state file names."""
    target = target_of(read_state(topo))
    if target is None:
        return Host(host.home) if host.libvirt.remote else host
    if host.libvirt.remote and host.libvirt.uri == target.uri:
        return host
    return RemoteLibvirtHost(host.home, target)


def topology_dirs(home: LabHome, run_dir: Path | None = None, include_destroyed: bool = False) -> list[Path]:
    """Topology directories (live ones unless include_destroyed); only those of `run_dir` if given."""
    found = []
    for topo in recorded_dirs(home.topologies):
        data = read_state(topo)
        if run_dir is not None and data.get("run") != str(Path(run_dir).resolve()):
            continue
        if data.get("destroyed") and not include_destroyed:
            continue
        found.append(topo)
    return found


def clean_orphans(host: Host) -> list[str]:
    """Topologies whose run process is gone (SIGKILL, a crash of the machine's power aside): what the next run
    removes before it starts, so a killed run costs nothing but its own cells. A kept topology's run is gone too,
    on purpose: it stays."""
    removed = []
    for topo in topology_dirs(host.home, include_destroyed=True):
        data = read_state(topo)
        pid = data.get("pid")
        if pid and not data.get("kept") and not process_running(int(pid)):
            removed += destroy_recorded(host_for(host, topo), topo)
            shutil.rmtree(topo, ignore_errors=True)
    return removed


def clean_topologies(host: Host, run_dir: Path | None = None, include_kept: bool = True) -> list[str]:
    removed = []
    for topo in topology_dirs(host.home, run_dir, include_destroyed=True):
        if not include_kept and _kept(topo):
            continue
        removed += destroy_recorded(host_for(host, topo), topo)
        shutil.rmtree(topo, ignore_errors=True)
    return removed


def _kept(topo: Path) -> bool:
    return bool(read_state(topo).get("kept"))


def clean_strays(host: Host) -> list[str]:
    """Domains, networks and volumes named nfslab-* that no state file mentions (e.g. a state dir removed by hand)."""
    removed = []
    if not host.libvirtd_running():
        return removed
    for dom in host.virsh("list", "--all", "--name", check=False).split():
        if dom.startswith(PREFIX + "-") and remove_domain(host, dom):
            removed.append(f"domain {dom}")
    for net in host.virsh("net-list", "--all", "--name", check=False).split():
        if net.startswith(PREFIX + "-"):
            host.virsh("net-destroy", net, check=False)
            host.virsh("net-undefine", net, check=False)
            removed.append(f"network {net}")
    return removed


def clean_everything(home: LabHome | None = None, keep_host: bool = False, keep_box_volumes: bool = False,
                     libvirt: LibvirtTarget | None = None) -> list[str]:
    """`lab clean`: every topology, stray object, box volume, then (unless keep_host) the daemons and namespace; the
    same on every remote libvirt the lab prepared, and on `libvirt` if given (one it has no record of)."""
    host = Host(home or LabHome.default())
    removed = clean_topologies(host)
    targets = {t.uri: t for t in recorded_targets(host.home)}
    if libvirt is not None and libvirt.remote:
        targets[libvirt.uri] = libvirt
    for target in targets.values():
        removed += clean_remote(RemoteLibvirtHost(host.home, target), keep_host, keep_box_volumes)
    removed += clean_strays(host)
    if host.libvirtd_running() and not keep_box_volumes:
        for name in pool_volumes(host):
            host.virsh("vol-delete", "--pool", POOL, name, check=False)
            removed.append(f"volume {name}")
    if not keep_host:
        if host.libvirtd_running():
            host.virsh("pool-destroy", POOL, check=False)
            host.virsh("pool-undefine", POOL, check=False)
        removed += host.down()
    return removed


def clean_remote(remote: RemoteLibvirtHost, keep_host: bool = False, keep_box_volumes: bool = False) -> list[str]:
    """What the lab left on a remote libvirt: nfslab-* domains and networks, the lab's volumes in its pool (box,
    kernels, disks: all named nfslab-…), then, unless keep_host, the pool if the lab made it."""
    if not remote.libvirtd_running():
        log.warning("%s does not answer: nothing removed there (`lab clean` tries again)", remote.libvirt.uri)
        return []
    removed = [f"{what} on {remote.libvirt.host}" for what in clean_strays(remote)]
    if not keep_box_volumes:
        for name in pool_volumes(remote):
            if name.startswith(PREFIX):
                remote.virsh("vol-delete", "--pool", POOL, name, check=False)
                remote.state.forget("volume", name)
                removed.append(f"volume {name} on {remote.libvirt.host}")
    if not keep_host:
        removed += remote.down()
    return removed


def release(host: Host, run_dir: Path, keep_host: bool = False) -> list[str]:
    """End of a run: remove its topologies but a kept one; take the host down too, unless asked not to or someone
    still uses it: another run or xdist worker (their leases), a lease this process still holds (a benchmark
    between two parts), a kept topology. Holding and releasing the host is HostLease's alone (lab/host.py)."""
    removed = clean_topologies(host, run_dir, include_kept=False)
    in_use = host.other_users() or HostLease.holders(host) or topology_dirs(host.home)
    if not keep_host and not in_use:
        removed += clean_everything(host.home)
    return removed
