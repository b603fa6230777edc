"""What a long command shows while it works: how far `lab run` is (runs and cells done, the running cells and their
phases, elapsed time, an ETA from measured run times) and how far a kernel build is (objects compiled out of what
the last build of that kernel compiled).

With `lab run --jobs N` several runs go on at once, each on its worker (`w1`, `w2`, …): a phase line names its
worker, the bar's status shows every running cell, and the ETA divides the work left among the workers. The
counts are updated under a lock, because the workers are threads.

The arithmetic and the texts are pure functions; `RunProgress` keeps the counts of one `lab run` and, on a
terminal, draws them as a rich progress bar on the console the log lines print through (lab/log.py), so both
share one screen. Everywhere else there is no live display: the line logged after each run carries the same
facts, one greppable line a run. Nothing here is parsed as rich markup: cell and kernel names, paths and make's
output are shown as they are.
"""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path

#: a kbuild line for one compiled object: `  CC      fs/nfs/dir.o`, `  CC [M]  /…/fs/nfs/dir.o`, `  AS      x.o`
OBJECT_LINE = re.compile(r"^\s+(?:CC|AS)(?:\s+\[M\])?\s+\S+\.o\s*$")
#: at most one build progress line this often (seconds)
BUILD_EVERY = 10.0


def duration(seconds: float) -> str:
    """`45s`, `6m12s`, `31m`, `1h05m`: seconds below 10 minutes, minutes above (an ETA is no finer than that)."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 3600:
        return f"{round(s / 60)}m"
    return f"{s // 3600}h{round(s % 3600 / 60):02d}m"


def eta_seconds(durations: list[float], left: int, current: float = 0.0, jobs: int = 1) -> float | None:
    """Mean duration of the finished runs × runs left, less what the running ones have already taken, shared
    among `jobs` workers (never more than there are runs left); None before any run finished. Boots and builds
    make a kernel's first run slower: the mean is an honest, simple guess."""
    if not durations:
        return None
    return max(0.0, (sum(durations) / len(durations) * left - current) / max(1, min(jobs, left)))


def eta_text(durations: list[float], left: int, current: float = 0.0, jobs: int = 1) -> str:
    """`ETA 31m`; `ETA —` until one run finished; `ETA 0s` when nothing is left."""
    eta = eta_seconds(durations, left, current, jobs)
    return "ETA —" if eta is None else f"ETA {duration(eta)}"


def counts_text(runs_done: int, runs: int, cells_done: int, cells: int) -> str:
    """`5/36 cells, 14%`; with repeats, runs first: `7/72 runs, 3/36 cells, 10%`."""
    percent = f"{100 * runs_done // runs if runs else 100}%"
    if runs == cells:
        return f"{cells_done}/{cells} cells, {percent}"
    return f"{runs_done}/{runs} runs, {cells_done}/{cells} cells, {percent}"


def finished_line(counts: str, run: str, summary: str, seconds: float, elapsed: float, eta: str) -> str:
    """The line logged after each run:
    `[5/36 cells, 14%] debian-6.1/vers=4.1/leases=on: ✗ ESTALE 27.6s (56s) — elapsed 6m12s, ETA 31m`."""
    return f"[{counts}] {run}: {summary} ({seconds:.0f}s) — elapsed {duration(elapsed)}, {eta}"


