"""Failures of the lab itself, kept apart from kernel results.

A LabError means the lab could not observe the kernel (a VM did not boot, ssh failed, nfsd did not start…): the
cell becomes ERROR with the step and the log path, never a FAIL of the kernel under test.
"""
from __future__ import annotations

from pathlib import Path


class LabError(Exception):
    """An infrastructure failure: which step, what happened, where the log is."""

    def __init__(self, step: str, message: str, log: Path | str | None = None):
        self.step = step
        self.message = message
        self.log = str(log) if log else None
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = f" (log: {self.log})" if self.log else ""
        return f"{self.step}: {self.message}{where}"


class KernelUnavailable(Exception):
    """The kernel under test cannot be had on this machine: its cells are SKIP with this reason."""


class HostNotReady(Exception):
    """The host cannot run the lab (not root, missing tools); the message says what to do."""
