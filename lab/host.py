"""The lab host: its network namespace, the virtlogd/libvirtd it runs inside it, its storage pool, KVM or TCG.

Why a private libvirtd in a namespace: the network rule says VM networks never appear in the host namespace, and
this machine has no systemd to start libvirtd anyway. Why a mode-000 character device over /dev/kvm: binding
/dev/null makes libvirt think KVM is usable, and it then re-probes QEMU on every API call (measured on this host).

Everything the host creates is written to the state file before it is created, so `lab clean` can remove it after
a SIGKILL. Talking to VMs goes through `netns_prefix()` (subprocesses) and `open_socket()` (paramiko): the rest of
the lab process stays in the host namespace.
"""
from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
from pathlib import Path

from . import hostdeps
from .errors import HostNotReady, LabError
from .libvirt import LOCAL_URI, LibvirtTarget
from .paths import NETNS, PREFIX, LabHome
from .daemons import pid_alive, process_running, read_pid, start_daemon, start_libvirtd, terminate
from .proc import run
from .state import StateFile

CLONE_NEWNET = 0x40000000
LIBVIRT_URI = LOCAL_URI
#: where the lab's libvirtd (system mode, its default run dir) writes each running domain's `<domain>.pid`
LIBVIRT_QEMU_RUN = Path("/run/libvirt/qemu")
POOL = PREFIX
#: the host commands every run needs (lab host, lab box, capture) → Debian package; the map is lab/hostdeps.py
REQUIRED_TOOLS = {what: package for group in (hostdeps.LAB_HOST, hostdeps.LAB_BOX, hostdeps.CAPTURE)
                  for what, package in group.needs.items() if not what.startswith("/")}
TB_CACHE_MIB = 128


def missing_commands(tools=None) -> list[str]:
    """The host commands (all the lab runs, or these) that are not on PATH. Only PATH counts: the lab's
    subprocesses search the same PATH, so a tool outside it would fail later as "command not found". An absolute
    path among them (a header, a keyring) must exist instead."""
    return [tool for tool in (tools or REQUIRED_TOOLS) if not hostdeps.present(tool)]


def missing_tools() -> list[str]:
    """Debian packages `lab setup` would install: what is missing of anything the lab may run."""
    return hostdeps.missing_packages()


def require_root() -> None:
    if os.geteuid() != 0:
        raise HostNotReady("the lab needs root (network namespaces, libvirtd, debootstrap): run it with sudo")


def require_tools(tools=None, *, setup_hint: bool = True) -> None:
    """One line naming what is missing and the packages that bring it; `lab setup` itself, once its apt-get has
    run, says only the apt-get (setup_hint=False)."""
    missing = missing_commands(tools)
    if missing:
        install = hostdeps.install_hint(sorted({_package(tool) for tool in missing}))
        fix = f"run `lab setup`, or {install}" if setup_hint else install
        raise HostNotReady(f"missing: {', '.join(missing)} (fix: {fix})")


def _package(what: str) -> str:
    for group in hostdeps.GROUPS:
        if what in group.needs:
            return group.needs[what]
    raise KeyError(f"{what} is not in lab/hostdeps.py")





