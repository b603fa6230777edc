"""Quiet seconds for running cells (issue 15): under `lab run --jobs N`, a worker's heavy phases — a boot, a reset
between two cells, a cell's NFS set-up and mounts — wait before they start while another worker's cell is in its
critical seconds. A process-wide registry of those seconds (`WINDOWS`): cells announce them, heavy phases wait.

Why. Booting and reverting topologies already run their qemu threads at nice 19 (lab/cpushare.py), yet measured with
bench/concurrency.py and 3 workers, a passing cell's reads still got gaps of 1.0–1.6 s on a 0.5 s tick; the 1.62 s
gap of debian-5.10/vers=4.0/leases=off happened while another worker reverted its RAM snapshot and then set up NFS
and its mounts. A nice does not hold back what it cannot reach: a revert starts new qemu processes (found only on
cpushare's next 0.5 s poll, at nice 0 meanwhile) and loads three RAM images (memory and IO, not CPU time), and the
NFS set-up is not niced at all. A passing cell is judged by "new data within pass_within of the change" (2 s in the
default matrix): a 1.6 s gap there can decide the verdict. So the heavy phases step aside for those seconds.

Which seconds. From one read interval before bob's change until pass_within plus one read interval after it: the
read just before the change and the first reads after it are what the criterion judges, and a read interval is the
resolution of the timeline. The host knows them ahead: lab/experiments/race.py plans the change on the host clock as
soon as bob has touched the directory (`change_at`: his touch + Timing.dir_changed = 5 s, so a little less than 5 s
ahead once his ssh command has returned), and hands that to `on_planned`; the window is announced then, for the
future, so a phase that would start just before the change waits too. When bob's command has returned, the window is
announced again around the real t = 0 (`on_change`): a change that ran late on a loaded guest is still covered. Once
the experiment is over the cell withdraws its windows. Not covered, on purpose: the seconds before the change (bob's
touch, alice's fetch of the directory), and the end of a failing cell's window, which comes from the client's
attribute cache tens of seconds later. Holding phases back for those would make every boot and reset wait for whole
failing cells.

Which phases wait, and for which windows. A phase waits while a window of another owner (a Runner: one worker) is
open now or opens before the phase would be over: `lead`, how long the same phase took last time in this process,
or, before any was measured, any window announced (announcements come at most Timing.dir_changed ahead, less than
any heavy phase measured: boot 20–56 s, revert + ssh checks ≈ 6 s, NFS set-up ≈ 6 s, docs/performance.md). A phase
never waits for its own owner's windows. A phase already running when a window is announced goes on (a running
revert is not paused; cpushare's nice still applies to it).

How long. At most MAX_WAIT_S per call, then the phase starts anyway (logged at debug): a heavy phase must never
starve. In the default matrix a window ends at most 7.5 s after it was announced (5 s ahead of the change, then
pass_within 2 s and one 0.5 s interval after it), so 10 s lets a phase sit out one window announced just as it
arrived, with room for a late change; it does not let back-to-back windows of two other workers hold it longer. The
wait ends as soon as the blocking windows end (threading.Condition, timed to the earliest end; a withdrawal wakes it
at once), and within STOP_POLL_S of the run's stop event (Ctrl-C, SIGTERM: lab/parallel.py): the caller then raises
as Runner._boot_turn does.

One worker. With one worker there is no other owner, so no phase ever waits (a zero wait, no sleep): `lab run`
without --jobs, `pytest --matrix` (xdist workers are processes, each with its own registry, so they do not
coordinate), bisect. What a phase waited goes into the run's timings (`timing_key`: quiet_boot_s, quiet_reset_s,
quiet_nfs_s), which bench/concurrency.py adds up per arm. How much this shortens the gaps, and what it costs in
wall time, is not measured on VMs yet.
"""
from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from .log import log

#: the longest one heavy phase waits for quiet, in seconds (see the module's docstring for why 10)
MAX_WAIT_S = 10.0
#: while waiting, the run's stop event is looked at this often
STOP_POLL_S = 0.2
#: the phases that wait, in the order a worker's cell meets them
PHASES = ("boot", "reset", "nfs")


def timing_key(phase: str) -> str:
    """The key of a phase's wait in a run's timings (lab/kernellab.py KernelLab.timings → meta["timings"])."""
    return f"quiet_{phase}_s"


