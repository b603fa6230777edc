"""A run's results: what a cell's run produced, and where it is kept. Every name is importable from `lab.results`.

  record.py      ResultRecord, and the shapes (pydantic) a stored record line and run.json must have to be read
  rundir.py      RunDir: runs/<run-id>/ with append-only results-<worker>.jsonl, run.json, logs/; merging run dirs
"""
from ..files import write_atomic  # noqa: F401  (lab/cli/ci.py imports it from here)
from .record import (MAX_COLUMNS, ResultRecord, RunMeta, StoredAges, StoredClientTrace, StoredExperiment,
                     StoredMount, StoredObservation, StoredObservationMeta, StoredPhase, StoredRead, StoredRecord,
                     StoredSpec, StoredSyscallPhase, StoredSyscalls, StoredTrace, StoredVerdict, latest_per_cell,
                     latest_per_run, now_iso, started_key)
from .rundir import (MERGED, META, META_LIMIT, RESULTS_GLOB, RunDir, merge, new_run_id, read_jsonl,
                     worker_name)

__all__ = ["MAX_COLUMNS", "MERGED", "META", "META_LIMIT", "RESULTS_GLOB", "ResultRecord", "RunDir", "RunMeta",
           "StoredAges", "StoredClientTrace", "StoredExperiment", "StoredMount", "StoredObservation",
           "StoredObservationMeta", "StoredPhase", "StoredRead", "StoredRecord", "StoredSpec", "StoredSyscallPhase",
           "StoredSyscalls", "StoredTrace", "StoredVerdict", "latest_per_cell", "latest_per_run", "merge",
           "new_run_id", "now_iso", "read_jsonl", "started_key", "worker_name"]
