"""The lab's memory of what it created, written *before* each thing is created.

A run that is killed with SIGKILL cannot clean up after itself; the next `lab clean` (or the next run) reads these
files and removes what they name. So every domain, network, volume, namespace and daemon is recorded here first,
and forgotten only after it is really gone (the idea of molecule's state file).

Updates are read-modify-write; within one process they are serialised (`_UPDATES`), because the workers of
`lab run --jobs N` are threads that may update a file at the same time (the host's, the slot allocation).
"""
from __future__ import annotations

import fcntl
import json
import threading
from contextlib import contextmanager
from pathlib import Path

from .files import write_atomic

_UPDATES = threading.RLock()


def write_json_atomically(path: Path, data) -> None:
    """Write JSON so a crash leaves either the old or the new file, never a torn one (lab/files.py)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


@contextmanager
def locked(path: Path):
    """Hold an exclusive flock on `path` (created if missing). Each call opens the file anew, so the lock excludes
    other threads of this process as well as other processes: flock locks belong to an open file description, not
    to a process (unlike fcntl's POSIX locks). `lab run --jobs N` runs its workers as threads and relies on this."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class StateFile:
    """A small JSON document listing resources by (kind, name) with free-form details, and keys of its own (a
    topology's are listed in lab/topology/statefile.py, which also refuses others)."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"resources": []}
        except json.JSONDecodeError:
            # a torn file cannot happen with atomic writes; if it does, keep what is readable: nothing.
            return {"resources": []}

    def resources(self, kind: str | None = None) -> list[dict]:
        return [r for r in self.load()["resources"] if kind is None or r["kind"] == kind]

    def record(self, kind: str, name: str, **info) -> None:
        with _UPDATES:
            data = self.load()
            data["resources"] = [r for r in data["resources"] if (r["kind"], r["name"]) != (kind, name)]
            data["resources"].append({"kind": kind, "name": name, **info})
            write_json_atomically(self.path, data)

    def forget(self, kind: str, name: str) -> None:
        with _UPDATES:
            data = self.load()
            data["resources"] = [r for r in data["resources"] if (r["kind"], r["name"]) != (kind, name)]
            write_json_atomically(self.path, data)

    def set(self, key: str, value) -> None:
        with _UPDATES:
            data = self.load()
            data[key] = value
            write_json_atomically(self.path, data)

    def get(self, key: str, default=None):
        return self.load().get(key, default)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
