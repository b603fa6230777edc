"""The lab host when libvirt is on another machine (`lab run --libvirt-uri qemu+ssh://…`): what changes, in one place.

How the lab changes when libvirt is remote (docs/remote-libvirt.md has the same with the commands):
- **Every libvirt call takes the URI.** `Host.virsh` (networks, snapshots, reverts, domstate, volumes, the pool,
  cleanup) runs `virsh -c URI`; the topology's Vagrantfile says `lv.uri = URI`, so vagrant-libvirt creates the
  domains, uploads the box into the pool and reads the DHCP leases there, all through libvirt's API over ssh.
- **Files the VMs boot from must be on the libvirt host.** `lv.kernel`/`lv.initrd` are paths there, so `stage()`
  uploads each kernel and initrd into the lab's storage pool on that host as a volume named by its content
  (`nfslab-kernel-<sha256>-vmlinuz`, reused while it is there) and gives the topology the volume's path. The box is
  uploaded by vagrant-libvirt itself. The pool `nfslab` is the host's own if it has one, else the lab defines and
  builds it in /var/lib/libvirt/images/nfslab, recorded first. Nothing is copied any other way: the API is the only
  way in, so a lab host needs libvirt, QEMU and sshd, not nfslab.
- **The VMs' networks live on the libvirt host**, isolated as at home (no forwarding). Vagrant's ssh to a VM gets
  `lv.proxy_command` = `ssh … -W %h:%p HOST` (what vagrant-libvirt does by itself with connect_via_ssh; rendered
  by the lab so it has BatchMode, a connect timeout and the URI's key, user, ssh command and no_verify). The lab's
  own ssh to the VMs (lab/remote.py) goes through the same command: `open_socket` is a paramiko ProxyCommand.
- **Which namespace:** the libvirt host is reached from `--libvirt-netns` (an existing namespace, e.g. the one the
  harness lab/remotehost.py makes) or from this machine's own; the lab creates no namespace and no libvirtd here.
- **`lab clean`** reads the state files: each topology records the libvirt it was made on (before anything was
  made), so its domains, snapshots, volumes and networks are removed there; every remote libvirt the lab prepared
  has a state file of its own (`<home>/state/libvirt-<hash>.json`: the target, the pool if the lab made it, the
  kernel volumes), from which the strays named nfslab-*, the lab's volumes and that pool are removed.
  `lab clean --libvirt-uri URI` does the same for a remote libvirt this lab home has no record of.

Not implemented (each fails clearly rather than half-working):
- the packet capture: the VMs' tap devices are on the libvirt host; a matrix with `capture: on` is refused;
- the TCG wrapper (QEMU's translation cache capped at 128 MiB) is a file on this machine: remote VMs run the libvirt
  host's own QEMU with its defaults (~0.8–1.5 GiB RSS each under TCG);
- KVM detection: NFSLAB_ACCEL=kvm|tcg says what the libvirt host has (default tcg);
- the VMs' console logs (/var/log/libvirt/qemu on the libvirt host) are not copied into a failed cell's logs;
- one lab home per libvirt host at a time: slots (the /24 pair and bridge names) are allocated per lab home, so two
  CI shards sharing a libvirt host could pick the same slot. Give each shard a host of its own.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shlex
import subprocess
import threading
from pathlib import Path

import paramiko

from .errors import HostNotReady, LabError
from .host import POOL, Host, require_root
from .libvirt import LibvirtTarget, volume_paths
from .log import log
from .paths import PREFIX, LabHome
from .state import StateFile, locked

#: where the lab makes its pool on a libvirt host that has none named `nfslab`
POOL_DIR = "/var/lib/libvirt/images/nfslab"
#: how long the libvirt host may take to answer `virsh version` (one ssh connection and one API call)
ANSWER_TIMEOUT_S = 30


def lab_host(home: LabHome | None = None, libvirt: LibvirtTarget | None = None) -> Host:
    """The lab host for this libvirt: the lab's own (lab/host.py) or a remote one."""
    if libvirt is not None and libvirt.remote:
        return RemoteLibvirtHost(home or LabHome.default(), libvirt)
    return Host(home or LabHome.default())


def state_name(target: LibvirtTarget) -> str:
    return f"libvirt-{hashlib.sha256(target.uri.encode()).hexdigest()[:12]}.json"


def recorded_targets(home: LabHome) -> list[LibvirtTarget]:
    """Every remote libvirt this lab home prepared and has not cleaned (`lab clean` goes there too)."""
    found = []
    for path in sorted(home.state.glob("libvirt-*.json")):
        for data in StateFile(path).resources("target"):
            try:
                found.append(LibvirtTarget.parse(data["name"], data.get("netns")))
            except ValueError:
                continue
    return [t for t in found if t.remote]


def target_of(state: dict) -> LibvirtTarget | None:
    """The libvirt a topology's state file says it was made on (None: the lab's own)."""
    data = state.get("libvirt") or {}
    if not data.get("uri"):
        return None
    try:
        target = LibvirtTarget.parse(data["uri"], data.get("netns"))
    except ValueError:
        return None
    return target if target.remote else None


