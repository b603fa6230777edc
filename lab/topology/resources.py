"""A topology's host resources by name: the slot and state file reserved before anything exists, the first upload
of a box, and removal of whatever a state file records — by its creator, or by `lab clean` after a crash."""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError
from ..host import POOL, Host
from ..libvirt import LibvirtTarget, volume_names
from ..paths import LabHome
from ..state import locked
from .plan import MAX_SLOTS, new_lab_id
from .statefile import read_state, recorded_dirs, state_file

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
    state = state_file(topo_dir)
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
    return volume_names(host.virsh("vol-list", POOL, check=False))


@dataclass(frozen=True)
class Reservation:
    """A topology that has a name, a slot and a state file, and nothing else yet."""

    lab_id: str
    slot: int
    dir: Path


def reserve(home: LabHome, run: Path | str, libvirt: LibvirtTarget | None = None) -> Reservation:
    """A new topology's id, slot and state file, written before any of its resources exists: the slot (under a lock,
    so concurrent runners never share a /24), the run it belongs to, this process's pid (a dead pid marks it
    orphaned after a SIGKILL: lab/cleanup.py `clean_orphans`), and a remote libvirt it will be made on."""
    with locked(home.topologies / ".slots.lock"):
        lab_id = new_lab_id()
        while (home.topologies / lab_id).exists():   # 3 random bytes: rare, but two labs must never share a dir
            lab_id = new_lab_id()
        topo_dir = home.topologies / lab_id
        state = state_file(topo_dir)
        slot = allocate_slot(home)
        state.set("slot", slot)
    state.set("run", str(run))
    state.set("pid", os.getpid())
    if libvirt is not None and libvirt.remote:
        state.set("libvirt", {"uri": libvirt.uri, "netns": libvirt.netns})
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
    for topo_dir in recorded_dirs(home.topologies):
        data = read_state(topo_dir)
        if not data.get("destroyed") and "slot" in data:
            used.add(data["slot"])
    for slot in range(MAX_SLOTS):
        if slot not in used:
            return slot
    raise LabError("topology: slot", f"{MAX_SLOTS} topologies already exist; run `lab clean`")
