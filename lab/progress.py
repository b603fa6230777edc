"""What a long command shows while it works: how far `lab run` is (runs and cells done, the running cell and its
phase, elapsed time, an ETA from measured run times) and how far a kernel build is (objects compiled out of what
the last build of that kernel compiled).

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


def eta_seconds(durations: list[float], left: int, current: float = 0.0) -> float | None:
    """Mean duration of the finished runs × runs left, less what the running one has already taken; None before
    any run finished. Boots and builds make a kernel's first run slower: the mean is an honest, simple guess."""
    if not durations:
        return None
    return max(0.0, sum(durations) / len(durations) * left - current)


def eta_text(durations: list[float], left: int, current: float = 0.0) -> str:
    """`ETA 31m`; `ETA —` until one run finished; `ETA 0s` when nothing is left."""
    eta = eta_seconds(durations, left, current)
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
    """The counts of one `lab run`: `todo` is its list of (cell, repeat). `phase(msg)` is the runner's progress
    callback (logged, and shown beside the bar on a terminal); `done(cell, k, record)` logs the run's line."""

    def __init__(self, todo: list, repeats: int, log, console=None):
        self.repeats, self.log = repeats, log
        self.runs = len(todo)
        self.cells = len({c.id for c, _ in todo})
        self._last_run = {c.id: k for c, k in todo}   # a cell is done when its last run to do is
        self.runs_done = self.cells_done = 0
        self.durations: list[float] = []
        self.started = time.monotonic()
        self.run_started = self.started
        self.current, self.status = "", ""
        self._bar = _Bar(self, console) if console is not None else None

    def __enter__(self) -> "RunProgress":
        if self._bar:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar:
            self._bar.stop()

    def start(self, cell, k: int) -> None:
        self.current = cell.id + (f" run {k}/{self.repeats}" if self.repeats > 1 else "")
        self.status, self.run_started = "starting", time.monotonic()
        self._refresh()

    def phase(self, message: str) -> None:
        self.log.info("%s", message)
        cell = self.current.split(" run ")[0]
        self.status = message[len(cell) + 2:] if cell and message.startswith(cell + ": ") else message
        self._refresh()

    def done(self, cell, k: int, record) -> None:
        self.runs_done += 1
        self.cells_done += self._last_run.get(cell.id) == k
        if record.status != "skip":   # a kernel that cannot be had costs nothing: its 0 s would pull the mean down
            self.durations.append(record.duration_s)
        run, self.current, self.status = self.current, "", ""   # the ETA counts nothing of a finished run twice
        self.log.info("%s", finished_line(self.counts(), run, record.verdict_obj.summary(), record.duration_s,
                                          time.monotonic() - self.started, self.eta()))
        self._refresh()

    def counts(self) -> str:
        return counts_text(self.runs_done, self.runs, self.cells_done, self.cells)

    def eta(self) -> str:
        running = time.monotonic() - self.run_started if self.current else 0.0
        return eta_text(self.durations, self.runs - self.runs_done, running)

    def status_text(self) -> str:
        """What the bar shows beside itself, what a narrow terminal cuts last first:
        `elapsed 6m12s · ETA 31m · debian-6.1/vers=4.1/leases=on: race experiment (at most 60s) (12s)`."""
        now = time.monotonic()
        doing = f"{self.current}: {self.status} ({duration(now - self.run_started)})" if self.current else ""
        return " · ".join(p for p in (f"elapsed {duration(now - self.started)}", self.eta(), doing) if p)

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
