"""Failures of the lab itself, kept apart from kernel results, and mistakes in the files it is given.

A LabError means the lab could not observe the kernel (a VM did not boot, ssh failed, nfsd did not start…): the
cell becomes ERROR with the step and the log path, never a FAIL of the kernel under test. A SpecError (or a BadFile)
means a file the lab reads is wrong: one line `FILE:LINE: what is wrong`, exit code 2, never a traceback.
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


def display_path(path: Path | str) -> str:
    """The path as the user would type it: relative to the working directory when it lies below it."""
    if isinstance(path, str) and "://" in path:   # a baseline's URL stays a URL
        return path
    path = Path(path)
    if path.is_absolute():
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)
    return str(path)


def one_line(text: str) -> str:
    """Control characters (a newline in a hostile value, an escape sequence) shown escaped: a message stays one
    line and cannot drive the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class SpecError(Exception):
    """A mistake in a spec file, said in one line that an editor can jump to."""

    def __init__(self, path: Path | str, line: int | None, message: str):
        self.path = path if isinstance(path, str) and "://" in path else Path(path)
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = display_path(self.path) + (f":{self.line}" if self.line else "")
        return one_line(f"{where}: {self.message}")


class BadFile(SpecError):
    """A file the lab reads (results, run.json, changes.json, a step log, a baseline archive) that it cannot use:
    missing, not a regular file, too large, not UTF-8, not JSON, or not the shape it should have."""
