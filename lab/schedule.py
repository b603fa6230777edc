"""Which runs go together, and in which order, when several workers run a matrix at once (`lab run --jobs N`).

A *unit* is one run of a cell, (cell, repeat). A *shard* is units of one kernel that one worker runs on one
topology, booted once and reverted between its units. Booting costs ~36 s of nearly pure CPU on this 2-core TCG
host, so a kernel's units stay together; but a row can be long (12 runs of cells that fail and read for 60 s each),
and a long row on one worker would bound the wall time of the whole matrix. So a row is split into more shards
(never more than it has units, or than there are jobs) only where that shortens the expected wall time: each extra
shard pays one more boot.

Shards are then handed out longest-expected first (LPT: the classic rule for list scheduling, within 4/3 of the
best order), each worker taking the next when it is free. A unit's expected length is the median of what its cell
took in an earlier run when one is known, else what history says the cell does: a cell expected to fail reads
until its end (~70 s measured), one expected to pass stops early (~20 s). With jobs = 1 nothing is reordered:
the sequential order of `lab run` stays exactly what it was (lab/session.py `runs_to_do`).

Pure: no I/O; lab/parallel.py runs the shards.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

#: measured on this host (docs/performance.md): a topology's boot up to its first cell, a passing and a failing run
BOOT_S = 45.0
PASS_S = 20.0
FAIL_S = 70.0
#: memory a VM needs (its RSS stays under this with the lab's TCG cache cap, lab/host.py) and what the host keeps
VM_MIB = 400
RESERVE_MIB = 2048
#: topologies per core for `--jobs auto`: a cell's VMs mostly sit idle while alice reads every 0.5 s; boots and
#: reverts are the CPU bursts. Measured on the 2-core TCG host (docs/performance.md, "Concurrency"): 6 workers
#: (3 a core) loaded it to 11 and shifted windows by up to 4 s; 3 workers kept them within one read gap
JOBS_PER_CPU = 1.5


@dataclass(frozen=True)
class Shard:
    """Units of one kernel for one worker and one topology, in the order they run; `seconds`: expected, boot
    included."""

    kernel: str
    units: tuple
    seconds: float

    @property
    def label(self) -> str:
        return f"{self.kernel} ({len(self.units)} run{'s' if len(self.units) != 1 else ''})"


def parse_jobs(text: str | int | None) -> int | str:
    """`--jobs`: a whole number >= 1, or `auto`; ValueError says what is allowed."""
    if text is None:
        return 1
    if isinstance(text, int):
        value = text
    elif str(text).strip().lower() == "auto":
        return "auto"
    else:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise ValueError(f"'{text}' is not a number of workers (allowed: a whole number >= 1, or auto)") from None
    if value < 1:
        raise ValueError(f"{value}: at least one worker (allowed: a whole number >= 1, or auto)")
    return value


def auto_jobs(cpus: int, mem_available_mib: int, units: int) -> int:
    """Workers for `--jobs auto`: JOBS_PER_CPU a core, as many as the memory has room for (3 VMs of VM_MIB each,
    RESERVE_MIB kept for the host), and no more than there are units to run."""
    by_cpu = max(1, int(JOBS_PER_CPU * max(1, cpus)))
    by_memory = max(1, (mem_available_mib - RESERVE_MIB) // (3 * VM_MIB))
    return max(1, min(by_cpu, by_memory, max(1, units)))


def measured_seconds(records) -> dict[str, float]:
    """Cell id → median duration of its runs with a kernel result (pass or fail) in earlier records; errors and
    skips say nothing of how long the cell takes."""
    by_cell: dict[str, list[float]] = {}
    for r in records:
        if r.status in ("pass", "fail"):
            by_cell.setdefault(r.cell_id, []).append(r.duration_s)
    return {cell: statistics.median(times) for cell, times in by_cell.items()}


def unit_seconds(cell, expected: str, measured: dict[str, float]) -> float:
    """What one run of `cell` is expected to take: measured when known, else by the verdict history expects."""
    if cell.id in measured:
        return measured[cell.id]
    return FAIL_S if expected == "fail" else PASS_S


def make_shards(todo: list, jobs: int, seconds) -> list[Shard]:
    """Split `todo` (cell, repeat) into shards for `jobs` workers, longest first; `seconds(cell)` is a unit's
    expected length. With jobs = 1: one shard a kernel, in the order of `todo`.

    A row is split one shard more at a time while that makes the expected finish times better (the latest first,
    then the next: a tie on the latest still frees a worker), then a split that does not shorten the expected wall
    time is undone, because every shard pays a boot of CPU the model does not count."""
    rows: dict[str, list] = {}
    for unit in todo:
        rows.setdefault(unit[0].kernel, []).append(unit)
    if jobs <= 1:
        return [Shard(k, tuple(units), BOOT_S + sum(seconds(c) for c, _ in units)) for k, units in rows.items()]
    pieces = {kernel: 1 for kernel in rows}

    def build(pieces: dict[str, int]) -> list[Shard]:
        shards = [Shard(kernel, tuple(piece), BOOT_S + sum(seconds(c) for c, _ in piece))
                  for kernel, units in rows.items() for piece in split(units, pieces[kernel], seconds)]
        return sorted(shards, key=lambda s: -s.seconds)   # stable: equal shards keep the matrix's order

    best = finish_times(build(pieces), jobs)
    while True:
        candidates = [k for k in rows if pieces[k] < min(len(rows[k]), jobs)]
        better = [(times, k) for times, k in
                  ((finish_times(build({**pieces, k: pieces[k] + 1}), jobs), k) for k in candidates) if times < best]
        if not better:
            break
        best, kernel = min(better)
        pieces[kernel] += 1
    for kernel in rows:   # undo the splits that do not shorten the wall time
        while pieces[kernel] > 1:
            fewer = {**pieces, kernel: pieces[kernel] - 1}
            if makespan(build(fewer), jobs) > best[0]:
                break
            pieces = fewer
    return build(pieces)


def finish_times(shards: list[Shard], jobs: int) -> list[float]:
    """When each of `jobs` workers is expected to be done, latest first (see `makespan`)."""
    free = [0.0] * max(1, jobs)
    for shard in shards:
        i = free.index(min(free))
        free[i] += shard.seconds
    return sorted(free, reverse=True)


def split(units: list, k: int, seconds) -> list[list]:
    """Deal units into k pieces, longest first into the least loaded (LPT); each piece keeps the order of `units`.
    A cell's repeats land on different pieces where they can: each is then a run on its own topology."""
    if k <= 1:
        return [list(units)]
    load = [0.0] * k
    placed: list[list[int]] = [[] for _ in range(k)]
    for i in sorted(range(len(units)), key=lambda i: -seconds(units[i][0])):
        j = min(range(k), key=lambda j: (load[j], len(placed[j]), j))
        placed[j].append(i)
        load[j] += seconds(units[i][0])
    return [[units[i] for i in sorted(p)] for p in placed if p]


def makespan(shards: list[Shard], jobs: int) -> float:
    """The expected wall time when `jobs` workers take the shards in this order, each the next one as it is free
    (what lab/parallel.py does); contention for the CPUs is not modelled."""
    return finish_times(shards, jobs)[0] if shards else 0.0


def plan_lines(shards: list[Shard], jobs: int) -> list[str]:
    """The plan as text (`lab run --jobs N` logs it; bench/concurrency.py --dry-run prints it)."""
    sequential = sum(s.seconds for s in shards)
    lines = [f"{len(shards)} shard(s) for {jobs} worker(s): expected ≈ {makespan(shards, jobs) / 60:.0f} min "
             f"(one worker: ≈ {sequential / 60:.0f} min, boots included)"]
    for i, s in enumerate(shards, 1):
        runs = ", ".join(f"{c.id.split('/', 1)[-1]}#{k}" for c, k in s.units)
        lines.append(f"  {i:2}. {s.kernel}: {len(s.units)} run(s), ≈ {s.seconds:.0f}s: {runs}")
    return lines
