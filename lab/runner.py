"""Runs cells: the one path `lab run` and `pytest --matrix` share (spec → topology → run → observation → verdict
→ result record).

One `KernelLab` (topology + ssh connections) per kernel, reused by all of that kernel's cells: the VMs are
snapshotted after boot, before any NFS state, and reverted between cells. Any lab failure becomes an ERROR
verdict with the failing step and the log path; the topology is then rebuilt for the next cell if it is broken.
"""
from __future__ import annotations

import concurrent.futures
import fcntl
import functools
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import capture, kernels, nfs, topology
from .axes import cell_setup
from .boxes import Box, ensure_box
from .cleanup import clean_orphans
from .errors import KernelUnavailable, LabError
from .experiments import EXPERIMENTS, race
from .host import Host
from .outcome import Criteria, Verdict, classify
from .paths import LabHome
from .remote import Remote
from .results import ResultRecord, RunDir, now_iso, worker_name
from .spec import Cell, Matrix, Timeouts
from .state import StateFile


def _quiet(msg: str) -> None:
    pass


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass
class KernelLab:
    """A kernel's topology while its cells run."""

    live: topology.LiveTopology
    remotes: dict[str, Remote]
    client_files: topology.KernelFiles
    fresh: bool = True          # just booted: the first cell needs no revert
    timings: dict = field(default_factory=dict)
    timeouts: Timeouts = Timeouts()

    @property
    def server(self) -> Remote:
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
        for r in self.remotes.values():
            r.close()
        self.timings["revert_s"] = round(self.live.revert(timeout=self.timeouts.revert), 2)
        self.timings["ready_s"] = round(self._each(lambda r: r.wait_ready(self.timeouts.ssh)), 2)

    def _each(self, fn) -> float:
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(len(self.remotes)) as pool:
            for f in [pool.submit(fn, r) for r in self.remotes.values()]:
                f.result()
        return time.monotonic() - started

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


