"""The lab's daemons (virtlogd, libvirtd, a stand-in host's sshd): started with a pid file, recorded before they
start, stopped by that PID and no other way (the brief: end only processes you started, by PID).

Why a module of its own: lab/host.py starts the lab's private libvirtd with these, and lab/remotehost.py starts a
second one — the stand-in for another lab host — the same way; neither should carry the other's code.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from .libvirt import LOCAL_URI
from .proc import run, wait_until
from .state import StateFile



def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def process_running(pid: int | None) -> bool:
    """The process exists and is not a zombie: a killed lab run whose parent has not reaped it is gone for good."""
    return pid_alive(pid) and not is_zombie(pid)


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def start_daemon(name: str, argv: list[str], pidfile: Path, prefix: list[str], log: Path,
                 state: StateFile | None = None, env: dict | None = None) -> None:
    """Start a daemon that writes `pidfile` (run under `prefix`, e.g. `ip netns exec NAME`) unless it runs already;
    recorded in `state` first, so `lab clean` stops it after a crash."""
    if pid_alive(read_pid(pidfile)):
        return
    if state is not None:
        state.record("daemon", name, pidfile=str(pidfile))
    run([*prefix, *argv], step=f"host: start {name}", timeout=30, log=log, env=env)
    wait_until(lambda: pid_alive(read_pid(pidfile)), timeout=15, step=f"host: start {name}",
               what=f"{name} pid file {pidfile}", log=log)


def start_libvirtd(rundir: Path, prefix: list[str], log: Path, state: StateFile | None = None, *,
                   mask_kvm: bool = True, private=None) -> None:
    """libvirtd, its pid file and log in `rundir`, until `virsh version` answers. With mask_kvm, QEMU cannot open
    /dev/kvm (see the module's docstring); with `private` (lab/remotehost.py PrivateLibvirt), it sees libvirt
    directories of its own: a second libvirtd on this machine, the stand-in for another lab host."""
    pidfile = rundir / "libvirtd.pid"
    env = dict(os.environ, LIBVIRT_LOG_OUTPUTS=f"3:file:{rundir / 'libvirtd.log'}")
    argv = ["/usr/sbin/libvirtd", "-d", "-p", str(pidfile)]
    masked = None
    if mask_kvm:
        masked = rundir / "kvm-masked"
        if not masked.exists():
            os.mknod(masked, 0o000 | 0o020000, os.makedev(1, 3))  # mode-000 char device: unopenable for qemu
            masked.chmod(0)
    if private is not None:
        argv = private.wrap(argv, mask_kvm=masked)
    elif masked is not None:
        # only libvirtd's private mount namespace sees the mask; the host's /dev/kvm is untouched
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                f"[ -e /dev/kvm ] && mount --bind {masked} /dev/kvm; exec {' '.join(argv)}"]
    start_daemon("libvirtd", argv, pidfile, prefix, log, state, env)
    uri = LOCAL_URI if private is None else f"{LOCAL_URI}?socket={private.socket}"
    wait_until(lambda: run([*prefix, "virsh", "-c", uri, "version"], step="host: libvirtd", timeout=20,
                           check=False).returncode == 0,
               timeout=30, interval=0.3, step="host: start libvirtd", what="libvirtd to answer", log=log)


def terminate(pid: int, grace: float = 10.0) -> bool:
    """SIGTERM a process we started (by PID), SIGKILL it if it ignores us."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not process_running(pid):
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return True


def is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True
