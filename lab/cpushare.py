"""Booting VMs yield the CPU to the cells that run meanwhile (issue 15): while a topology boots or is reverted,
every thread of its qemu processes runs at nice YIELD_NICE, and is back at its own priority before a cell runs.

Why. Under `lab run --jobs N` one worker boots its three TCG guests (20–56 s of nearly pure CPU on 2 cores, measured)
while other workers' cells are in their critical seconds: alice reads on a fixed 0.5 s tick while bob renames.
Measured (docs/performance.md, "Concurrency"): the reads of those cells drifted to gaps of 1.1–1.6 s, and a gap is
the resolution of every window the verdict reports. Boots are already one at a time per process (lab/runner.py
`Runner._boot_turn`); this makes the one boot give way too. A reset between two cells is the same kind of burst on
a smaller scale (≈ 6 s: three RAM images loaded, then the guests' sshd answering the checks), so it yields too; the
NFS set-up and the experiment that follow are the cell's own and run at its own priority (lab/kernellab.py).

Why a nice, and why 19. The scheduler shares a core by weight (the kernel's sched_prio_to_weight: 1024 at nice 0,
110 at nice 10, 15 at nice 19), and it is work-conserving: a niced boot loses only the CPU that the cells actually
ask for, and they ask for little (the guests idle between alice's reads), so the boot still gets the rest of the
machine. 19 rather than 10 because what a cell needs is each read served as soon as alice's guest wakes for it,
not a share over seconds, and the less a running thread weighs, the sooner the scheduler prefers a woken one to it.
Stronger means were not taken: a pause (SIGSTOP) or SCHED_IDLE (weight 3) could starve a boot past Vagrant's boot
timeout, an ERROR; a nice can only slow it down. How much it helps is for bench/concurrency.py to measure
(docs/performance.md, "Concurrency").

Why every thread, found again and again. Linux's nice belongs to a thread: setpriority(PRIO_PROCESS, pid) changes
the one thread whose TID is pid, and a qemu's guest CPU runs in a thread of its own ("CPU 0/TCG"). So each TID in
/proc/PID/task is set. Nothing the lab starts passes a priority on to qemu: qemu is a child of the lab's private
libvirtd (lab/host.py), started in the middle of `vagrant up`, so the priority cannot be set before it exists.
Hence a background thread that every INTERVAL_S finds the domains' qemu processes (a provisioned box's reload
starts a new one under a new PID) and their threads, and sets those still above YIELD_NICE: a new thread inherits
the nice of the thread that makes it, so that is a thread made by one not yet lowered (qemu's worker pool comes
and goes).

Which processes. Only the qemu of the domains given, and only domains named `nfslab-…` (the lab's own): found by
libvirt's pid file (lab/host.py LIBVIRT_QEMU_RUN/<domain>.pid), believed only if that process's command line names
the domain (`-name guest=<domain>,…`: a stale pid file may name a reused pid), else by that name in /proc/*/cmdline.

Back before a cell runs. On leaving, each thread we changed gets the nice it had, and a thread born at YIELD_NICE
(from one we had changed) gets its process's nice as first seen; a thread that was that low before we came, or
whose nice someone else changed meanwhile, is left alone. The pass repeats until it changes nothing, since a
thread may be born from one not yet restored. Raising a priority again needs CAP_SYS_NICE: the lab runs as root.

Nothing here raises into the boot: a process or thread that ends between being listed and being set (ESRCH), a
/proc entry that vanishes, a refusal (EPERM) are logged at debug and skipped.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from .host import LIBVIRT_QEMU_RUN
from .log import log
from .paths import PREFIX

#: the nice of a booting topology's qemu threads (see the module's docstring for why 19)
YIELD_NICE = 19
#: how often the domains' processes and threads are looked for again while yielding
INTERVAL_S = 0.5
#: at most this many restore passes (each one after the first only sees threads born during the one before)
RESTORE_PASSES = 5
#: /proc and libvirt's pid files, for the processes; the unit tests point both elsewhere (tests/unit/conftest.py)
PROC = Path("/proc")
PID_DIR = LIBVIRT_QEMU_RUN


def guest_name(cmdline: bytes) -> str | None:
    """The domain a qemu command line runs (`-name guest=<domain>,debug-threads=on`), else None. QEMU doubles a
    comma inside an option value; the lab's domain names have none."""
    args = cmdline.split(b"\0")
    for flag, value in zip(args, args[1:]):
        if flag == b"-name" and value.startswith(b"guest="):
            return value[len(b"guest="):].split(b",")[0].decode(errors="replace")
    return None


def lab_domains(domains) -> list[str]:
    """The lab's own domains among `domains` (`nfslab-<lab id>-<machine>`): nothing else is ever touched."""
    return [d for d in domains if d.startswith(f"{PREFIX}-")]


def stat_nice(text: str) -> int | None:
    """The nice of a /proc/…/stat line (field 19). The command name (field 2) may hold spaces and parentheses
    ("CPU 0/TCG"), so the fields are counted from its closing parenthesis."""
    try:
        return int(text[text.rindex(")") + 2:].split()[16])
    except (ValueError, IndexError):
        return None


def _setpriority(tid: int, nice: int) -> None:
    os.setpriority(os.PRIO_PROCESS, tid, nice)