class Runner:
    """Runs cells of one matrix into one run directory, owning at most one topology at a time."""

    def __init__(self, matrix: Matrix, run_dir: RunDir, home: LabHome | None = None, progress=_quiet):
        self.matrix = matrix
        self.run_dir = run_dir
        self.home = home or LabHome.default()
        self.progress = progress
        self.host = Host(self.home)
        self.box: Box | None = None
        self.lab: KernelLab | None = None
        self.lab_kernel: str | None = None
        self.lab_error: Verdict | None = None   # a kernel whose topology could not come up: its cells ERROR
        self.unavailable: dict[str, KernelUnavailable] = {}   # kernels that cannot be had: asked once

    # ---- preparation -------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Host namespace + daemons and the box (both cached; seconds when they exist)."""
        self.home.ensure()
        with _locked(self.home.state / "prepare.lock"):
            self.host.register_user()
            self.box = ensure_box(self.home, progress=self.progress)
            self.host.up(probe_kernel=self.box.dir / "vmlinuz")
            for removed in clean_orphans(self.host):
                self.progress(f"removed {removed} (left by a run that was killed)")

    # ---- cells -------------------------------------------------------------------------------------------
    def run_cell(self, cell: Cell, repeat: int = 1, repeats: int = 1) -> ResultRecord:
        """Run one cell (run `repeat` of `repeats`, on a freshly reverted topology) and append its record to the run
        directory; never raises for lab failures."""
        started_iso, started = now_iso(), time.monotonic()
        log_dir = self.run_dir.log_dir(cell.id, repeat, repeats)
        log_dir.mkdir(parents=True, exist_ok=True)
        kernel = self.matrix.kernel(cell.kernel)
        observation, release = None, ""
        try:
            lab = self._lab_for(cell.kernel)
            lab.log_to(log_dir)
            observation, release = self._run_on(lab, cell, log_dir)
            verdict = classify(observation, Criteria(self.matrix.experiment.pass_within,
                                                     self.matrix.experiment.settle))
        except KernelUnavailable as e:
            verdict = Verdict.skip(str(e))
        except LabError as e:
            verdict = Verdict.error(e.step, e.message, _relative(e.log, self.run_dir.path))
            self._after_error(e, log_dir)
        record = ResultRecord(
            run_id=self.run_dir.run_id, cell_id=cell.id, kernel=cell.kernel, params=dict(cell.params),
            verdict=verdict.to_dict(), expected=kernel.expected(cell.params), started=started_iso,
            duration_s=round(time.monotonic() - started, 1), worker=worker_name(),
            observation=observation.to_dict() if observation else None,
            logs=str(log_dir.relative_to(self.run_dir.path)), kernel_release=release, repeat=repeat,
            repeats=repeats)
        (log_dir / "result.json").write_text(json.dumps(json.loads(record.to_json()), indent=1) + "\n")
        self.run_dir.append(record)
        return record

    def _run_on(self, lab: KernelLab, cell: Cell, log_dir: Path):
        setup = cell_setup(cell.params)
        exp = self.matrix.experiment
        self.progress(f"{cell.id}: reset")
        lab.reset()
        self.progress(f"{cell.id}: nfs server + mounts")
        server_info = nfs.start_server(lab.server, setup, lab.live.topology.nfs.cidr, timeout=lab.timeouts.nfsd)
        scenario = EXPERIMENTS[exp.name](lab.server)
        mounts = {name: nfs.mount(lab.remotes[name], lab.server_ip, setup, timeout=lab.timeouts.mount)
                  for name in (topology.ALICE, topology.BOB)}
        release = lab.remotes[topology.ALICE].run("uname -r").stdout.strip()
        nfs_module = nfs.client_module(lab.remotes[topology.ALICE], lab.client_files.nfs_modules)
        self.progress(f"{cell.id}: {exp.name} experiment (at most {exp.duration:.0f}s)")
        settings = race.Settings(duration=exp.duration, interval=exp.interval, settle=exp.settle,
                                 finish=lab.timeouts.experiment, trace_syscalls=exp.trace_syscalls)
        experiment = functools.partial(race.run, lab.remotes[topology.ALICE], lab.remotes[topology.BOB], scenario,
                                       settings, setup)
        obs = self._captured(lab, log_dir, experiment) if exp.capture else experiment()
        obs.meta.update({"server": server_info, "mounts": mounts, "client_release": release, "nfs_module": nfs_module,
                         "server_release": lab.server.run("uname -r").stdout.strip(), "timings": dict(lab.timings)})
        (log_dir / "timeline.txt").write_text(
            "\n".join(f"{r.t:8.3f} {r.kind:7} {r.text}" for r in obs.reads) +
            f"\n--- ls -l\n{obs.ls_output}--- read after ls\n{obs.after_ls}\n")
        for name in (topology.ALICE, topology.BOB):
            nfs.umount(lab.remotes[name])
        return obs, release

    def _captured(self, lab: KernelLab, log_dir: Path, experiment):
        """Run the experiment under a capture of the server's NFS traffic, then decode it per client and phase
        (before/after t = 0) into the observation's meta["trace"]."""
        t = lab.live.topology
        iface = capture.server_interface(self.host.virsh("domiflist", t.domain(topology.SERVER),
                                                         step="capture: find interface"), t.nfs.name)
        pcap = log_dir / capture.PCAP_NAME
        cap = capture.Capture(self.host.netns_prefix(), iface, pcap, log_dir / "capture.log").start()
        changed = []
        try:
            obs = experiment(changed.append)
        finally:
            cap.stop()
        clients = {t.machine(name).nfs_ip: name for name in (topology.ALICE, topology.BOB)}
        if changed:
            obs.meta["trace"] = {"pcap": capture.PCAP_NAME, "interface": iface, "t0_host": changed[0],
                                 "clients": clients,
                                 **capture.summarise(capture.decode(pcap), clients, changed[0])}
        return obs

    def _after_error(self, error: LabError, log_dir: Path) -> None:
        """Keep the evidence, then drop a broken topology so the next cell gets a fresh one."""
        if self.lab is None:
            return
        for m in self.lab.remotes:
            console = self.lab.live.console_log(m)
            if console.exists():
                (log_dir / f"{m}.console.log").write_bytes(console.read_bytes()[-200_000:])
        if not self.lab.healthy():
            self.progress("topology broken: rebuilding it for the next cell")
            self._close_lab()

    # ---- topology per kernel -----------------------------------------------------------------------------
    def _lab_for(self, kernel_name: str) -> KernelLab:
        if self.lab_kernel == kernel_name and self.lab_error is not None:
            raise LabError(self.lab_error.reason, f"(as for this kernel's first cell) {self.lab_error.detail}")
        if self.lab is not None and self.lab_kernel == kernel_name:
            return self.lab
        self._close_lab()
        if kernel_name in self.unavailable:
            raise self.unavailable[kernel_name]
        self.lab_kernel, self.lab_error = kernel_name, None
        if self.box is None:
            self.prepare()
        try:
            client = kernels.check_files(kernels.resolve(self.matrix.kernel(kernel_name), self.home, self.box,
                                                         self.progress, self.matrix.timeouts.build))
        except KernelUnavailable as e:
            self.unavailable[kernel_name] = e
            raise
        except LabError as e:  # a failed build: its log is named once, the kernel's other cells reuse the error
            self.lab_error = Verdict.error(e.step, e.message, e.log)
            raise
        server = kernels.check_files(kernels.resolve(self.matrix.kernel(self.matrix.server), self.home, self.box,
                                                     build_timeout=self.matrix.timeouts.build))
        self.lab = self._boot(kernel_name, server, client)
        return self.lab

    def _boot(self, kernel_name: str, server: topology.KernelFiles, client: topology.KernelFiles) -> KernelLab:
        timeouts = self.matrix.timeouts
        lab_id = topology.new_lab_id()
        topo_dir = self.home.topologies / lab_id
        state = StateFile(topo_dir / "state.json")
        with _locked(self.home.topologies / ".slots.lock"):
            slot = topology.allocate_slot(self.home)
            state.set("slot", slot)
        state.set("run", str(self.run_dir.path.resolve()))
        state.set("pid", os.getpid())   # a dead pid marks it orphaned (SIGKILL)
        t = topology.plan(lab_id=lab_id, slot=slot, kernel_name=kernel_name, box=self.box.name,
                          server_kernel=server, client_kernel=client, ssh_key=self.home.ssh_key,
                          driver="kvm" if self.host.accel == "kvm" else "qemu", emulator=self.host.tcg_wrapper,
                          netns=self.host.netns, boot_timeout=timeouts.boot)
        live = topology.LiveTopology(t, self.host, topo_dir)
        self.progress(f"{kernel_name}: booting server, alice, bob (topology {lab_id})")
        try:
            live.create(progress=self.progress)
            remotes = {name: Remote(name, tgt.address, tgt.port, self.home.ssh_key, self.host.open_socket,
                                    topo_dir / f"{name}.log", command_timeout=timeouts.command)
                       for name, tgt in live.targets.items()}
            lab = KernelLab(live, remotes, client, timings={"up_s": round(live.timings["up"], 1)}, timeouts=timeouts)
            lab.timings["ssh_s"] = round(lab._each(lambda r: r.wait_ready(timeouts.ssh)), 2)
            for name in (topology.ALICE, topology.BOB):
                check_release(lab.remotes[name], client.release)
            nfs.preload_server(lab.server, timeout=timeouts.nfsd)
            for name in (topology.ALICE, topology.BOB):
                nfs.preload_client(lab.remotes[name], timeout=timeouts.mount)
            live.snapshot()
        except LabError as e:
            self.lab_error = Verdict.error(e.step, e.message, e.log)
            live.destroy()
            raise
        self.progress(f"{kernel_name}: topology up in {lab.timings['up_s']}s")
        return lab

    def _close_lab(self) -> None:
        if self.lab is not None:
            self.progress(f"{self.lab_kernel}: destroying topology")
            self.lab.close()
        self.lab, self.lab_kernel = None, None

    def close(self, keep: bool = False) -> topology.Topology | None:
        """Destroy the topology this runner owns (the host stays for other runners; `lab clean` removes it). With
        keep, leave it up as the last cell left it, marked kept in its state file, and return it."""
        kept = None
        if keep and self.lab is not None:
            self.lab.disconnect()
            self.lab.live.state.set("kept", True)
            kept = self.lab.live.topology
            self.lab, self.lab_kernel = None, None
        self._close_lab()
        self.host.unregister_user()
        return kept


