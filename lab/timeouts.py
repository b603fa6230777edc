"""How long each wait of a cell may last before it is a lab ERROR: the defaults, and what a matrix's `timeouts:`
section (lab/spec/experiment.py validates it) makes of them. Apart from the spec package because every module that
waits (remote, nfs, kernels, the experiments) takes its default from here."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timeouts:
    """How long each wait of a cell may last before it is a lab ERROR (seconds).

    The defaults suit TCG on 2 cores, where everything a VM does is several times slower than under KVM. A
    timeout costs time only when something is already broken, so they are generous rather than tight."""

    boot: float = 300.0        # a VM to boot and answer Vagrant's ssh (`vagrant up` gets 120 s more of its own)
    revert: float = 120.0      # the three VMs back to the boot snapshot
    ssh: float = 120.0         # every VM to answer the lab's ssh, after the boot and after each revert
    command: float = 60.0      # one command in a VM that no key below covers
    nfsd: float = 90.0         # the server's nfsd to start (and its modules to load before the snapshot)
    mount: float = 60.0        # one client's mount (and its NFS modules to load before the snapshot)
    experiment: float = 60.0   # past `duration`: alice's reader to stop and hand over its timeline
    build: float = 3600.0      # one kernel compile (a module rebuild or a full bzImage)
