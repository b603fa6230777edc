"""Runs cells: the one path `lab run` and `pytest --matrix` share (spec → topology → run → observation → verdict
→ result record).

One `KernelLab` (topology + ssh connections, lab/kernellab.py) per kernel, reused by all of that kernel's cells:
the VMs are snapshotted after boot, before any NFS state, and reverted between cells. Any lab failure becomes an
ERROR verdict with the failing step and the log path; the topology is then rebuilt for the next cell if it is
broken.

A Runner is one worker: it owns at most one topology and holds a HostLease while it may need the host. Several
runners may work side by side (xdist workers as processes, `lab run --jobs N` workers as threads, lab/parallel.py):
each writes its own results file (`worker`), and what they share is locked: preparing the host and the box, getting
a kernel's files (one build or download at a time), the slot of a new topology (lab/topology/resources.py `reserve`).
Runners that are threads of one process also keep out of each other's critical seconds: a cell announces the seconds
around bob's change, and a boot, a reset or a cell's NFS set-up waits while another runner's are on (lab/quiet.py).
"""
from __future__ import annotations

import functools
import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from . import adhoc, capture, kernels, nfs, quiet, topology
from .axes import cell_setup
from .boxes import Box, ensure_box
from .cleanup import clean_orphans
from .errors import KernelUnavailable, LabError
from .experiments import EXPERIMENTS, race
from .host import HostLease
from .kernellab import KernelLab, boot_lab
from .libvirt import LibvirtTarget
from .outcome import Criteria, Verdict, classify
from .paths import LabHome
from .remotelibvirt import lab_host
from .results import ResultRecord, RunDir, now_iso, worker_name
from .spec import Cell, Matrix
from .state import locked


def _quiet(msg: str) -> None:
    pass


#: one topology boots at a time in a process (Runner._boot_turn)
BOOTS = threading.BoundedSemaphore(1)


class Cancelled(Exception):
    """A run cut short because the whole run is stopping (Ctrl-C under `lab run --jobs N`): it has no record, and
    `--resume` runs it again."""


