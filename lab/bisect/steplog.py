"""The step log: steps.jsonl, one JSON line per judged step, appended by whichever process judged it."""
from __future__ import annotations

from pathlib import Path

from .. import safeload
from ..files import append_line
from .step import Step


class StepLog:
    """Every step as one JSON line, appended as it ends, by whichever process ran it (git bisect runs a process
    per commit): a bisect cut short still leaves the steps it did."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def append(self, step: Step) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        append_line(self.path, step.to_json())

    def steps(self) -> list[Step]:
        """The steps logged so far; a torn line (from a killed step) or a damaged one is skipped with a warning."""
        if not self.path.exists():
            return []
        return safeload.read_jsonl(self.path, Step.from_dict)
