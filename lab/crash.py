"""A crash is never a result: what `lab` does with an exception nobody expected (a bug in the lab).

The user gets one line — `lab: internal error: ValueError: … (traceback saved to …/crash-….txt; please report
it)` — and the exit code EXIT_INTERNAL, which no command uses for anything else: 1 means a regression to
`lab run` and `lab compare`, so a crash that exited 1 let a CI job that allows regressions pass without a table.
The whole traceback goes to a file: into the directory of the run or bisect under way when there is one (it
travels with the run's artifacts), else $NFSLAB_HOME/crashes/, else a private file in the temp directory.
"""
from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

#: EX_SOFTWARE in sysexits.h: an internal software error. Not 0-3 (results and bad input), 125/128 (git bisect
#: run's skip and abort) or 130 (interrupted).
EXIT_INTERNAL = 70

_directory: Path | None = None


def save_into(directory: Path | str | None) -> None:
    """Tracebacks go into this directory from now on (the run directory once a command has one)."""
    global _directory
    _directory = Path(directory) if directory is not None else None


def _places() -> list[Path]:
    from .paths import LabHome
    return [p for p in (_directory, LabHome.default().root / "crashes") if p is not None]


def report_text(error: BaseException) -> str:
    """What a bug report needs: the command, where it ran, and the traceback."""
    return (f"command: {' '.join(['lab', *sys.argv[1:]])}\n"
            f"time: {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n"
            f"cwd: {os.getcwd()}\n"
            f"python: {sys.version.split()[0]} on {platform.platform()}\n\n"
            + "".join(traceback.format_exception(type(error), error, error.__traceback__)))


def save(error: BaseException) -> Path | None:
    """Write the traceback to a new file and return its path; None only when not even the temp directory takes
    it. Never raises: it runs while the lab is already failing."""
    try:
        text = report_text(error)
    except Exception:   # noqa: BLE001  (a broken __str__ must not hide the traceback)
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    for directory in _places():
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / name
            path.write_text(text, errors="backslashreplace")
            return path
        except OSError:
            continue
    try:
        fd, name = tempfile.mkstemp(prefix="nfslab-crash-", suffix=".txt")
        with os.fdopen(fd, "w", errors="backslashreplace") as f:
            f.write(text)
        return Path(name)
    except OSError:
        return None


def one_line(error: BaseException, path: Path | None, limit: int = 400) -> str:
    """`internal error: ValueError: what (traceback saved to PATH; please report it)`, on one line."""
    try:
        what = " ".join(str(error).split())
    except Exception:   # noqa: BLE001
        what = "(no message)"
    if len(what) > limit:
        what = what[:limit] + "…"
    where = f"traceback saved to {path}" if path else "the traceback could not be saved"
    name = f"{type(error).__name__}: {what}" if what else type(error).__name__
    return f"internal error: {name} ({where}; please report it)"
