"""Running a matrix's runs with several workers at once (`lab run --jobs N`), and with one, as before.

Design. Each worker is a thread that owns one `Runner`, hence its own topology: its own three VMs, its own two
networks and slot (a /24 pair), its own ssh connections and results file (`results-w1.jsonl`, …). Nothing of NFS
is shared between two cells that run at once — no server, mount, client id, delegation or file — so a cell sees
what it would see alone; only the host's CPUs and memory are shared, and the fidelity test (tests/lab/
test_concurrency.py) checks that the verdicts and windows stay the same. Threads suffice: a worker waits on ssh
and subprocesses nearly all the time.

The runs to do are cut into shards (lab/schedule.py): a kernel's runs stay together on one topology (one boot),
a long row may be split in two, and the longest shards go first; each worker takes the next shard when it is
free. What the workers share is locked where it is written: host preparation and the box (Runner.prepare), a
kernel's files (Runner._files), a topology's slot and state file (lab/topology/resources.py `reserve`), the first upload of
a box into the pool (`box_upload_guard`), the host lease (a count per process, lab/host.py `HostLease`), progress
(lab/progress.py). Results need no lock: each worker appends to its own file. The CPUs are shared by three rules:
one boot at a time (lab/runner.py `_boot_turn`); a booting or reverting topology's qemu threads at a low priority
(lab/cpushare.py); and a boot, a reset or a cell's NFS set-up waits (at most seconds) while another worker's cell
is in its critical seconds around bob's change (lab/quiet.py), so the cells of the other workers keep their read
period.

A lab failure stays in its cell (ERROR, and the worker's runner rebuilds its topology), as with one worker. A bug
(any other exception) stops every worker, and is raised again once they have stopped. Ctrl-C or SIGTERM reaches
the main thread only: it sets the stop flag, breaks every worker's ssh connections and ends the commands this
process started (by their pids), so each run in flight ends within seconds, without a record (`--resume` runs it
again); the caller then destroys every topology (`close`) and releases the host. Records already written stay.
After a SIGKILL, state files written before any resource existed let `lab clean` (or the next run) remove all.
"""
from __future__ import annotations

import os
import signal
import threading
from collections import deque
from pathlib import Path

from . import schedule
from .libvirt import LibvirtTarget
from .log import log
from .paths import LabHome
from .remotelibvirt import lab_host
from .results import RunDir
from . import runner as runners
from .runner import Cancelled
from .spec import Matrix

#: how long the workers get to end their runs after a stop, before the caller tears everything down anyway
STOP_GRACE_S = 60.0