class Procs:
    """Where the domains' qemu processes and their threads are read: a /proc tree (the real one, or a test's) and
    libvirt's directory of pid files."""

    def __init__(self, root: Path | None = None, pid_dir: Path | None = None):
        self.root = Path(PROC if root is None else root)
        self.pid_dir = Path(PID_DIR if pid_dir is None else pid_dir)

    def runs(self, pid: int, domain: str) -> bool:
        try:
            return guest_name((self.root / str(pid) / "cmdline").read_bytes()) == domain
        except OSError:
            return False

    def find(self, domains) -> dict[str, int]:
        """domain → pid of its running qemu, for those of `domains` (the lab's own only) that have one now."""
        wanted = lab_domains(domains)
        found = {}
        for d in wanted:
            try:
                pid = int((self.pid_dir / f"{d}.pid").read_text().strip())
            except (OSError, ValueError):
                continue
            if self.runs(pid, d):
                found[d] = pid
        missing = set(wanted) - set(found)
        if missing:
            found.update(self._scan(missing))
        return found

    def _scan(self, domains: set[str]) -> dict[str, int]:
        found = {}
        try:
            entries = [p for p in self.root.iterdir() if p.name.isdigit()]
        except OSError:
            return found
        for p in entries:
            try:
                name = guest_name((p / "cmdline").read_bytes())
            except OSError:
                continue
            if name in domains:
                found[name] = int(p.name)
        return found

    def threads(self, pid: int) -> list[int]:
        try:
            return sorted(int(t.name) for t in (self.root / str(pid) / "task").iterdir() if t.name.isdigit())
        except OSError:
            return []

    def nice(self, pid: int, tid: int) -> int | None:
        try:
            return stat_nice((self.root / str(pid) / "task" / str(tid) / "stat").read_text())
        except OSError:
            return None


class Yielding:
    """A context manager: while inside, the qemu threads of `domains` run at `nice`; on leaving, they are back.
    `apply()` and `restore()` are the two passes (the background thread repeats `apply`)."""

    def __init__(self, domains, nice: int = YIELD_NICE, interval: float = INTERVAL_S, procs: Procs | None = None,
                 setpriority=_setpriority):
        if not 0 < nice <= 19:
            raise ValueError(f"nice {nice}: a yielding nice is 1…19")
        self.domains = lab_domains(domains)
        self.nice, self.interval = nice, interval
        self.procs = procs or Procs()
        self.setpriority = setpriority
        self.original: dict[tuple[int, int], int] = {}   # (pid, tid) → its nice before we set it
        self.baseline: dict[int, int] = {}                # pid → its main thread's nice when first seen
        self.untouched: set[tuple[int, int]] = set()      # (pid, tid) already at `nice` or lower when first seen
        self.restored = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()   # a pass of the background thread and the restore never overlap

    # ---- the passes ----------------------------------------------------------------------------------------
    def apply(self) -> int:
        """One pass: every thread of the domains' qemu processes that runs above `nice` is set to it; how many
        were set. Never raises."""
        changed = 0
        with self._lock:
            try:
                for domain, pid in self.procs.find(self.domains).items():
                    first_sight = pid not in self.baseline
                    if first_sight:
                        main = self.procs.nice(pid, pid)
                        if main is None:
                            continue
                        self.baseline[pid] = main
                    for tid in self.procs.threads(pid):
                        now = self.procs.nice(pid, tid)
                        if now is not None and now >= self.nice and first_sight:
                            self.untouched.add((pid, tid))   # that low before we came: not ours to raise
                        if now is None or now >= self.nice:
                            continue
                        if self._set(tid, self.nice, domain):
                            self.original.setdefault((pid, tid), now)
                            changed += 1
            except Exception as e:  # noqa: BLE001  (yielding is a courtesy: it never fails a boot)
                log.debug("cpushare: %s: %s", ", ".join(self.domains), e)
        return changed

    def restore(self) -> int:
        """Every thread still at `nice` because of us back to its own nice, pass after pass until one changes
        nothing; how many were set. Never raises."""
        total = 0
        with self._lock:
            for _ in range(RESTORE_PASSES):
                try:
                    changed = self._restore_pass()
                except Exception as e:  # noqa: BLE001
                    log.debug("cpushare: restore %s: %s", ", ".join(self.domains), e)
                    break
                total += changed
                if not changed:
                    break
        self.restored += total
        return total

    def _restore_pass(self) -> int:
        changed = 0
        for domain, pid in self.procs.find(self.domains).items():
            if pid not in self.baseline:
                continue                 # a process first seen now was never set by us
            for tid in self.procs.threads(pid):
                if (pid, tid) in self.untouched:
                    continue
                target = self.original.get((pid, tid), self.baseline[pid])
                if target < self.nice and self.procs.nice(pid, tid) == self.nice and self._set(tid, target, domain):
                    changed += 1
        return changed

    def _set(self, tid: int, nice: int, domain: str) -> bool:
        try:
            self.setpriority(tid, nice)
            return True
        except OSError as e:            # ESRCH: the thread ended; EPERM: not ours to change
            log.debug("cpushare: %s thread %d → nice %d: %s", domain, tid, nice, e)
            return False

    # ---- the background thread ------------------------------------------------------------------------------
    def __enter__(self) -> "Yielding":
        if not self.domains:
            return self
        self.apply()
        self._thread = threading.Thread(target=self._loop, name=f"cpushare-{self.domains[0]}", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.apply()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.domains:
            self.restore()
            log.debug("cpushare: %s: %d thread(s) of %d process(es) yielded (nice %d), %d restored",
                      ", ".join(self.domains), len(self.original), len(self.baseline), self.nice, self.restored)


def yielding(domains, **kwargs) -> Yielding:
    """`with yielding(topology.domains): …` — the topology's qemu threads at nice YIELD_NICE inside, back after."""
    return Yielding(domains, **kwargs)
