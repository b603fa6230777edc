"""What the lab says while it works: one logger (`lab`), set up in one place, for every command.

Progress and status lines are records of the `lab` logger (`log.info(...)`; `-q` keeps warnings and errors only,
`-v` adds debug lines). They carry text the lab does not control — command output, paths, kernel, cell and commit
names — and a make error reads `[…/scripts/kconfig/Makefile:123: tinyconfig]`, a commit subject
`Revert "[media] …"`: so nothing here is parsed as rich markup (or emoji codes). On a terminal, rich's
RichHandler shows time and level; anywhere else (CI logs, pipes, files) a plain `HH:MM:SS message` formatter keeps
each record one whole line, as grep and a CI log viewer want it.
"""
from __future__ import annotations

import logging
import sys

log = logging.getLogger("lab")

QUIET, NORMAL, VERBOSE = -1, 0, 1
LEVELS = {QUIET: logging.WARNING, NORMAL: logging.INFO, VERBOSE: logging.DEBUG}
TIME_FORMAT = "%H:%M:%S"


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes (pytest's capture replaces it between tests)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


class _Plain(logging.Formatter):
    """`12:00:01 message`; a warning or an error says so: `12:00:01 WARNING: message`."""

    def __init__(self):
        super().__init__("%(asctime)s %(message)s", TIME_FORMAT)
        self._loud = logging.Formatter("%(asctime)s %(levelname)s: %(message)s", TIME_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record) if record.levelno < logging.WARNING else self._loud.format(record)


def _rich_handler() -> logging.Handler:
    from rich.console import Console
    from rich.highlighter import NullHighlighter
    from rich.logging import RichHandler
    return RichHandler(console=Console(stderr=True, emoji=False, highlight=False), markup=False, show_path=False,
                       highlighter=NullHighlighter(), keywords=[], rich_tracebacks=False,
                       log_time_format=TIME_FORMAT, omit_repeated_times=False)


def _plain_handler() -> logging.Handler:
    handler = _Stderr()
    handler.setFormatter(_Plain())
    return handler


def _is_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def live_console():
    """The console the log's lines print on when a live display may share it (a terminal, progress not off with
    -q): rich's Progress drawn there keeps itself below the lines. None otherwise: plain lines only."""
    for handler in log.handlers:
        if getattr(handler, "lab_handler", False) and hasattr(handler, "console") and log.level <= logging.INFO:
            return handler.console
    return None


def setup(verbosity: int = NORMAL, terminal: bool | None = None) -> logging.Logger:
    """Send the `lab` logger's records to stderr at the level `verbosity` chooses (QUIET, NORMAL, VERBOSE);
    `terminal` picks rich (True) or plain lines (False), by default whether stderr is a terminal. Calling it again
    replaces the handler: each command sets it up once, and tests may run many commands in one process."""
    for handler in [h for h in log.handlers if getattr(h, "lab_handler", False)]:
        log.removeHandler(handler)
    handler = _rich_handler() if (_is_terminal() if terminal is None else terminal) else _plain_handler()
    handler.lab_handler = True
    log.addHandler(handler)
    log.setLevel(LEVELS[max(QUIET, min(VERBOSE, verbosity))])
    log.propagate = False   # the lab's lines are shown once, here, whatever a host application does with root
    return log
