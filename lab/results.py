"""A run's results on disk: one directory per run, append-only JSONL per worker, merge across workers and shards.

Why append-only JSONL with one file per worker: xdist workers and CI shards write at the same time and a run may
be killed at any moment. One `write(2)` of a whole line on an O_APPEND file, followed by fsync, never interleaves
with another line, and a crash can at worst leave a torn last line, which reading skips with a warning. Later
records for the same run of a cell win, so a resumed or re-run cell simply appends.

A cell may run several times (`experiment.repeats`): each run is its own record, numbered by `repeat` (1…`repeats`).
Records written before repeats existed read as run 1 of 1.

Result files are also copied between machines and merged from CI shards, so reading trusts nothing: every line is
checked against the record's schema (StoredRecord, pydantic) before it becomes a ResultRecord, and a line that fails
is skipped like a torn one; run.json must have its schema too (RunMeta), or the command stops with one line.
"""
from __future__ import annotations

import json
import logging
import math
import os
import secrets
import shutil
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import safeload
from .errors import display_path
from .files import append_line, write_atomic
from .outcome import KINDS, STATUSES, Verdict
from .readers import DEFAULT as DEFAULT_READER, READERS
from .spec import MAX_REPEATS, VERDICTS

RESULTS_GLOB = "results-*.jsonl"
MERGED = "results-merged.jsonl"
META = "run.json"
META_LIMIT = safeload.MiB
MAX_COLUMNS = 4096   # axis combinations a run.json may describe (the table is built from their product)

log = logging.getLogger(__name__)


# ---- the stored shapes ---------------------------------------------------------------------------------------------
# What a record line and run.json must look like to be used. Extra keys are allowed everywhere (files written by a
# newer lab stay readable); the record keeps the line's own values, these models only vouch for them.

class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


def _one_of(value: str, allowed, what: str) -> str:
    """A stored name must be one the lab writes: `unknown status 'maybe' (allowed: pass, fail, …)`."""
    if value not in allowed:
        raise ValueError(f"unknown {what} '{safeload.cut(value)}' (allowed: {', '.join(allowed)})")
    return value


class StoredRead(_Shape):
    t: float = Field(ge=-1e6, le=1e6)
    kind: str
    text: str = ""

    _kind_known = field_validator("kind")(lambda cls, value: _one_of(value, KINDS, "read kind"))


class StoredPhase(_Shape):
    """What capture.summarise writes per client and phase (report.trace_lines formats it)."""

    ops: dict[str, int] = {}
    open_claims: dict[str, int] = {}
    first_s: dict[str, float] = {}
    stale_replies: int = 0
    delay_replies: int = 0
    reply_attrs: dict[str, dict[str, dict[str, int]]] = {}   # OPEN/GETATTR → numlinks → fileid → replies


class StoredClientTrace(_Shape):
    before: Optional[StoredPhase] = None
    after: StoredPhase


class StoredTrace(_Shape):
    pcap: Optional[str] = None
    alice: Optional[StoredClientTrace] = None
    bob: Optional[StoredClientTrace] = None


class StoredAges(_Shape):
    """What report.conditions_text formats as seconds."""

    dir_touched_before_change_s: Optional[float] = None
    dir_attrs_fetched_before_change_s: Optional[float] = None


class StoredMount(_Shape):
    cache: Optional[dict] = None


class StoredSyscallPhase(_Shape):
    """What syscalls.summarise writes per phase (report.syscall_line and the failed-at footnote format it)."""

    reads: int = Field(default=0, ge=0)
    first_s: Optional[float] = Field(default=None, ge=-1e6, le=1e6)
    sequences: dict[str, int] = {}
    failed_at: dict[str, int] = {}


class StoredSyscalls(_Shape):
    reader: str = DEFAULT_READER
    file: str = ""
    traced: int = Field(default=0, ge=0)
    skipped: Optional[str] = None
    before: Optional[StoredSyscallPhase] = None
    after: Optional[StoredSyscallPhase] = None

    _reader_known = field_validator("reader")(lambda cls, value: _one_of(value, tuple(READERS), "reader"))


