"""Alice's readers: the programs the `reader` axis can make her read the file with, and how the two of nfslab's own
are built into the box.

A buggy client's symptom depends on the system calls after open(2): GNU cat fstat()s the file before it reads it,
busybox cat does not, so the same stale state reads as `Stale file handle` with one and as the old contents with
the other. nfslab's own readers pin the sequence down: `open-read` is open + read (+ write to stdout), and
`open-fstat-read` puts one fstat between them. Both are one C source (guest/nfslab-read.c) compiled twice on the
host, statically, so they run on any guest; the source and the compile lines are part of the box's inputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

GUEST = Path(__file__).parent / "guest"
SOURCE = GUEST / "nfslab-read.c"
INSTALL_DIR = "/usr/local/bin"


@dataclass(frozen=True)
class Reader:
    """One way to read the file: the command alice runs with the file name appended, and, for nfslab's own, the
    compiler flags of its binary."""

    name: str
    command: str
    cflags: tuple[str, ...] | None = None   # None: the guest already has it

    @property
    def binary(self) -> str | None:
        """Where the box has it, relative to the root (nfslab's own readers only)."""
        return f"{INSTALL_DIR}/nfslab-read-{self.name}".lstrip("/") if self.cflags is not None else None


DEFAULT = "cat"
READERS = {r.name: r for r in (
    Reader("cat", "cat"),                          # GNU coreutils: open, fstat, fadvise, read
    Reader("busybox-cat", "busybox cat"),          # open, read
    Reader("open-read", f"{INSTALL_DIR}/nfslab-read-open-read", ("-DNFSLAB_FSTAT=0",)),
    Reader("open-fstat-read", f"{INSTALL_DIR}/nfslab-read-open-fstat-read", ("-DNFSLAB_FSTAT=1",)),
)}


def compile_argv(reader: Reader, output: Path) -> list[str]:
    """The host's gcc, static (the guest's libc does not matter) and optimised like any small tool."""
    return ["gcc", "-static", "-O2", "-Wall", *reader.cflags, "-o", str(output), str(SOURCE)]


def build_inputs() -> dict:
    """What the built readers depend on beyond the source's bytes (hashed with lab/guest/): the compile lines."""
    return {r.name: compile_argv(r, Path(f"/{r.binary}"))[:-3] for r in READERS.values() if r.cflags is not None}


def own() -> list[Reader]:
    """The readers the box build compiles."""
    return [r for r in READERS.values() if r.cflags is not None]
