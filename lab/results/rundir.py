"""A run's results on disk: one directory per run, append-only JSONL per worker, merge across workers and shards.

Why append-only JSONL with one file per worker: xdist workers and CI shards write at the same time and a run may
be killed at any moment. One `write(2)` of a whole line on an O_APPEND file, followed by fsync, never interleaves
with another line, and a crash can at worst leave a torn last line, which reading skips with a warning. Later
records for the same run of a cell win, so a resumed or re-run cell simply appends. What a line and run.json must
look like to be read is record.py's.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path

from .. import safeload
from ..errors import display_path
from ..files import append_line, write_atomic
from .record import ResultRecord, RunMeta, latest_per_cell, latest_per_run

RESULTS_GLOB = "results-*.jsonl"
MERGED = "results-merged.jsonl"
META = "run.json"
META_LIMIT = safeload.MiB

log = logging.getLogger(__name__)


def new_run_id(now: datetime | None = None) -> str:
    """`20261123-104500-ab12`: sorts by time, and the suffix keeps two runs started in one second apart."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def worker_name() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


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