class StoredObservationMeta(_Shape):
    trace: Optional[StoredTrace] = None
    syscalls: Optional[StoredSyscalls] = None
    server_release: Optional[str] = None
    ages: Optional[StoredAges] = None
    mounts: Optional[dict[str, StoredMount]] = None


class StoredObservation(_Shape):
    reads: list[StoredRead] = []
    ls_output: str = ""
    after_ls: Optional[StoredRead] = None
    mv_ok: bool = True
    meta: StoredObservationMeta = StoredObservationMeta()


class StoredVerdict(_Shape):
    status: str
    reason: str = ""
    first_new_after: Optional[float] = Field(default=None, ge=-1e6, le=1e6)
    stale_for: float = Field(default=0.0, ge=-1e6, le=1e6)
    estale_for: float = Field(default=0.0, ge=-1e6, le=1e6)
    recovered: bool = True
    ls_clears: Optional[bool] = None
    detail: str = ""
    ended_in: str = ""
    pass_within: Optional[float] = Field(default=None, ge=0, le=1e6)
    within_race_window: bool = False

    _status_known = field_validator("status")(lambda cls, value: _one_of(value, STATUSES, "status"))


class StoredRecord(_Shape):
    """One line of results-*.jsonl."""

    run_id: str
    cell_id: str
    kernel: str
    params: dict[str, str]
    verdict: StoredVerdict
    expected: str
    started: str
    duration_s: float = Field(ge=0, le=1e7)
    worker: str
    observation: Optional[StoredObservation]
    logs: str
    kernel_release: str = ""
    repeat: int = Field(default=1, ge=1, le=MAX_REPEATS)
    repeats: int = Field(default=1, ge=1, le=MAX_REPEATS)

    _expected_known = field_validator("expected")(lambda cls, value: _one_of(value, VERDICTS, "expected verdict"))

    @field_validator("logs")
    @classmethod
    def _logs_inside(cls, logs: str) -> str:
        """The log directory is joined to run directories (merge copies it, the HTML table links it)."""
        problem = safeload.inside_problem(logs) if logs else None
        if problem:
            raise ValueError(f"'{safeload.cut(logs)}' is not a path inside the run directory ({problem})")
        return logs


class StoredExperiment(_Shape):
    """run.json's `experiment` (session.experiment_meta): the table's criterion line formats pass_within."""

    name: Optional[str] = None
    pass_within: Optional[float] = Field(default=None, ge=0, le=1e6)
    repeats: Optional[int] = Field(default=None, ge=1, le=MAX_REPEATS)


class StoredSpec(_Shape):
    """run.json's `specs`: what the table shows of a kernel spec (lab/render/tables.py)."""

    title: str = ""
    notes: str = ""


class RunMeta(_Shape):
    """run.json; every key is optional (a merged run has only some)."""

    run_id: Optional[str] = None
    matrix: Optional[str] = None
    kernels: Optional[list[str]] = None
    axes: Optional[dict[str, list[str]]] = None
    server: Optional[str] = None
    command: Optional[str] = None
    started: Optional[str] = None
    finished: Optional[str] = None
    wall_s: Optional[float] = Field(default=None, ge=0)
    merged_from: Optional[list[str]] = None
    repeats: Optional[int] = Field(default=None, ge=1, le=MAX_REPEATS)
    experiment: Optional[StoredExperiment] = None
    specs: Optional[dict[str, StoredSpec]] = None

    @field_validator("axes")
    @classmethod
    def _few_columns(cls, axes: Optional[dict[str, list[str]]]) -> Optional[dict[str, list[str]]]:
        columns = math.prod(len(values) for values in (axes or {}).values())
        if columns > MAX_COLUMNS:
            raise ValueError(f"the axes make {columns} columns (at most {MAX_COLUMNS})")
        return axes


