"""Commands in the VMs: fabric connections opened from inside the lab namespace, every command timed and logged.

This is the backend (testinfra-style): nfs.py and the experiments ask their questions through `Remote.run` and
know nothing of Vagrant or namespaces. Connections are made as root with the lab's own key; the socket comes from
`Host.open_socket`, so the lab process stays in the host namespace.
"""
from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import fabric
import invoke
import paramiko

from .errors import LabError
from .proc import log_line
from .timeouts import Timeouts

CHANNEL_TIMEOUT_S = 30   # opening a session takes < 1 s on a live VM, even under TCG on loaded cores
SocketFactory = Callable[[str, int, float], object]


@dataclass
class Result:
    stdout: str
    stderr: str
    rc: int

    @property
    def ok(self) -> bool:
        return self.rc == 0


class Remote:
    """One VM reached over ssh; commands and outputs go to `log` (switched per cell with `log_to`). A command
    given no timeout of its own gets `command_timeout`."""

    def __init__(self, name: str, address: str, port: int, key: Path, open_socket: SocketFactory, log: Path,
                 command_timeout: float = Timeouts.command):
        self.name = name
        self.address = address
        self.port = port
        self.key = key
        self.open_socket = open_socket
        self.log = log
        self.command_timeout = command_timeout
        self._conn: fabric.Connection | None = None

    def log_to(self, log: Path) -> None:
        self.log = log

    def _connection(self, timeout: float = 10) -> fabric.Connection:
        if self._conn is None or not self._conn.is_connected:
            self.close()
            sock = self.open_socket(self.address, self.port, timeout)
            conn = fabric.Connection(self.address, user="root", port=self.port, connect_timeout=timeout,
                                     connect_kwargs={"key_filename": str(self.key), "sock": sock,
                                                     "look_for_keys": False, "allow_agent": False,
                                                     "banner_timeout": timeout, "auth_timeout": timeout})
            conn.client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            conn.open()
            # paramiko waits an hour for a new channel by default: a VM that died mid-cell must be an ERROR in
            # seconds, not a hung run (an open channel is bounded by each command's own timeout)
            conn.client.get_transport().channel_timeout = CHANNEL_TIMEOUT_S
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # a reverted guest has no TCP state left to close politely
                pass
            self._conn = None

    def run(self, command: str, *, timeout: float | None = None, check: bool = True, step: str | None = None) -> Result:
        """Run a shell command as root; LabError(step) on failure (if check), on timeout, or if ssh breaks."""
        step = step or f"{self.name}: {command.split()[0] if command.split() else command}"
        timeout = self.command_timeout if timeout is None else timeout
        started = time.monotonic()
        log_line(self.log, f"[{time.strftime('%H:%M:%S')}] {self.name}$ {command}")
        try:
            r = self._connection().run(command, hide=True, warn=True, timeout=timeout, in_stream=False)
        except invoke.exceptions.CommandTimedOut:
            self.close()
            raise LabError(step, f"`{command}` timed out after {timeout:.0f}s on {self.name}", self.log) from None
        except (OSError, paramiko.SSHException, EOFError) as e:
            self.close()
            raise LabError(step, f"ssh to {self.name} ({self.address}) failed: {e}", self.log) from None
        result = Result(r.stdout, r.stderr, r.exited)
        log_line(self.log, f"{r.stdout}{r.stderr}[rc={r.exited} {time.monotonic() - started:.2f}s]")
        if check and not result.ok:
            tail = " | ".join((r.stderr or r.stdout).strip().splitlines()[-3:])
            raise LabError(step, f"`{command}` exited {r.exited} on {self.name}: {tail}", self.log)
        return result

    def write(self, path: str, content: str, mode: str = "644") -> None:
        self.run(f"cat > {shlex.quote(path)} <<'NFSLAB_EOF'\n{content}\nNFSLAB_EOF\nchmod {mode} {shlex.quote(path)}",
                 step=f"{self.name}: write {path}")

    def wait_ready(self, timeout: float = Timeouts.ssh) -> float:
        """Retry until a command runs: after a snapshot revert the first connection may fail (REPORT.md)."""
        started = time.monotonic()
        last: Exception | None = None
        while time.monotonic() - started < timeout:
            try:
                self.run("true", timeout=min(10, timeout), step=f"{self.name}: ssh ready")
                return time.monotonic() - started
            except LabError as e:
                last = e
                time.sleep(0.3)
        raise LabError(f"{self.name}: ssh ready", f"no ssh within {timeout:.0f}s ({last})", self.log)

    def clock_offset(self, samples: int = 3) -> float:
        """Guest clock minus host clock (s), from the sample with the shortest round trip (error ≤ RTT/2).

        The rename's time is taken on bob's clock and alice's reads on hers; both map onto the host clock."""
        best = None
        for _ in range(samples):
            sent = time.time()
            guest = float(self.run("date +%s.%N", timeout=10, step=f"{self.name}: clock").stdout)
            back = time.time()
            rtt = back - sent
            if best is None or rtt < best[0]:
                best = (rtt, guest - (sent + back) / 2)
        return best[1]