class RunProgress:
    """The counts of one `lab run`: `todo` is its list of (cell, repeat), `jobs` how many workers run it.
    `phase(msg)` is a runner's progress callback (logged, and shown beside the bar on a terminal);
    `start(cell, k)` and `done(cell, k, record)` frame each run and log its line. Under `--jobs N` each takes the
    worker's name (`phase_for(worker)` is that worker's callback); without one, the run is the only one."""

    def __init__(self, todo: list, repeats: int, log, console=None, jobs: int = 1):
        self.repeats, self.log, self.jobs = repeats, log, jobs
        self.runs = len(todo)
        self.cells = len({c.id for c, _ in todo})
        self._runs_left = {}
        for c, _ in todo:   # a cell is done when all its runs to do are (they may finish in any order)
            self._runs_left[c.id] = self._runs_left.get(c.id, 0) + 1
        self.runs_done = self.cells_done = 0
        self.durations: list[float] = []
        self.started = time.monotonic()
        self.running: dict[str | None, list] = {}    # worker → [run label, status, started]
        self._lock = threading.RLock()
        self._bar = _Bar(self, console) if console is not None else None

    def __enter__(self) -> "RunProgress":
        if self._bar:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar:
            self._bar.stop()

    def start(self, cell, k: int, worker: str | None = None) -> None:
        with self._lock:
            label = cell.id + (f" run {k}/{self.repeats}" if self.repeats > 1 else "")
            self.running[worker] = [label, "starting", time.monotonic()]
        self._refresh()

    def phase(self, message: str, worker: str | None = None) -> None:
        self.log.info("%s", f"[{worker}] {message}" if worker else message)
        with self._lock:
            run = self.running.get(worker)
            if run is not None:
                cell = run[0].split(" run ")[0]
                run[1] = message[len(cell) + 2:] if message.startswith(cell + ": ") else message
        self._refresh()

    def phase_for(self, worker: str | None):
        """The progress callback of one worker's runner."""
        return lambda message: self.phase(message, worker)

    def done(self, cell, k: int, record, worker: str | None = None) -> None:
        with self._lock:
            self.runs_done += 1
            self._runs_left[cell.id] = self._runs_left.get(cell.id, 1) - 1
            self.cells_done += self._runs_left[cell.id] == 0
            if record.status != "skip":   # a kernel that cannot be had costs nothing: its 0 s would pull the mean down
                self.durations.append(record.duration_s)
            finished = self.running.pop(worker, None)   # the ETA counts nothing of a finished run twice
            run = finished[0] if finished else cell.id
            line = finished_line(self.counts(), run, record.verdict_obj.summary(), record.duration_s,
                                 time.monotonic() - self.started, self.eta())
        self.log.info("%s", f"[{worker}] {line}" if worker else line)
        self._refresh()

    def stopped(self, worker: str | None = None) -> None:
        """A worker's run ended without a record (the run is stopping): it is no longer shown as running."""
        with self._lock:
            self.running.pop(worker, None)
        self._refresh()

    def counts(self) -> str:
        return counts_text(self.runs_done, self.runs, self.cells_done, self.cells)

    def eta(self) -> str:
        with self._lock:
            now = time.monotonic()
            running = sum(now - started for _, _, started in self.running.values())
            return eta_text(self.durations, self.runs - self.runs_done, running, self.jobs)

    def status_text(self) -> str:
        """What the bar shows beside itself, what a narrow terminal cuts last first:
        `elapsed 6m12s · ETA 31m · debian-6.1/vers=4.1/leases=on: race experiment (at most 60s) (12s)`; with
        several workers, each running cell after its worker's name (`w2 debian-6.1/…: reset (3s)`)."""
        with self._lock:
            now = time.monotonic()
            doing = [f"{worker + ' ' if worker else ''}{label}: {status} ({duration(now - started)})"
                     for worker, (label, status, started) in sorted(self.running.items(), key=lambda i: str(i[0]))]
            return " · ".join(p for p in (f"elapsed {duration(now - self.started)}", self.eta(), *doing) if p)

    def _refresh(self) -> None:
        if self._bar:
            self._bar.update()


