"""Writing the lab's files so a crash never leaves half of one: whole-file replacement and whole-line appends,
both fsync'ed. The one place for both; every module that writes a result, a report or a state file uses these."""
from __future__ import annotations

import os
import threading
from pathlib import Path


def _ends_with_newline(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"
    except (FileNotFoundError, OSError):
        return True  # missing or empty: nothing to repair


def append_line(path: Path, line: str) -> None:
    """One write of a whole line to an O_APPEND file, then fsync: lines never interleave, and survive a crash.

    A torn last line left by a crash is closed off first, so it stays one bad line instead of eating this one."""
    data = line.encode() + b"\n"
    if not _ends_with_newline(path):
        data = b"\n" + data
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(f"short write to {path}: {written} of {len(data)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of it (written, fsync'ed, then renamed over it)."""
    path = Path(path)
    # pid and thread: two workers of one `lab run --jobs N` may write one directory's files at the same time
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
