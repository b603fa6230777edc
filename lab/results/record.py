"""A cell's result record: the dataclass the lab works with, and the shapes (pydantic) a stored record line and
run.json must have before they are used.

Result files are copied between machines and merged from CI shards, so reading trusts nothing: every line is
checked against the record's schema (StoredRecord) before it becomes a ResultRecord, and a line that fails is
skipped like a torn one (rundir.py); run.json must have its schema too (RunMeta), or the command stops with one line.

A cell may run several times (`experiment.repeats`): each run is its own record, numbered by `repeat` (1…`repeats`).
Records written before repeats existed read as run 1 of 1. Later records for the same run of a cell win.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .. import safeload
from ..outcome import KINDS, STATUSES, Verdict
from ..readers import DEFAULT as DEFAULT_READER, READERS
from ..spec import MAX_REPEATS, VERDICTS

MAX_COLUMNS = 4096   # axis combinations a run.json may describe (the table is built from their product)

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
        return safeload.checked_dataclass(cls, StoredRecord, data)

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