def answers(target: LibvirtTarget, timeout: float = ANSWER_TIMEOUT_S) -> str | None:
    """None if the libvirt answers `virsh version`, else why not (the last line virsh or ssh said)."""
    prefix = ["ip", "netns", "exec", target.netns] if target.netns else []
    try:
        cp = subprocess.run([*prefix, "virsh", "-q", "-c", target.uri, "version"], capture_output=True, text=True,
                            timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"no answer within {timeout:.0f}s"
    if cp.returncode == 0:
        return None
    lines = [line for line in (cp.stderr or cp.stdout).strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"virsh exited {cp.returncode}"


def check_reachable(target: LibvirtTarget) -> None:
    """HostNotReady (one line, exit 2) unless the remote libvirt answers: checked before a run creates anything."""
    if not target.remote:
        return
    if target.netns and not Path(f"/run/netns/{target.netns}").exists():
        raise HostNotReady(f"--libvirt-netns {target.netns}: no such network namespace")
    why = answers(target)
    if why is not None:
        raise HostNotReady(f"--libvirt-uri {target.uri}: libvirt does not answer: {why}")


class RemoteLibvirtHost(Host):
    """A libvirt on another machine, reached over ssh: the same interface as the lab's own host (lab/host.py), so
    topologies, the runner and cleanup do not know the difference. It starts nothing on this machine."""

    def __init__(self, home: LabHome, libvirt: LibvirtTarget):
        super().__init__(home, netns=libvirt.netns or "")
        self.libvirt = libvirt
        self.state = StateFile(self.home.state / state_name(libvirt))
        self.log = self.home.run / state_name(libvirt).replace(".json", ".log")
        self._staging = threading.Lock()
        self._digests: dict[tuple[str, int, int], str] = {}

    # ---- reaching it ---------------------------------------------------------------------------------------
    def netns_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    def netns_exists(self) -> bool:
        return not self.netns or super().netns_exists()

    def open_socket(self, address: str, port: int, timeout: float = 10.0):
        """A connection to a VM, made by the libvirt host (`ssh -W`), as vagrant's own ssh goes."""
        sock = paramiko.ProxyCommand(shlex.join([*self.netns_prefix(), *self.libvirt.proxy_argv(address, port)]))
        sock.settimeout(timeout)
        return sock

    def libvirtd_running(self) -> bool:
        """The remote libvirt answers (each call asks: a libvirt host can go away during a run)."""
        return answers(self.libvirt) is None

    # ---- what a topology is given -----------------------------------------------------------------------------
    @property
    def accel(self) -> str:
        forced = os.environ.get("NFSLAB_ACCEL")
        return forced if forced in ("kvm", "tcg") else "tcg"

    @property
    def emulator(self) -> Path | None:
        return None   # the wrapper is a file here; the libvirt host runs its own QEMU (see the module docstring)

    def stage(self, files):
        """A kernel's files as paths on the libvirt host: each uploaded once into the pool, named by its content."""
        if not hasattr(files, "vmlinuz"):
            return files   # a distribution client boots its own disk
        vmlinuz = self.upload(Path(files.vmlinuz))
        initrd = self.upload(Path(files.initrd)) if files.initrd else None
        return dataclasses.replace(files, vmlinuz=Path(vmlinuz), initrd=Path(initrd) if initrd else None)

    def upload(self, path: Path) -> str:
        """The path on the libvirt host of a volume with this file's content (uploaded unless it is there)."""
        name = f"{PREFIX}-kernel-{self._digest(path)[:16]}-{path.name}"
        with self._staging, locked(self.home.state / "libvirt-upload.lock"):
            paths = volume_paths(self.virsh("vol-list", POOL, step="remote: list volumes"))
            if name not in paths:
                self.state.record("volume", name)
                size = str(path.stat().st_size)
                self.virsh("vol-create-as", POOL, name, size, "--format", "raw", step=f"remote: create volume {name}")
                self.virsh("vol-upload", "--pool", POOL, name, str(path), step=f"remote: upload {path.name}",
                           timeout=600)
                return self.virsh("vol-path", "--pool", POOL, name, step=f"remote: volume path {name}").strip()
            return paths[name]

    def _digest(self, path: Path) -> str:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._digests:
            h = hashlib.sha256()
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            self._digests[key] = h.hexdigest()
        return self._digests[key]

    # ---- bring-up and teardown ------------------------------------------------------------------------------
    def up(self, probe_kernel: Path | None = None) -> None:
        """Record the target, check that it answers, make sure the pool exists there (idempotent)."""
        require_root()
        self.home.ensure()
        self.state.record("target", self.libvirt.uri, netns=self.libvirt.netns)
        try:
            check_reachable(self.libvirt)
        except HostNotReady as e:
            raise LabError("remote libvirt", str(e), self.log) from None
        self._ensure_pool()

    def _ensure_pool(self) -> None:
        pools = self.virsh("pool-list", "--all", "--name", step="remote: list pools").split()
        if POOL not in pools:
            self.state.record("pool", POOL, target=POOL_DIR)
            self.virsh("pool-define-as", POOL, "dir", "--target", POOL_DIR, step="remote: define pool")
            self.virsh("pool-build", POOL, step="remote: build pool")
        if POOL not in self.virsh("pool-list", "--name", step="remote: list pools").split():
            self.virsh("pool-start", POOL, step="remote: start storage pool")

    def made_pool(self) -> bool:
        return bool(self.state.resources("pool"))

    def down(self) -> list[str]:
        """The pool, if the lab made it (emptied first by lab/cleanup.py), then this host's record; nothing on this
        machine to stop. A libvirt that does not answer keeps its record, for the next `lab clean`."""
        if not self.libvirtd_running():
            log.warning("%s does not answer: nothing removed there (`lab clean` tries again)", self.libvirt.uri)
            return []
        removed = []
        if self.made_pool() and POOL in self.virsh("pool-list", "--all", "--name", check=False).split():
            self.virsh("pool-destroy", POOL, check=False)
            self.virsh("pool-delete", POOL, check=False)    # its directory, empty by now
            self.virsh("pool-undefine", POOL, check=False)
            removed.append(f"pool {POOL} on {self.libvirt.host}")
        self.state.remove()
        return removed