def check_release(remote: Remote, release: str) -> None:
    """The VM must run the kernel the row is about; anything else would put a wrong result in the table."""
    running = remote.run("uname -r", step=f"{remote.name}: kernel").stdout.strip()
    if release and running != release:
        raise LabError(f"{remote.name}: kernel", f"expected kernel {release}, the VM runs {running}", remote.log)


def runs_to_do(cells: list[Cell], repeats: int, done: set[tuple[str, int]]) -> list[tuple[Cell, int]]:
    """(cell, repeat) still to run, cell by cell so that a cell's runs share its kernel's topology; `done` is
    RunDir.finished_runs() of a resumed run (a run that ended in a lab ERROR is not done)."""
    return [(cell, k) for cell in cells for k in range(1, repeats + 1) if (cell.id, k) not in done]


def experiment_meta(matrix: Matrix, repeats: int) -> dict:
    """What run.json records of how cells ran and were judged: the table's criterion line reads it."""
    exp = matrix.experiment
    return {"name": exp.name, "pass_within": exp.pass_within, "duration": exp.duration, "interval": exp.interval,
            "settle": exp.settle, "repeats": repeats, "trace_syscalls": exp.trace_syscalls}


def _relative(log: str | None, base: Path) -> str | None:
    if not log:
        return None
    try:
        return str(Path(log).relative_to(base))
    except ValueError:
        return log
