"""Running host commands: every call has a timeout, its output goes to a log, and a failure says which step
failed and where the log is (STYLE.md: every wait has a timeout, every failure names its log)."""
from __future__ import annotations

import shlex
import subprocess
import threading
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
        env: dict | None = None, cwd: Path | None = None, input: str | None = None,
        follow=None) -> subprocess.CompletedProcess:
    """Run argv, log command and output, raise LabError(step) on a non-zero exit (if check) or a timeout.

    With `follow` (and a log), the output goes into the log as it comes, stdout and stderr interleaved, and
    follow(line) sees each line while the command runs (a build counting its objects); the result's stdout is
    that output, its stderr empty."""
    started = time.monotonic()
    log_line(log, f"$ {shlex.join(argv)}")
    followed = follow is not None and log is not None
    try:
        cp = (_run_followed(argv, log, follow, timeout=timeout, env=env, cwd=cwd, input=input)
              if followed else
              subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, input=input))
    except subprocess.TimeoutExpired as e:
        log_line(log, f"[timeout after {timeout:.0f}s]\n{_text(e.stdout)}{_text(e.stderr)}")
        raise LabError(step, f"`{shlex.join(argv)}` timed out after {timeout:.0f}s", log) from None
    except FileNotFoundError:
        raise LabError(step, f"command not found: {argv[0]}", log) from None
    output = cp.stdout + cp.stderr
    if followed:   # the output is in the log already
        output = "\n" if output and not output.endswith("\n") else ""
    log_line(log, f"{output}[rc={cp.returncode} {time.monotonic() - started:.1f}s]")
    logger.debug("%s: $ %s (rc=%d, %.1fs)", step, shlex.join(argv), cp.returncode, time.monotonic() - started)
    if check and cp.returncode != 0:
        tail = (cp.stderr or cp.stdout).strip().splitlines()[-3:]
        raise LabError(step, f"`{shlex.join(argv)}` exited {cp.returncode}: {' | '.join(tail)}", log)
    return cp


def _run_followed(argv: list[str], log: Path, follow, *, timeout: float, env, cwd,
                  input) -> subprocess.CompletedProcess:
    """The command writes straight into the log; a thread follows the file and hands follow() each new line.
    A file rather than a pipe: a compiler left behind by a killed make cannot keep us waiting on its pipe."""
    with log.open("ab") as sink:
        start = sink.tell()
        stop = threading.Event()
        tail = threading.Thread(target=follow_file, args=(log, start, follow, stop), daemon=True,
                                name=f"follow {log.name}")
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                stdin=subprocess.PIPE if input is not None else None)
        tail.start()
        try:
            if input is not None:
                proc.stdin.write(input.encode())
                proc.stdin.close()
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            stop.set()
            tail.join(timeout=5)
            raise subprocess.TimeoutExpired(argv, timeout) from None
        finally:
            stop.set()
            tail.join(timeout=5)
    with log.open("rb") as f:
        f.seek(start)
        output = f.read().decode(errors="replace")
    return subprocess.CompletedProcess(argv, rc, output, "")


def follow_file(path: Path, offset: int, on_line, stop: threading.Event, interval: float = 0.5) -> None:
    """Call on_line(text) for each whole line appended to path after offset, until stop is set (then the lines
    written before it, and a last unterminated one). A failing on_line never stops the following: progress is a
    courtesy, the command's output stays in the log whatever happens here."""
    pending = b""
    with path.open("rb") as f:
        f.seek(offset)
        while True:
            stopping = stop.is_set()
            chunk = f.read()
            if chunk:
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    _call(on_line, line)
            if stopping:
                if pending:
                    _call(on_line, pending)
                return
            if not chunk:
                stop.wait(interval)


def _call(on_line, line: bytes) -> None:
    try:
        on_line(line.decode(errors="replace"))
    except Exception as e:   # noqa: BLE001  (see follow_file)
        logger.debug("following a log: %s", e)


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