class _Bar:
    """rich's Progress on the log's console: log records print above it, it redraws below them."""

    def __init__(self, run: RunProgress, console):
        from rich.progress import BarColumn, Progress, ProgressColumn
        from rich.text import Text

        class Counts(ProgressColumn):
            def render(self, task):
                return Text(run.counts())

        class Status(ProgressColumn):
            def render(self, task):
                return Text(run.status_text(), no_wrap=True, overflow="ellipsis")

        self.run = run
        self.progress = Progress(Counts(), BarColumn(bar_width=20), Status(), console=console, transient=True,
                                 refresh_per_second=2)
        self.task = self.progress.add_task("lab run", total=run.runs)

    def start(self) -> None:
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def update(self) -> None:
        self.progress.update(self.task, completed=self.run.runs_done)


# ---- builds ------------------------------------------------------------------------------------------------------

def objects_text(count: int, expected: int | None) -> str:
    """`1234/3100 objects (39%)`; `1234 objects compiled` with nothing to compare against (a first build) or when
    this build compiles more than the last one did."""
    if not expected or count > expected:
        return f"{count} objects compiled"
    return f"{count}/{expected} objects ({100 * count // expected}%)"


class BuildProgress:
    """Counts the objects a kernel build compiles, from the lines make writes to the build log (`follow` is
    lab/proc.py run's line callback), and says how far it is through `progress` at most every BUILD_EVERY
    seconds. `expected` is the count of the last finished build of the same kernel and config, kept in `record`."""

    def __init__(self, name: str, progress, record: Path | None = None, every: float = BUILD_EVERY,
                 clock=time.monotonic):
        self.name, self.progress, self.record, self.every, self.clock = name, progress, record, every, clock
        self.expected = _read_count(record)
        self.count = 0
        self.started = self.last = clock()
        self._lock = threading.Lock()

    def follow(self, line: str) -> None:
        if not OBJECT_LINE.match(line):
            return
        with self._lock:
            self.count += 1
            now = self.clock()
            if now - self.last < self.every:
                return
            self.last = now
        self.progress(f"{self.name}: building: {objects_text(self.count, self.expected)}")

    def finished(self) -> None:
        """The build succeeded: say so with its time, and remember its count for the next build."""
        self.progress(f"{self.name}: built: {self.count} objects in {duration(self.clock() - self.started)}")
        if self.record is not None and self.count:
            self.record.parent.mkdir(parents=True, exist_ok=True)
            self.record.write_text(f"{self.count}\n")


def _read_count(path: Path | None) -> int | None:
    try:
        return int(path.read_text().strip()) if path else None
    except (OSError, ValueError):
        return None


class LatestLine:
    """A `follow` callback for a long command whose output says what it does (debootstrap's `I: Unpacking …`):
    the latest line that `keep` accepts, at most every `every` seconds, with the time so far."""

    def __init__(self, name: str, progress, keep=lambda line: True, every: float = BUILD_EVERY,
                 clock=time.monotonic):
        self.name, self.progress, self.keep, self.every, self.clock = name, progress, keep, every, clock
        self.started = self.last = clock()

    def follow(self, line: str) -> None:
        now = self.clock()
        if not line.strip() or not self.keep(line) or now - self.last < self.every:
            return
        self.last = now
        self.progress(f"{self.name}: {line.strip()} ({duration(now - self.started)})")


class Phases:
    """The phases of a long step, each a progress line as it starts; `end(what)` says how long each took:
    `box x built in 1m35s (debootstrap 58s, customize 4s, image 21s, register 12s)`."""

    def __init__(self, progress, clock=time.monotonic):
        self.progress, self.clock = progress, clock
        self.started = clock()
        self.times: dict[str, float] = {}
        self._current: tuple[str, float] | None = None

    def __call__(self, name: str, message: str) -> None:
        self._close()
        self._current = (name, self.clock())
        self.progress(message)

    def end(self, what: str) -> None:
        self._close()
        each = ", ".join(f"{name} {duration(s)}" for name, s in self.times.items())
        self.progress(f"{what} in {duration(self.clock() - self.started)}" + (f" ({each})" if each else ""))

    def _close(self) -> None:
        if self._current:
            name, since = self._current
            self.times[name] = self.times.get(name, 0.0) + self.clock() - since
            self._current = None
