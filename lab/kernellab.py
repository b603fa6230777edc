"""One kernel's lab, booted and ready for cells: the public boot layer that the runner, the pytest plugin (through
the runner), bisect probes and bench/ all use, so there is one boot path.

`boot_lab` is the whole sequence: reserve (id, slot and state file before any resource exists) → plan →
LiveTopology.create → an ssh `Remote` per VM, all answering → the VMs run the kernel the row is about → NFS
modules and rpcbind preloaded → RAM snapshot `booted`. A failure on the way destroys what was created and raises
LabError (or whatever interrupted it). `KernelLab` then resets to that snapshot between cells and is closed by its
owner. Nothing here is shared between two labs: each has its own VMs, networks and slot, which is what lets
`lab run --jobs N` boot several side by side (lab/parallel.py).

The CPU phases of a lab — the whole boot (provisioning and reload included) and each reset (the revert and the ssh
checks after it) — run with the lab's qemu threads at a low priority (lab/cpushare.py), so that the cells other
workers run meanwhile keep their read period; they are back at their own priority before a cell starts.
"""
from __future__ import annotations

import concurrent.futures
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import cpushare, nfs, remote, topology
from .errors import LabError
from .host import Host
from .spec import Timeouts


def _quiet(msg: str) -> None:
    pass


@dataclass
class KernelLab:
    """A kernel's topology while its cells run: the live topology, an ssh connection per VM, the client kernel."""

    live: topology.LiveTopology
    remotes: dict[str, remote.Remote]
    client_files: topology.KernelFiles
    fresh: bool = True          # just booted: the first cell needs no revert
    timings: dict = field(default_factory=dict)
    timeouts: Timeouts = Timeouts()

    @property
    def server(self) -> remote.Remote:
        return self.remotes[topology.SERVER]

    @property
    def server_ip(self) -> str:
        return self.live.topology.machine(topology.SERVER).nfs_ip

    def log_to(self, log_dir: Path) -> None:
        for r in self.remotes.values():
            r.log_to(log_dir / f"{r.name}.log")

    def reset(self) -> None:
        """Back to the booted snapshot (no NFS state anywhere), then wait until every VM answers."""
        if self.fresh:
            self.fresh = False
            return
        self.disconnect()
        with cpushare.yielding(self.live.topology.domains):   # ≈ 6 s of CPU: RAM images loaded, guests' sshd
            self.timings["revert_s"] = round(self.live.revert(timeout=self.timeouts.revert), 2)
            self.timings["ready_s"] = round(self.wait_ready(), 2)

    def wait_ready(self) -> float:
        """Until every VM answers over ssh (in parallel); the seconds it took."""
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(len(self.remotes)) as pool:
            for f in [pool.submit(r.wait_ready, self.timeouts.ssh) for r in self.remotes.values()]:
                f.result()
        return time.monotonic() - started

    def prepare_for_cells(self) -> None:
        """After the first ssh: the clients run the row's kernel, NFS modules and rpcbind are loaded everywhere
        (so no cell pays for them), then the snapshot every cell starts from."""
        for name in (topology.ALICE, topology.BOB):
            check_release(self.remotes[name], self.client_files.release)
        nfs.preload_server(self.server, timeout=self.timeouts.nfsd)
        for name in (topology.ALICE, topology.BOB):
            nfs.preload_client(self.remotes[name], timeout=self.timeouts.mount)
        self.live.snapshot()

    def healthy(self) -> bool:
        try:
            return all(self.live.domain_state(m) == "running" for m in self.remotes)
        except LabError:
            return False

    def close(self) -> None:
        self.disconnect()
        self.live.destroy()

    def disconnect(self) -> None:
        for r in self.remotes.values():
            r.close()


def boot_lab(host: Host, *, box: str, kernel_name: str, server: topology.KernelFiles, client,
             timeouts: Timeouts = Timeouts(), run: Path | str, progress=_quiet,
             ready_only: bool = False) -> KernelLab:
    """Boot server + alice + bob for `kernel_name` (server on `server`, clients on `client`: KernelFiles or a
    distribution client) and return the lab ready for its first cell. `run` is what the state file names as the
    topology's owner (a run directory): `lab clean` and the end of that run remove it. With ready_only, stop once
    every VM answers over ssh (no kernel check, preload or snapshot): what bench/lab_bench.py times as "up".

    The lab's timings: up_s (vagrant up), create_s (networks + vagrant up + ssh-config), ssh_s (first ssh)."""
    home = host.home
    reserved = topology.reserve(home, run, host.libvirt)
    t = topology.plan(lab_id=reserved.lab_id, slot=reserved.slot, kernel_name=kernel_name, box=box,
                      server_kernel=host.stage(server), client_kernel=host.stage(client), ssh_key=home.ssh_key,
                      driver="kvm" if host.accel == "kvm" else "qemu", emulator=host.emulator, netns=host.netns,
                      boot_timeout=timeouts.boot, libvirt=host.libvirt)
    live = topology.LiveTopology(t, host, reserved.dir)
    progress(f"{kernel_name}: booting server, alice, bob (topology {reserved.lab_id})")
    try:
        with cpushare.yielding(t.domains):   # the boot gives way to other workers' cells; not the cells to come
            started = time.monotonic()
            live.create(progress=progress)
            created = time.monotonic() - started
            remotes = {name: remote.Remote(name, tgt.address, tgt.port, home.ssh_key, host.open_socket,
                                           reserved.dir / f"{name}.log", command_timeout=timeouts.command)
                       for name, tgt in live.targets.items()}
            lab = KernelLab(live, remotes, client, timeouts=timeouts,
                            timings={"up_s": round(live.timings["up"], 1), "create_s": round(created, 2)})
            lab.timings["ssh_s"] = round(lab.wait_ready(), 2)
            if not ready_only:
                lab.prepare_for_cells()
    except BaseException:   # a LabError, or an interrupt mid-boot: nothing half-booted is left behind
        live.destroy()
        raise
    progress(f"{kernel_name}: topology up in {lab.timings['up_s']}s")
    return lab


def check_release(r: remote.Remote, release: str) -> None:
    """The VM must run the kernel the row is about; anything else would put a wrong result in the table."""
    running = r.run("uname -r", step=f"{r.name}: kernel").stdout.strip()
    if release and running != release:
        raise LabError(f"{r.name}: kernel", f"expected kernel {release}, the VM runs {running}", r.log)