@dataclass
class ResultRecord:
    """One cell's result as stored: what ran, what was expected, what was seen, where the logs are."""

    run_id: str
    cell_id: str
    kernel: str
    params: dict
    verdict: dict             # Verdict.to_dict()
    expected: str             # "pass" | "fail" | "unknown"
    started: str              # ISO 8601, UTC
    duration_s: float
    worker: str
    observation: dict | None
    logs: str                 # the cell's log directory, relative to the run directory
    kernel_release: str = ""
    repeat: int = 1           # which run of the cell this is, 1…repeats
    repeats: int = 1          # how many runs of the cell were asked for

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)   # params keep the matrix's axis order

    @classmethod
    def from_json(cls, line: str) -> "ResultRecord":
        data = safeload.parse_json(line)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> "ResultRecord":
        """A stored record, checked against StoredRecord first (pydantic's ValidationError, a ValueError, if not)."""
        StoredRecord.model_validate(data, strict=True)
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})

    @property
    def status(self) -> str:
        return self.verdict.get("status", "error")

    @property
    def verdict_obj(self) -> Verdict:
        return Verdict.from_dict(self.verdict)

    @property
    def mismatch(self) -> str | None:
        """A kernel result that contradicts history; errors and skips say nothing about the kernel."""
        if self.expected == "pass" and self.status == "fail":
            return "regression"
        if self.expected == "fail" and self.status == "pass":
            return "unexpected-pass"
        if self.expected == "unknown" and self.status == "fail":
            return "no-history"
        return None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id(now: datetime | None = None) -> str:
    """`20261123-104500-ab12`: sorts by time, and the suffix keeps two runs started in one second apart."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def worker_name() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def started_key(record: ResultRecord) -> datetime:
    """When the record's run started, comparable across time zones (an unreadable time sorts first)."""
    try:
        started = datetime.fromisoformat(record.started)
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return started if started.tzinfo else started.replace(tzinfo=timezone.utc)


def latest_per_cell(records: list[ResultRecord]) -> list[ResultRecord]:
    """One record per cell: the one started last (a tie goes to the one read last), ordered by start time."""
    latest: dict[str, ResultRecord] = {}
    for record in records:
        current = latest.get(record.cell_id)
        if current is None or started_key(record) >= started_key(current):
            latest[record.cell_id] = record
    return sorted(latest.values(), key=started_key)


def latest_per_run(records: list[ResultRecord]) -> list[ResultRecord]:
    """One record per run of a cell (cell, repeat), as latest_per_cell chooses, ordered by start time."""
    latest: dict[tuple[str, int], ResultRecord] = {}
    for record in records:
        key = (record.cell_id, record.repeat)
        current = latest.get(key)
        if current is None or started_key(record) >= started_key(current):
            latest[key] = record
    return sorted(latest.values(), key=started_key)


def read_jsonl(path: Path) -> list[ResultRecord]:
    """All intact records of one file; torn or damaged lines are skipped with one warning for the file, not fatal.
    A file that cannot be read at all (a directory, a FIFO, too large) is a BadFile."""
    return safeload.read_jsonl(path, ResultRecord.from_dict)


