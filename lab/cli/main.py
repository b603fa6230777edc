"""`lab`'s entry point: every command group registered on the app, and every failure turned into one line and an
exit code: 2 bad input or a host that is not ready, 3 a lab error, 130 interrupted, 70 (any command) an internal
error, a bug: one line, the traceback in a file (lab/crash.py)."""
from __future__ import annotations

import sys

import typer

from .. import crash
from ..bisect import EXIT_ABORT
from ..errors import HostNotReady, LabError
from ..log import log
from ..spec import SpecError
# in the order `lab --help` lists them
from . import setup, run, machines, bisect, ci  # noqa: F401,I001  (each registers its commands on app)
from .common import Usage, app


def _fail(message: str, code: int) -> None:
    """One line on stderr, never wrapped, never a traceback."""
    print(f"lab: {message}", file=sys.stderr)
    sys.exit(code)


def _bisect_step() -> bool:
    """`git bisect run` is calling: its exit code is read as a verdict on a commit (lab/cli/bisect.py)."""
    return [a for a in sys.argv[1:] if not a.startswith("-")][:1] == ["bisect-step"]


def _crash(error: Exception) -> None:
    """A bug, not a result: one line, the traceback in a file, and an exit code that no result uses. For
    `git bisect run` that code is 128, which aborts the bisect rather than marking the commit bad."""
    path = crash.save(error)
    log.debug("the traceback of the internal error:", exc_info=error)   # -v shows it here as well
    _fail(crash.one_line(error, path), EXIT_ABORT if _bisect_step() else crash.EXIT_INTERNAL)


def main() -> None:
    from .. import log as logs
    logs.setup()   # before the options are read; `-v`/`-q` set it up again
    crash.save_into(None)
    try:
        code = app(standalone_mode=False)   # without standalone mode, click returns typer.Exit's code
        sys.exit(code if isinstance(code, int) else 0)
    except (SpecError, Usage, HostNotReady) as e:
        _fail(str(e), 2)
    except LabError as e:
        _fail(str(e), 3)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:
        if hasattr(e, "show") and hasattr(e, "exit_code"):  # click's usage errors (vendored by typer)
            e.show()
            # git bisect run would read 2 as "bad commit"; 128 makes it abort (lab/cli/bisect.py)
            sys.exit((128 if _bisect_step() else 2) if e.exit_code else 0)
        if type(e).__name__ == "Abort":
            sys.exit(130)
        _crash(e)
