"""Running host commands: every call has a timeout, its output goes to a log, and a failure says which step
failed and where the log is (STYLE.md: every wait has a timeout, every failure names its log)."""
from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path

from .errors import LabError
from .log import log as logger   # `log` below is a command's log file


def log_line(log: Path | None, text: str) -> None:
    if log is None:
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write(text if text.endswith("\n") else text + "\n")


def run(argv: list[str], *, step: str, timeout: float, log: Path | None = None, check: bool = True,
        env: dict | None = None, cwd: Path | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    """Run argv, log command and output, raise LabError(step) on a non-zero exit (if check) or a timeout."""
    started = time.monotonic()
    log_line(log, f"$ {shlex.join(argv)}")
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, input=input)
    except subprocess.TimeoutExpired as e:
        log_line(log, f"[timeout after {timeout:.0f}s]\n{_text(e.stdout)}{_text(e.stderr)}")
        raise LabError(step, f"`{shlex.join(argv)}` timed out after {timeout:.0f}s", log) from None
    except FileNotFoundError:
        raise LabError(step, f"command not found: {argv[0]}", log) from None
    log_line(log, f"{cp.stdout}{cp.stderr}[rc={cp.returncode} {time.monotonic() - started:.1f}s]")
    logger.debug("%s: $ %s (rc=%d, %.1fs)", step, shlex.join(argv), cp.returncode, time.monotonic() - started)
    if check and cp.returncode != 0:
        tail = (cp.stderr or cp.stdout).strip().splitlines()[-3:]
        raise LabError(step, f"`{shlex.join(argv)}` exited {cp.returncode}: {' | '.join(tail)}", log)
    return cp


def _text(b) -> str:
    if b is None:
        return ""
    return b.decode(errors="replace") if isinstance(b, bytes) else b


def wait_until(predicate, *, timeout: float, interval: float = 0.2, step: str, what: str, log: Path | None = None):
    """Poll predicate() until it returns a truthy value; LabError(step) when the timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise LabError(step, f"timed out after {timeout:.0f}s waiting for {what}", log)
        time.sleep(interval)