class RunDir:
    """One run's directory: `runs/<run-id>/` with results-<worker>.jsonl, run.json and logs/<cell>/."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def create(cls, root: Path | str, run_id: str | None = None) -> "RunDir":
        """A new run under root (or the existing one with that id, to resume it)."""
        path = Path(root) / (run_id or new_run_id())
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    def results_file(self, worker: str | None = None) -> Path:
        return self.path / f"results-{worker or worker_name()}.jsonl"

    def log_dir(self, cell_id: str, repeat: int = 1, repeats: int = 1) -> Path:
        """Where a cell's logs go (a run of several: `run-N/` in it); `records.logs` stores it relative to the run
        directory."""
        cell_dir = self.path / "logs" / cell_id.replace("/", "__")
        return cell_dir if repeats == 1 and repeat == 1 else cell_dir / f"run-{repeat}"

    def append(self, record: ResultRecord, worker: str | None = None) -> Path:
        path = self.results_file(worker)
        append_line(path, record.to_json())
        return path

    def all_records(self) -> list[ResultRecord]:
        """Every record in every results file, duplicates included (in file order)."""
        records: list[ResultRecord] = []
        for path in sorted(self.path.glob(RESULTS_GLOB)):
            records.extend(read_jsonl(path))
        return records

    def records(self) -> list[ResultRecord]:
        """One record per cell, the latest run of it winning."""
        return latest_per_cell(self.all_records())

    def runs(self) -> list[ResultRecord]:
        """One record per run of each cell (every repeat), the latest record of that run winning: what the table
        aggregates."""
        return latest_per_run(self.all_records())

    def finished_runs(self) -> set[tuple[str, int]]:
        """(cell, repeat) pairs a resumed run can skip: they have a kernel result (or a skip); errors are worth
        another try."""
        return {(r.cell_id, r.repeat) for r in self.runs() if r.status != "error"}

    def finished_cells(self, repeats: int = 1) -> set[str]:
        """Cells a resumed run can skip: each of their `repeats` runs has a kernel result (or a skip)."""
        done = self.finished_runs()
        return {cell for cell, _ in done if all((cell, k) in done for k in range(1, repeats + 1))}

    def write_meta(self, meta: dict) -> None:
        # key order is meaning here: `axes` keeps the matrix's column order; no NaN: readers refuse it
        write_atomic(self.path / META, json.dumps(meta, indent=2, ensure_ascii=False, allow_nan=False) + "\n")

    def meta(self) -> dict:
        """run.json as written (extra keys kept); none yet is {}; a damaged one is a BadFile."""
        if not os.path.lexists(self.path / META):
            return {}
        return safeload.load_json_object(self.path / META, RunMeta, META_LIMIT)


def merge(dest: Path | str, sources: list[Path | str]) -> RunDir:
    """Fold several run directories (xdist workers, CI shards) into one; re-running a merge gives the same result.

    dest's own results files are left in place (a worker may still be appending): reading dedups anyway."""
    target = RunDir(dest)
    target.path.mkdir(parents=True, exist_ok=True)
    runs = [RunDir(source) for source in sources]
    merged = latest_per_run(target.all_records() + [r for run in runs for r in run.all_records()])
    refused = [why for record in merged if (why := _copy_logs(record, runs, target))]
    if refused:
        log.warning(f"{display_path(target.path)}: {len(refused)} log director{'ies' if len(refused) > 1 else 'y'} "
                    f"not copied (first: {refused[0]})")
    write_atomic(target.path / MERGED, "".join(r.to_json() + "\n" for r in merged))
    _merge_meta(target, runs)
    return target


def _copy_logs(record: ResultRecord, runs: list[RunDir], target: RunDir) -> str | None:
    """Bring the winning record's log directory along, from whichever source holds it; never from or to a place
    outside the run directories, whatever the record says or a symlink points at (then: why it was not copied).
    Symlinks inside the logs are copied as links, not followed."""
    if not record.logs:
        return None
    if safeload.inside_problem(record.logs):   # records read from files were checked; built ones may not be
        return f"{record.cell_id}: logs '{safeload.cut(record.logs)}' are not inside the run directory"
    dest = target.path / record.logs
    if not _below(dest, target.path):
        return f"{record.cell_id}: {display_path(dest)} leads outside {display_path(target.path)}"
    for run in runs:
        source = run.path / record.logs
        if not source.is_dir():
            continue
        if not _below(source, run.path):
            return f"{record.cell_id}: {display_path(source)} leads outside {display_path(run.path)}"
        if source.resolve() != dest.resolve():
            shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True)
        return None
    return None


def _below(path: Path, root: Path) -> bool:
    """Whether path, its symlinks followed, stays below root."""
    return path.resolve().is_relative_to(root.resolve())


def _merge_meta(target: RunDir, runs: list[RunDir]) -> None:
    meta = target.meta()
    for run in runs:
        for key, value in run.meta().items():
            meta.setdefault(key, value)
    meta["merged_from"] = sorted({*meta.get("merged_from", []), *(str(run.path) for run in runs)})
    target.write_meta(meta)