class Host:
    """One lab host: created idempotently by `up()`, removed by `down()`; shared by every topology of the lab.

    This one drives its own libvirtd on this machine; lab/remotelibvirt.py `RemoteLibvirtHost` is the same
    interface for a libvirt on another machine (`--libvirt-uri qemu+ssh://…`), and `lab_host()` there picks one."""

    libvirt = LibvirtTarget()

    def __init__(self, home: LabHome | None = None, netns: str = NETNS):
        self.home = home or LabHome.default()
        self.netns = netns
        self.state = StateFile(self.home.state / "host.json")
        self.log = self.home.run / "host.log"

    # ---- reaching the namespace -------------------------------------------------------------------------
    def netns_prefix(self) -> list[str]:
        """Prefix for any subprocess that must talk to the VMs (vagrant, virsh, ssh)."""
        return ["ip", "netns", "exec", self.netns]

    def open_socket(self, address: str, port: int, timeout: float = 10.0) -> socket.socket:
        """A TCP connection made from inside the lab namespace; the socket stays there when handed back.

        setns(2) changes only the calling thread's namespace, so a short-lived thread does it and the
        lab process itself never leaves the host namespace."""
        result: dict = {}

        def connect_inside() -> None:
            try:
                with open(f"/run/netns/{self.netns}") as ns:
                    libc = ctypes.CDLL(None, use_errno=True)
                    if libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns({self.netns}) failed")
                result["sock"] = socket.create_connection((address, port), timeout=timeout)
            except BaseException as e:  # handed back to the caller's thread
                result["error"] = e

        t = threading.Thread(target=connect_inside, name=f"netns-connect-{address}")
        t.start()
        t.join()
        if "error" in result:
            raise result["error"]
        return result["sock"]

    def virsh(self, *args: str, timeout: float = 60, check: bool = True, step: str = "virsh") -> str:
        return run([*self.netns_prefix(), "virsh", "-q", "-c", self.libvirt.uri, *args], step=step,
                   timeout=timeout, log=self.log, check=check).stdout

    # ---- what a topology on this host is given ---------------------------------------------------------------
    def stage(self, files):
        """A kernel's files as the libvirt host sees them: here, the files themselves (lab/remotelibvirt.py
        uploads them)."""
        return files

    @property
    def emulator(self) -> Path | None:
        """The QEMU a topology's VMs run: the TCG wrapper (`_write_tcg_wrapper`)."""
        return self.tcg_wrapper

    # ---- state -------------------------------------------------------------------------------------------
    @property
    def accel(self) -> str:
        return self.state.get("accel", "tcg")

    def netns_exists(self) -> bool:
        return Path(f"/run/netns/{self.netns}").exists()

    def libvirtd_running(self) -> bool:
        return pid_alive(read_pid(self.home.run / "libvirtd.pid"))

    # ---- bring-up ----------------------------------------------------------------------------------------
    def up(self, probe_kernel: Path | None = None) -> None:
        """Make the namespace, daemons and pool exist (idempotent; ~2 s when starting from nothing)."""
        require_root()
        require_tools()
        self.home.ensure()
        self._ensure_netns()
        if self.state.get("accel") is None:
            self.state.set("accel", detect_accel(probe_kernel, self.home.run / "kvm-probe.log"))
        self._ensure_daemon("virtlogd", ["virtlogd", "-d", "-p", str(self.home.run / "virtlogd.pid")])
        self._ensure_libvirtd()
        self._ensure_pool()
        self._write_tcg_wrapper()

    def _ensure_netns(self) -> None:
        if self.netns_exists():
            return
        self.state.record("netns", self.netns)
        run(["ip", "netns", "add", self.netns], step="host: create network namespace", timeout=10, log=self.log)
        run([*self.netns_prefix(), "ip", "link", "set", "lo", "up"], step="host: netns lo up", timeout=10,
            log=self.log)

    def _ensure_daemon(self, name: str, argv: list[str], env: dict | None = None) -> None:
        start_daemon(name, argv, self.home.run / f"{name}.pid", self.netns_prefix(), self.log, self.state, env)

    def _ensure_libvirtd(self) -> None:
        start_libvirtd(self.home.run, self.netns_prefix(), self.log, self.state, mask_kvm=self.accel != "kvm")

    def _ensure_pool(self) -> None:
        if POOL in self.virsh("pool-list", "--all", "--name").split():
            if POOL not in self.virsh("pool-list", "--name").split():
                self.virsh("pool-start", POOL, step="host: start storage pool")
            return
        self.state.record("pool", POOL)
        self.virsh("pool-define-as", POOL, "dir", "--target", str(self.home.pool), step="host: define pool")
        self.virsh("pool-start", POOL, step="host: start storage pool")

    def _write_tcg_wrapper(self) -> None:
        """QEMU 7.2's TCG cache defaults to 1 GiB (0.8-1.5 GiB RSS per VM); vagrant-libvirt cannot set it, so
        the emulator is a wrapper that rewrites `-accel tcg` (measured ~345 MB RSS with 128 MiB)."""
        wrapper = self.tcg_wrapper
        wrapper.write_text(f"""#!/bin/sh
# nfslab: cap QEMU's TCG translation cache (tb-size={TB_CACHE_MIB} MiB) to keep a VM under ~400 MiB RSS.
prev=
for a in "$@"; do
  shift
  if [ "$prev" = "-accel" ] && [ "$a" = "tcg" ]; then set -- "$@" "tcg,tb-size={TB_CACHE_MIB}"; else set -- "$@" "$a"; fi
  prev=$a
done
exec /usr/bin/qemu-system-x86_64 "$@"
""")
        wrapper.chmod(0o755)

    @property
    def tcg_wrapper(self) -> Path:
        return self.home.bin / "qemu-tcg"

    # ---- who uses the host ---------------------------------------------------------------------------------
    # Several runs (and xdist workers) share one host; each holds a HostLease while it needs the host, so a run
    # that ends does not pull the namespace from under another that is, say, still building its next kernel.
    @property
    def _users_dir(self) -> Path:
        return self.home.state / "users"

    def register_user(self) -> None:
        """This process uses the host (its pid file). Only HostLease calls it: the lease counts this process's
        holders, and several holders (the runners of `lab run --jobs N`) share the one pid file."""
        self._users_dir.mkdir(parents=True, exist_ok=True)
        (self._users_dir / str(os.getpid())).write_text("")

    def unregister_user(self) -> None:
        (self._users_dir / str(os.getpid())).unlink(missing_ok=True)

    def other_users(self) -> list[int]:
        """Live processes other than this one that registered as users (dead ones are forgotten)."""
        users = []
        for f in self._users_dir.glob("*") if self._users_dir.is_dir() else []:
            pid = int(f.name) if f.name.isdigit() else 0
            if pid == os.getpid():
                continue
            if process_running(pid):
                users.append(pid)
            else:
                f.unlink(missing_ok=True)
        return users

    # ---- teardown ----------------------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Stop what up() started and delete the namespace; returns what was removed."""
        removed = []
        if self.libvirtd_running():
            for net in self.virsh("net-list", "--name", check=False).split():
                self.virsh("net-destroy", net, check=False)  # stops its dnsmasq, which outlives libvirtd
        for res in reversed(self.state.resources()):
            if res["kind"] == "daemon" and self._stop_daemon(Path(res["pidfile"])):
                removed.append(f"daemon {res['name']}")
            if res["kind"] == "pool":
                self.virsh("pool-destroy", POOL, check=False) if self.libvirtd_running() else None
            self.state.forget(res["kind"], res["name"])
        for pid in self._netns_pids():
            removed.append(f"process {pid} left in netns")
            terminate(pid)
        if self.netns_exists():
            run(["ip", "netns", "delete", self.netns], step="host: delete namespace", timeout=10, log=self.log,
                check=False)
            removed.append(f"netns {self.netns}")
        self.state.forget("netns", self.netns)
        return removed

    def _stop_daemon(self, pidfile: Path) -> bool:
        pid = read_pid(pidfile)
        if not pid_alive(pid):
            return False
        return terminate(pid)

    def _netns_pids(self) -> list[int]:
        if not self.netns_exists():
            return []
        cp = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True)
        return [int(p) for p in cp.stdout.split()]