class Runner:
    """Runs cells of one matrix into one run directory, owning at most one topology at a time."""

    def __init__(self, matrix: Matrix, run_dir: RunDir, home: LabHome | None = None, progress=_quiet,
                 worker: str | None = None, libvirt: LibvirtTarget | None = None):
        self.matrix = matrix
        self.run_dir = run_dir
        self.home = home or LabHome.default()
        self.progress = progress
        self.worker = worker        # its results file and records' `worker`; None: the process's (xdist or main)
        self.host = lab_host(self.home, libvirt)   # the lab's own libvirtd, or a remote one (--libvirt-uri)
        self.lease = HostLease(self.host)
        self.box: Box | None = None
        self.lab: KernelLab | None = None
        self.lab_kernel: str | None = None
        self.lab_error: Verdict | None = None   # a kernel whose topology could not come up: its cells ERROR
        self.unavailable: dict[str, KernelUnavailable] = {}   # kernels that cannot be had: asked once
        self.stop = None            # a threading.Event set when the run is stopping (lab/parallel.py)
        # `lab run --keep-failing`: asked once per failing run, True for the one whose topology is to be kept (the
        # run's first failing one, lab/parallel.py); that topology is then set aside as the cell left it
        self.keep_failing = None
        self.kept_topology: topology.Topology | None = None
        self.kept_cell: str | None = None
        # where this runner's cells announce their critical seconds and its heavy phases wait for the other
        # runners' (lab/quiet.py); the process's one, so that the workers of `lab run --jobs N` see each other
        self.quiet = quiet.WINDOWS

    # ---- preparation -------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Host namespace + daemons and the box (both cached; seconds when they exist)."""
        self.home.ensure()
        with locked(self.home.state / "prepare.lock"):
            self.lease.acquire()
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
            if self.stop is not None and self.stop.is_set():   # the failure is the stop's doing, not the lab's
                raise Cancelled(f"{cell.id}: {e.step}") from None
            verdict = Verdict.error(e.step, e.message, _relative(e.log, self.run_dir.path))
            self._after_error(e, log_dir, cell)
        if verdict.status == "fail":
            self._keep_if_first_failing(cell)
        record = ResultRecord(
            run_id=self.run_dir.run_id, cell_id=cell.id, kernel=cell.kernel, params=dict(cell.params),
            verdict=verdict.to_dict(), expected=kernel.expected(cell.params), started=started_iso,
            duration_s=round(time.monotonic() - started, 1), worker=self.worker or worker_name(),
            observation=observation.to_dict() if observation else None,
            logs=str(log_dir.relative_to(self.run_dir.path)), kernel_release=release, repeat=repeat,
            repeats=repeats)
        (log_dir / "result.json").write_text(json.dumps(json.loads(record.to_json()), indent=1) + "\n")
        self.run_dir.append(record, self.worker)
        return record

    def _run_on(self, lab: KernelLab, cell: Cell, log_dir: Path):
        setup = cell_setup(cell.params)
        exp = self.matrix.experiment
        self.progress(f"{cell.id}: reset")
        if lab.fresh:
            lab.reset()           # just booted: nothing to revert, so nothing to wait for
        else:
            with self._quiet_turn("reset", cell.id) as waited:
                lab.reset()
            lab.timings[quiet.timing_key("reset")] = waited
        self.progress(f"{cell.id}: nfs server + mounts")
        with self._quiet_turn("nfs", cell.id) as waited:
            server_info = nfs.start_server(lab.server, setup, lab.live.topology.nfs.cidr, timeout=lab.timeouts.nfsd)
            scenario = EXPERIMENTS[exp.name](lab.server)
            mounts = {name: nfs.mount(lab.remotes[name], lab.server_ip, setup, timeout=lab.timeouts.mount)
                      for name in (topology.ALICE, topology.BOB)}
            release = lab.remotes[topology.ALICE].run("uname -r").stdout.strip()
            nfs_module = nfs.client_module(lab.remotes[topology.ALICE], lab.client_files.nfs_modules)
        lab.timings[quiet.timing_key("nfs")] = waited
        self.progress(f"{cell.id}: {exp.name} experiment (at most {exp.duration:.0f}s)")
        settings = race.Settings(duration=exp.duration, interval=exp.interval, settle=exp.settle,
                                 finish=lab.timeouts.experiment, trace_syscalls=exp.trace_syscalls)
        critical = self._critical(cell)

        def experiment(on_change=lambda t0: None):
            def changed(t0):
                critical(t0)
                on_change(t0)
            return race.run(lab.remotes[topology.ALICE], lab.remotes[topology.BOB], scenario, settings, setup,
                            on_change=changed, on_planned=critical)
        try:
            obs = self._captured(lab, log_dir, experiment) if exp.capture else experiment()
        finally:
            self.quiet.withdraw(self)   # alice's reads are in: nothing of this cell needs quiet any more
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

    def _after_error(self, error: LabError, log_dir: Path, cell: Cell) -> None:
        """Keep the evidence, then drop a broken topology so the next cell gets a fresh one (or, under
        --keep-failing, set it aside as it is: broken VMs are what there is to debug)."""
        if self.lab is None:
            return
        for m in self.lab.remotes:
            console = self.lab.live.console_log(m)
            if console.exists():
                (log_dir / f"{m}.console.log").write_bytes(console.read_bytes()[-200_000:])
        if self._keep_if_first_failing(cell):
            return
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
            client = self._files(kernel_name, self.progress)
        except KernelUnavailable as e:
            self.unavailable[kernel_name] = e
            raise
        except LabError as e:  # a failed build: its log is named once, the kernel's other cells reuse the error
            self.lab_error = Verdict.error(e.step, e.message, e.log)
            raise
        server = self._files(self.matrix.server)
        try:
            with self._boot_turn(kernel_name) as waited:
                self.lab = boot_lab(self.host, box=self.box.name, kernel_name=kernel_name, server=server,
                                    client=client, timeouts=self.matrix.timeouts, run=self.run_dir.path.resolve(),
                                    progress=self.progress)
            self.lab.timings[quiet.timing_key("boot")] = waited
        except LabError as e:
            self.lab_error = Verdict.error(e.step, e.message, e.log)
            raise
        return self.lab

    @contextmanager
    def _boot_turn(self, kernel_name: str):
        """One boot at a time in this process. A boot is ~36 s of nearly pure CPU for three TCG guests; six at once
        on 2 cores took 155 s each and, worse, shifted the windows of the cells other workers were running by up to
        4 s (docs/performance.md, "Concurrency"). The one boot then runs at a low priority too (boot_lab, through
        lab/cpushare.py), so that those cells keep their read period, and once its turn has come it still waits
        while another worker's cell is in its critical seconds (`_quiet_turn`); yields the seconds that took.
        Waiting ends early when the run stops."""
        if not BOOTS.acquire(blocking=False):
            self.progress(f"{kernel_name}: waiting for another worker's boot to finish")
            while not BOOTS.acquire(timeout=1.0):
                if self.stop is not None and self.stop.is_set():
                    raise Cancelled(f"{kernel_name}: boot")
        try:
            with self._quiet_turn("boot", kernel_name) as waited:
                yield waited
        finally:
            BOOTS.release()

    @contextmanager
    def _quiet_turn(self, phase: str, what: str):
        """A heavy phase of this worker (lab/quiet.py PHASES) starts once no other worker's cell is in its critical
        seconds, or after quiet.MAX_WAIT_S; yields the seconds it waited (0.0 with one worker). The wait ends early
        when the run stops, and the run then stops here (Cancelled), as a boot's turn does."""
        def notice(window):
            self.progress(f"{what}: {phase} waits for the critical seconds of {window.label or 'another cell'}")
        with self.quiet.turn(self, phase, stop=self.stop, notice=notice) as waited:
            if self.stop is not None and self.stop.is_set():
                raise Cancelled(f"{what}: {phase}")
            if waited:
                self.progress(f"{what}: {phase} (after {waited:.1f}s waiting for quiet)")
            yield round(waited, 2)

    def _critical(self, cell: Cell):
        """What the experiment calls with the host time of bob's change (planned, then done): the window of this
        cell's critical seconds announced to the other workers — from one read interval before the change to
        pass_within and one read interval after it (lab/quiet.py says why)."""
        exp = self.matrix.experiment
        return functools.partial(self.quiet.announce_change, self, before=exp.interval,
                                 after=exp.pass_within + exp.interval, label=f"{self.worker or 'main'} {cell.id}")

    def _files(self, kernel_name: str, progress=_quiet):
        """A kernel's bootable files, fetched or built once (cached). One at a time across runners: the apt
        lists and build trees under the lab home are shared, and two workers may want one kernel at once. A URL
        spec in this run directory (`lab run --kernel URL`) is then pinned to what was downloaded (lab/adhoc.py)."""
        kernel = self.matrix.kernel(kernel_name)
        with locked(self.home.kernels / ".resolve.lock"):
            files = kernels.check_files(kernels.resolve(kernel, self.home, self.box, progress,
                                                        self.matrix.timeouts.build))
            adhoc.pin(kernel, self.run_dir.path, self.home)
            return files

    def _keep_if_first_failing(self, cell: Cell) -> bool:
        """Under --keep-failing, the first failing (or ERROR) run of the whole run leaves its topology up as the run
        left it, marked kept in its state file (`lab status`, `lab ssh`, `lab down`, `lab clean` find it there);
        this runner's next cell boots a fresh topology, so nothing more happens on the kept one."""
        if self.lab is None or self.keep_failing is None or not self.keep_failing():
            return False
        self.lab.disconnect()
        self.lab.live.state.set("kept", True)
        self.kept_topology, self.kept_cell = self.lab.live.topology, cell.id
        self.progress(f"{cell.id}: failed; its topology stays up as the cell left it (later cells get a fresh one)")
        self.lab, self.lab_kernel = None, None
        return True

    def _close_lab(self) -> None:
        if self.lab is not None:
            self.progress(f"{self.lab_kernel}: destroying topology")
            self.lab.close()
        self.lab, self.lab_kernel = None, None

    def abort(self) -> None:
        """From another thread, when the run stops: break this runner's ssh connections, so that a cell in flight
        fails now rather than after its timeouts (its host commands are ended by lab/parallel.py)."""
        lab = self.lab
        if lab is not None:
            lab.disconnect()

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
        self.lease.release()
        return kept


def _relative(log: str | None, base: Path) -> str | None:
    if not log:
        return None
    try:
        return str(Path(log).relative_to(base))
    except ValueError:
        return log
