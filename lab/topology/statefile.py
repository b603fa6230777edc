"""A topology's state file (`<lab home>/topologies/<lab id>/state.json`): every key it may hold, in one place.

Written before anything it names exists (lab/state.py says why), by several hands: resources.py reserves the slot,
live.py records what it creates, the runner marks a topology it leaves up, resources.py marks it destroyed. Read
back by lab clean and the next run (lab/cleanup.py), `lab status` (lab/status.py) and the slot allocation. Writers
go through `state_file()`, which refuses a key not listed in TopologyState; readers get a TopologyState.
"""
from __future__ import annotations

from pathlib import Path
from typing import TypedDict

from ..state import StateFile

NAME = "state.json"


class Resource(TypedDict):
    """A libvirt object the topology created (or is about to): removed by name after a crash."""

    kind: str                 # "domain" | "network"
    name: str                 # nfslab-<lab id>-…


class Names(TypedDict):
    lab_id: str
    kernel: str               # the kernel spec whose lab this is
    dir: str                  # the topology directory


class SshAddress(TypedDict):
    name: str                 # server | alice | bob
    address: str
    port: int


class Libvirt(TypedDict):
    uri: str                  # the libvirt the topology's domains, networks and volumes are on
    netns: str | None         # the namespace that libvirt's host is reached from (None: this machine's own)


class TopologyState(TypedDict, total=False):
    """state.json; which key is written by whom and when."""

    slot: int                 # resources.reserve, before anything: its /24 pair (no two live topologies share one)
    run: str                  # resources.reserve: the run directory it belongs to (lab/cleanup.py `release`)
    pid: int                  # resources.reserve: the process that made it; gone → an orphan (`clean_orphans`)
    libvirt: Libvirt          # resources.reserve, remote libvirt only: where `lab clean` removes it (cleanup.host_for)
    topology: Names           # live.py create, before the networks
    resources: list[Resource]   # live.py, each before it is created; forgotten once removed
    targets: dict[str, SshAddress]   # live.py, once `vagrant up` is done: `lab status`, `lab ssh`
    snapshot: str             # live.py: the booted snapshot cells revert to
    kept: bool                # runner.py: left up by --keep or --keep-failing; only `lab down`/`lab clean` remove it
    destroyed: bool           # resources.destroy_recorded: everything it names is gone
    bench_kind: str           # bench/stock_box.py: "stock" for its baseline's VMs (whose figures they are)


KEYS = frozenset(TopologyState.__optional_keys__)


class TopologyStateFile(StateFile):
    """A StateFile that takes only TopologyState's keys."""

    def set(self, key: str, value) -> None:
        if key not in KEYS:
            raise KeyError(f"{self.path}: '{key}' is not a topology state key (lab/topology/statefile.py: "
                           f"{', '.join(sorted(KEYS))})")
        super().set(key, value)

    def load(self) -> TopologyState:
        return super().load()


def state_file(topo_dir: Path) -> TopologyStateFile:
    return TopologyStateFile(Path(topo_dir) / NAME)


def read_state(topo_dir: Path) -> TopologyState:
    """What a topology's state file says; a missing or unreadable one says nothing (no resources)."""
    return state_file(topo_dir).load()


def recorded_dirs(topologies: Path) -> list[Path]:
    """The topology directories under `topologies` (LabHome.topologies) that have a state file, sorted."""
    return sorted(p.parent for p in topologies.glob(f"*/{NAME}"))