@dataclass(frozen=True)
class Window:
    """Seconds in which `owner`'s cell must not be disturbed, on the registry's clock."""

    owner: object
    start: float
    end: float
    label: str = ""


class Quiet:
    """The registry. `clock` is monotonic (the waits), `wall` the host clock the experiment plans on (time.time);
    tests give fake ones."""

    def __init__(self, clock=time.monotonic, wall=time.time, max_wait: float = MAX_WAIT_S,
                 poll: float = STOP_POLL_S):
        self.clock, self.wall, self.max_wait, self.poll = clock, wall, max_wait, poll
        self._cond = threading.Condition()
        self._windows: list[Window] = []
        self._took: dict[str, float] = {}     # phase → how long it took last time (its lead next time)

    # ---- cells ----------------------------------------------------------------------------------------------
    def announce(self, owner, start: float, end: float, label: str = "") -> Window:
        window = Window(owner, start, end, label)
        with self._cond:
            self._prune(self.clock())
            self._windows.append(window)
            self._cond.notify_all()
        return window

    def announce_change(self, owner, change_at: float, before: float, after: float, label: str = "") -> Window:
        """The window [change − before, change + after] of a change planned (or done) at `change_at`, host clock."""
        at = self.clock() + (change_at - self.wall())
        return self.announce(owner, at - before, at + after, label)

    def withdraw(self, owner) -> int:
        """Every window of `owner` gone (its experiment is over); waiting phases look again at once."""
        with self._cond:
            before = len(self._windows)
            self._windows = [w for w in self._windows if w.owner is not owner]
            self._cond.notify_all()
            return before - len(self._windows)

    def poke(self) -> None:
        """Waiting phases look again now (a test's fake clock moved)."""
        with self._cond:
            self._cond.notify_all()

    # ---- heavy phases ---------------------------------------------------------------------------------------
    def lead(self, phase: str) -> float:
        """How far ahead `phase` looks: what it took last time here, or every announced window before that."""
        return self._took.get(phase, math.inf)

    def took(self, phase: str, seconds: float) -> None:
        self._took[phase] = seconds

    def blocking(self, owner, lead: float, now: float | None = None) -> list[Window]:
        """The windows of other owners open at `now` or opening within `lead` seconds of it."""
        now = self.clock() if now is None else now
        with self._cond:
            return [w for w in self._windows
                    if w.owner is not owner and w.end > now and w.start < now + lead]

    def wait(self, owner, phase: str, lead: float | None = None, stop=None, notice=None) -> float:
        """Block while `blocking(owner, lead)` is not empty, at most max_wait, until `stop` (an Event) is set;
        `notice(window)` once if it has to wait. The seconds waited (0.0 when nothing blocked)."""
        lead = self.lead(phase) if lead is None else lead
        started = self.clock()
        deadline, blocked, first = started + self.max_wait, None, None
        with self._cond:
            while not (stop is not None and stop.is_set()):
                now = self.clock()
                blocked = self.blocking(owner, lead, now)
                if not blocked or now >= deadline:
                    break
                if first is None:
                    first = blocked[0]
                    if notice is not None:
                        notice(first)
                timeout = min(min(w.end for w in blocked), deadline) - now
                if stop is not None:
                    timeout = min(timeout, self.poll)
                self._cond.wait(timeout=max(0.0, timeout))
        if first is None:
            return 0.0
        waited = self.clock() - started
        why = "the run stops" if stop is not None and stop.is_set() else \
            f"gave up after {self.max_wait:.0f}s" if blocked else "quiet"
        log.debug("quiet: %s waited %.2fs for %s (%s)", phase, waited, first.label or first.owner, why)
        return waited

    @contextmanager
    def turn(self, owner, phase: str, stop=None, notice=None):
        """`with registry.turn(owner, "reset", stop) as waited:` — wait for quiet, then time the phase (its lead
        next time). Yields the seconds waited; the caller checks `stop` (and raises) itself."""
        waited = self.wait(owner, phase, stop=stop, notice=notice)
        started = self.clock()
        yield waited
        self.took(phase, self.clock() - started)

    def _prune(self, now: float) -> None:
        self._windows = [w for w in self._windows if w.end > now]


#: the process's registry: every Runner of the process announces and waits here (lab/runner.py)
WINDOWS = Quiet()