class HostLease:
    """Holding the host: while any lease of this process is held, its pid is registered as a user of the host, so
    no other run's teardown (lab/cleanup.py `release`) takes down the namespace and libvirtd. The only caller of
    Host.register_user/unregister_user.

    Leases are counted per process and users directory: a `lab run --jobs N` has a runner (and a lease) per worker
    thread, and the first worker to finish must not unregister the process while the others still run. Use it as a
    context manager, or `acquire()` / `release()` (idempotent: a released lease releases nothing twice)."""

    _lock = threading.Lock()
    _holders: dict[Path, int] = {}

    def __init__(self, host: Host):
        self.host = host
        self.held = False

    def acquire(self) -> "HostLease":
        with HostLease._lock:
            if self.held:
                return self
            key = self.host._users_dir
            HostLease._holders[key] = HostLease._holders.get(key, 0) + 1
            if HostLease._holders[key] == 1:
                self.host.register_user()
            self.held = True
        return self

    def release(self) -> None:
        with HostLease._lock:
            if not self.held:
                return
            key = self.host._users_dir
            HostLease._holders[key] -= 1
            if HostLease._holders[key] == 0:
                del HostLease._holders[key]
                self.host.unregister_user()
            self.held = False

    @classmethod
    def holders(cls, host: Host) -> int:
        """How many leases of this process hold `host` now."""
        with cls._lock:
            return cls._holders.get(host._users_dir, 0)

    def __enter__(self) -> "HostLease":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()




def detect_accel(kernel: Path | None, log: Path) -> str:
    """'kvm' only if a guest really boots with it: /dev/kvm can exist and still hang guests (seen on this host).

    The probe boots the lab kernel under KVM with a bogus init and waits up to 20 s for it to print its banner;
    a working KVM prints it in well under a second. NFSLAB_ACCEL=kvm|tcg overrides the probe."""
    forced = os.environ.get("NFSLAB_ACCEL")
    if forced in ("kvm", "tcg"):
        return forced
    if not os.access("/dev/kvm", os.R_OK | os.W_OK) or kernel is None or not kernel.exists():
        return "tcg"
    argv = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "256", "-display", "none", "-nodefaults",
            "-no-reboot", "-serial", "stdio", "-kernel", str(kernel), "-append", "console=ttyS0 panic=-1 init=/none"]
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        out = cp.stdout + cp.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(out)
    return "kvm" if "Linux version" in out else "tcg"
