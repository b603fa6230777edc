"""A cell's runs as text: the timeline of alice's reads, the system calls her traced reads made, where a lab
error happened, and the conditions a run was taken under."""
from __future__ import annotations

from ..aggregate import CellResult
from ..capture import describe
from ..results import ResultRecord
from ..syscalls import describe as describe_syscalls, main_failure
from .grid import column_label


def timeline_runs(observation: dict | None) -> list[tuple[str, float, float, int]]:
    """Alice's reads folded into runs of one kind: (kind, first t, last t, reads) — a 60-read timeline in 3 lines."""
    runs: list[list] = []
    for read in (observation or {}).get("reads", []):
        if runs and runs[-1][0] == read["kind"]:
            runs[-1][2] = read["t"]
            runs[-1][3] += 1
        else:
            runs.append([read["kind"], read["t"], read["t"], 1])
    return [tuple(run) for run in runs]


def timeline_text(observation: dict | None) -> str:
    """`old -2s…5s ×15, estale 5.5s…23s ×36, new 23.5s…30s ×14; after ls: new`."""
    parts = [f"{kind} {first:g}s…{last:g}s ×{n}" for kind, first, last, n in timeline_runs(observation)]
    after = (observation or {}).get("after_ls")
    if after:
        parts.append(f"after ls: {after['kind']}")
    return ", ".join(parts)


def trace_lines(observation: dict | None) -> list[tuple[str, str]]:
    """(client, its NFS operations after the change) from a cell's capture; empty without one."""
    trace = ((observation or {}).get("meta") or {}).get("trace") or {}
    return [(client, describe(trace[client]["after"])) for client in ("alice", "bob") if client in trace]


def syscall_line(observation: dict | None) -> str:
    """What alice's traced reads after the change asked the kernel, beside the wire operations:
    `cat: openat → fd 4 · fstat → ESTALE ×6`; empty without a trace."""
    calls = ((observation or {}).get("meta") or {}).get("syscalls") or {}
    if not calls:
        return ""
    if calls.get("skipped"):
        return f"{calls.get('reader', 'cat')}: not traced ({calls['skipped']})"
    text = describe_syscalls(calls)
    return f"{calls.get('reader', 'cat')}: {text}" if text else ""


def failed_at_line(record: ResultRecord) -> str:
    """The Markdown footnote of a failing run: `debian-6.1 vers=4.1: fstat → ESTALE (open-fstat-read)`."""
    calls = ((record.observation or {}).get("meta") or {}).get("syscalls") or {}
    step = main_failure(calls)
    if step is None:
        return ""
    label = column_label({k: v for k, v in record.params.items() if k != "reader"})
    return f"{record.kernel} {label}: {step} ({calls.get('reader', 'cat')})"


def conditions_text(observation: dict | None) -> str:
    """What the experiment controlled, as achieved (meta["ages"]), and the cache timeouts alice mounted with
    (meta["mounts"]["alice"]["cache"]): `dir changed 5.0s, its attributes fetched 2.0s before the change · alice:
    acdirmin=30 acdirmax=60 acregmin=3 acregmax=60 lookupcache=all`."""
    meta = (observation or {}).get("meta") or {}
    parts = []
    ages = meta.get("ages") or {}
    if ages.get("dir_touched_before_change_s") is not None:
        text = f"dir changed {ages['dir_touched_before_change_s']:.1f}s"
        if ages.get("dir_attrs_fetched_before_change_s") is not None:
            text += f", alice fetched its attributes {ages['dir_attrs_fetched_before_change_s']:.1f}s"
        parts.append(text + " before the change")
    cache = ((meta.get("mounts") or {}).get("alice") or {}).get("cache") or {}
    if cache:
        keys = ("acdirmin", "acdirmax", "acregmin", "acregmax", "lookupcache")
        parts.append("alice: " + " ".join(f"{k}={cache[k]}" for k in keys if k in cache))
    return " · ".join(parts)


def runs_of(cell: CellResult) -> list[tuple[str, ResultRecord]]:
    """(label, record) for each run: no label for a cell of one run, `run 2/3` for one of several."""
    if cell.planned == 1:
        return [("", run) for run in cell.runs]
    return [(f"run {run.repeat}/{cell.planned}", run) for run in cell.runs]