class Workers:
    """Runs (cell, repeat) units with `jobs` workers into one run directory; `shown` is the run's RunProgress.
    Use `run(todo)`, then always `close()` (in a finally) before releasing the host."""

    def __init__(self, matrix: Matrix, run_dir: RunDir, jobs: int, shown, home: LabHome | None = None,
                 keep: bool = False, runner=None, keep_failing: bool = False, libvirt: LibvirtTarget | None = None):
        self.matrix, self.run_dir, self.jobs, self.shown = matrix, run_dir, max(1, jobs), shown
        self.keep = keep              # `--keep`: no topology is destroyed before close() picks the one to keep
        self.keep_failing = keep_failing   # `--keep-failing`: the first failing run's topology is set aside
        self._failing_kept = False
        self.home = home or LabHome.default()
        self.libvirt = libvirt or LibvirtTarget()   # every worker's topology goes there (--libvirt-uri)
        self.host = lab_host(self.home, self.libvirt)
        self._new_runner = runner     # a Runner class or factory (tests script one); default lab/runner.py's
        self.runners: list = []
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.last = None              # the runner whose run finished last: `--keep` keeps its topology
        self._lock = threading.Lock()
        self._claim_lock = threading.Lock()
        self._busy = 0                # workers not yet ended; _all_done is set when the last one ends
        self._all_done = threading.Event()

    # ---- running ---------------------------------------------------------------------------------------------
    def run(self, todo: list, repeats: int) -> None:
        """Run every unit; KeyboardInterrupt (Ctrl-C, SIGTERM) once the workers have stopped."""
        if self.jobs == 1:
            return self._run_here(todo, repeats)
        shards = schedule.make_shards(todo, self.jobs, self._seconds_of())
        for line in schedule.plan_lines(shards, self.jobs)[:1]:
            log.info("%s", line)
        for i, shard in enumerate(shards, 1):
            log.debug("shard %d: %s", i, shard.label)
        queue = deque(shards)
        workers = [self._runner(f"w{i}") for i in range(1, min(self.jobs, len(shards)) + 1)]
        self._busy = len(workers)
        threads = [threading.Thread(target=self._work, args=(r, queue, repeats), name=f"lab-{r.worker}",
                                    daemon=True) for r in workers]
        for t in threads:
            t.start()
        # an Event, not Thread.join: a KeyboardInterrupt inside join() can leave a running thread reported as
        # ended (seen in tests/unit/test_parallel.py's Ctrl-C test), and the teardown would then not wait for it
        try:
            while not self._all_done.wait(0.5):
                pass
        except KeyboardInterrupt:
            self.halt()
            if not self._all_done.wait(STOP_GRACE_S):
                log.warning("workers still busy after %.0fs: tearing down anyway", STOP_GRACE_S)
            raise
        if self.errors:
            raise self.errors[0]

    def _run_here(self, todo: list, repeats: int) -> None:
        """One worker: the runs in order, in this thread (Ctrl-C interrupts the command in flight directly)."""
        runner = self._runner(None)
        for cell, k in todo:
            self.shown.start(cell, k)
            self.shown.done(cell, k, runner.run_cell(cell, k, repeats))
            self.last = runner

    def _runner(self, worker: str | None):
        progress = self.shown.phase if worker is None else self.shown.phase_for(worker)
        new = self._new_runner or runners.Runner
        runner = new(self.matrix, self.run_dir, home=self.home, progress=progress, worker=worker, libvirt=self.libvirt)
        runner.stop = self.stop
        if self.keep_failing:
            runner.keep_failing = self._first_failing
        self.runners.append(runner)
        return runner

    def _work(self, runner, queue: deque, repeats: int) -> None:
        name = runner.worker
        try:
            while not self.stop.is_set():
                with self._lock:
                    shard = queue.popleft() if queue else None
                if shard is None:
                    break
                for cell, k in shard.units:
                    if self.stop.is_set():
                        return
                    self.shown.start(cell, k, name)
                    try:
                        record = runner.run_cell(cell, k, repeats)
                    except Cancelled:
                        self.shown.stopped(name)
                        return
                    self.shown.done(cell, k, record, name)
                    with self._lock:
                        self.last = runner
            if not self.stop.is_set() and not self.keep:
                runner.close()      # nothing left for it: its VMs give their CPU and memory to the others
        except BaseException as e:   # a bug: every worker stops, and the caller sees it
            self.shown.stopped(name)
            with self._lock:
                self.errors.append(e)
            self.halt()
        finally:
            with self._lock:
                self._busy -= 1
                if self._busy == 0:
                    self._all_done.set()

    def _first_failing(self) -> bool:
        """True once: for the first failing run of the whole run, whichever worker ran it."""
        with self._claim_lock:
            first, self._failing_kept = not self._failing_kept, True
            return first

    def halt(self) -> None:
        """Stop every worker now: no new run starts, ssh connections break, this process's commands end."""
        self.stop.set()
        for r in list(self.runners):
            r.abort()
        end_children()

    def _seconds_of(self):
        """A unit's expected length: measured in this run (a resumed one) or the latest earlier run beside it,
        else by the verdict history expects (lab/schedule.py)."""
        measured = schedule.measured_seconds(previous_records(self.run_dir))
        return lambda cell: schedule.unit_seconds(cell, self.matrix.expected(cell), measured)

    # ---- the end -------------------------------------------------------------------------------------------
    def close(self, keep: bool = False):
        """Destroy every worker's topology; with keep, leave the one of the run that finished last up and return
        its Topology (lab/runner.py Runner.close). Under --keep-failing the topology set aside by the first failing
        run is already out of the runners' hands: it stays, and is the one returned."""
        kept = None
        for r in self.runners:
            if keep and r is self.last:
                kept = r.close(keep=True)
            else:
                r.close()
        return kept or self.kept_failing()[0]

    def kept_failing(self) -> tuple:
        """(Topology, cell id) set aside under --keep-failing, or (None, None)."""
        for r in self.runners:
            if getattr(r, "kept_topology", None) is not None:
                return r.kept_topology, r.kept_cell
        return None, None


def resolve_jobs(jobs: int | str, units: int) -> int:
    """`--jobs` as a number of workers: `auto` asks this host (lab/schedule.py `auto_jobs`); never more workers
    than units to run."""
    if jobs == "auto":
        return schedule.auto_jobs(os.cpu_count() or 1, mem_available_mib(), units)
    return max(1, min(int(jobs), max(1, units)))


def mem_available_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 0


def previous_records(run_dir: RunDir) -> list:
    """The records of this run directory and of the newest other run directory beside it that has results: what
    the scheduler knows of how long each cell takes."""
    dirs = [run_dir.path]
    try:
        siblings = [d for d in run_dir.path.parent.iterdir()
                    if d.is_dir() and d.resolve() != run_dir.path.resolve() and any(d.glob("results-*.jsonl"))]
    except OSError:
        siblings = []
    if siblings:
        dirs.append(max(siblings, key=lambda d: max(f.stat().st_mtime for f in d.glob("results-*.jsonl"))))
    records = []
    for d in dirs:
        try:
            records += RunDir(d).runs()
        except Exception as e:  # noqa: BLE001  (a guess at durations must never stop a run)
            log.debug("durations from %s: %s", d, e)
    return records


def children(pid: int | None = None) -> list[int]:
    """The pids whose parent is this process (or `pid`): the commands it started (virsh, vagrant, dumpcap…)."""
    parent = os.getpid() if pid is None else pid
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 1 and int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def end_children() -> list[int]:
    """SIGTERM every command this process started and that still runs, by pid; a worker waiting on one then
    sees it fail and stops. (With one worker Ctrl-C does this by itself: subprocess kills the child it waits
    for.) vagrant, killed here, ends its own children; they die with it (lab/topology/live.py `_die_with_parent`)."""
    ended = []
    for pid in children():
        try:
            os.kill(pid, signal.SIGTERM)
            ended.append(pid)
        except ProcessLookupError:
            pass
    return ended
