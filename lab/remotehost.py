"""A second lab host on this machine, made and removed by the lab: what `--libvirt-uri qemu+ssh://…` is proven
against without a second machine (tests/lab/test_remote_libvirt.py; `python -m lab.remotehost prove`).

    client namespace (the lab's side)               host namespace (the "other machine")
    nfslabr-<id>-lab  10.254.19.1/30 ─── veth ───  10.254.19.2/30  nfslabr-<id>-host
                                                    sshd :22 (root, one authorized key, a host key of its own)
                                                    virtlogd + libvirtd (libvirt directories of their own)

A real lab host is a machine with libvirt, QEMU and sshd that trusts the lab's key. Here the machine is a network
namespace, and its libvirt is a second libvirtd started the way lab/host.py starts the lab's own (`start_daemon`,
`start_libvirtd`), with `PrivateLibvirt`'s directories in place of /etc/libvirt, /run/libvirt, /var/lib/libvirt…:
sharing them would hand it the first libvirtd's domains, pools and running QEMUs. sshd gets the same view, so
virt-ssh-helper in an ssh session reaches *this* libvirtd at the usual socket, and the URI is the one a real host
takes: `qemu+ssh://root@10.254.19.2/system?keyfile=…&command=…`. `command=` names an ssh wrapper that knows only this
host's key (a known_hosts of its own, strict checking): the key is checked, and root's ~/.ssh is not touched
(`no_verify=1` would also connect, but OpenSSH would then write the key into root's known_hosts).

Everything is under `root` and in the two namespaces, recorded in root/state.json before it is made. `down()` stops
the daemons and every process left in the host namespace (by PID), deletes the namespaces and `root`; `leftovers()`
names what is still there (nothing, after `down()`). Namespace names start with `nfslabr-`, never the lab's own.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from . import hostdeps
from .errors import HostNotReady
from .daemons import pid_alive, read_pid, start_daemon, start_libvirtd, terminate
from .host import require_root
from .libvirt import LibvirtTarget
from .proc import run
from .state import StateFile

SUBNET = "10.254.19"
NS_PREFIX = "nfslabr-"
SSHD = "/usr/sbin/sshd"
DAEMONS = ("sshd", "libvirtd", "virtlogd")


class PrivateLibvirt:
    """libvirt's own directories for a second libvirtd on this machine: a libvirtd (or virtlogd, or an sshd whose
    sessions run virt-ssh-helper) started through `wrap` sees `root`/etc, run, lib, cache, log in place of
    /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt, and a /run of its own.

    A second system libvirtd that shared them would load the first one's domains, networks and pools, and take over
    its running QEMUs: with these, it knows only what it made. The mounts live in the daemon's own mount namespace
    (unshare -m, private propagation) and end with it; nothing on the host changes."""

    DIRS = {"etc": "/etc/libvirt", "run": "/run/libvirt", "lib": "/var/lib/libvirt", "cache": "/var/cache/libvirt",
            "log": "/var/log/libvirt"}

    def __init__(self, root: Path):
        self.root = root

    def create(self, etc: Path = Path("/etc/libvirt")) -> "PrivateLibvirt":
        """The directories, with the host's daemon configuration files (*.conf) but none of its objects."""
        for name in self.DIRS:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        (self.root / "lib" / "images").mkdir(exist_ok=True)   # as a libvirt install has it: the pools' parent
        for conf in etc.glob("*.conf"):
            (self.root / "etc" / conf.name).write_bytes(conf.read_bytes())
        return self

    @property
    def socket(self) -> Path:
        """libvirtd's socket as this machine's other processes see it."""
        return self.root / "run" / "libvirt-sock"

    def wrap(self, argv: list[str], mask_kvm: Path | None = None, extra_dirs: tuple[str, ...] = ()) -> list[str]:
        """argv run with these directories in place (and /dev/kvm masked, and `extra_dirs` made in the new /run,
        e.g. sshd's /run/sshd)."""
        steps = ["mount -t tmpfs -o mode=0755 nfslab-run /run"]
        steps += [f"mkdir -p {shlex.quote(d)}" for d in ("/run/libvirt", *extra_dirs)]
        steps += [f"mount --bind {shlex.quote(str(self.root / name))} {target}" for name, target in self.DIRS.items()]
        if mask_kvm is not None:
            steps.append(f"if [ -e /dev/kvm ]; then mount --bind {shlex.quote(str(mask_kvm))} /dev/kvm; fi")
        return ["unshare", "-m", "--propagation", "private", "sh", "-ec",
                "; ".join([*steps, f"exec {shlex.join(argv)}"])]


class RemoteLabHost:
    """A lab host in a namespace of its own, reached from `client_netns` (made here unless one is given: the lab's
    side, e.g. an existing namespace the lab runs in). `up()`, then `uri`/`target()`; always `down()`."""

    def __init__(self, root: Path, ident: str | None = None, client_netns: str | None = None):
        self.root = Path(root)
        self.state = StateFile(self.root / "state.json")
        recorded = next(iter(self.state.resources("remote host")), {})   # down() after a crash finds its names
        self.ident = ident or recorded.get("name") or secrets.token_hex(3)
        self.host_netns = f"{NS_PREFIX}{self.ident}-host"
        given = client_netns or recorded.get("client_netns")
        self.owns_client = given is None or given == f"{NS_PREFIX}{self.ident}-lab"
        self.client_netns = given or f"{NS_PREFIX}{self.ident}-lab"
        self.private = PrivateLibvirt(self.root / "libvirt")
        self.log = self.root / "remotehost.log"
        self.swept: list[int] = []

    # ---- names and addresses ----------------------------------------------------------------------------------
    address = f"{SUBNET}.2"
    client_address = f"{SUBNET}.1"

    @property
    def veth(self) -> tuple[str, str]:
        return f"nflr{self.ident}l", f"nflr{self.ident}h"   # the client's end, the host's end (15 chars at most)

    @property
    def key(self) -> Path:
        """The private key the lab side logs in with (root's authorized key on this host)."""
        return self.root / "client" / "id_ed25519"

    @property
    def ssh_wrapper(self) -> Path:
        return self.root / "client" / "ssh"

    @property
    def uri(self) -> str:
        return f"qemu+ssh://root@{self.address}/system?keyfile={self.key}&command={self.ssh_wrapper}"

    def target(self) -> LibvirtTarget:
        return LibvirtTarget.parse(self.uri, self.client_netns)

    def client(self, *argv: str) -> list[str]:
        """argv run in the client namespace (where the lab's libvirt and ssh clients run)."""
        return ["ip", "netns", "exec", self.client_netns, *argv]

    def _pidfile(self, daemon: str) -> Path:
        return self.root / "daemons" / f"{daemon}.pid"

    # ---- bring-up ----------------------------------------------------------------------------------------------
    def up(self) -> "RemoteLabHost":
        """Namespaces and their link, keys, sshd, virtlogd and libvirtd (~3 s). HostNotReady if sshd is missing."""
        require_root()
        missing = hostdeps.REMOTE_HOST.missing()
        if missing:
            raise HostNotReady(f"a remote lab host needs {', '.join(missing)} (fix: run `lab setup`, or "
                               f"{hostdeps.install_hint(sorted(set(missing.values())))})")
        for d in ("client", "sshd", "daemons"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self.state.record("remote host", self.ident, client_netns=self.client_netns)
        self._namespaces()
        self._keys()
        self.private.create()
        prefix = ["ip", "netns", "exec", self.host_netns]
        start_daemon("sshd", self.private.wrap([SSHD, "-f", str(self._sshd_config()), "-E",
                                                str(self.root / "sshd" / "sshd.log")], extra_dirs=("/run/sshd",)),
                     self._pidfile("sshd"), prefix, self.log, self.state)
        start_daemon("virtlogd", self.private.wrap(["virtlogd", "-d", "-p", str(self._pidfile("virtlogd"))]),
                     self._pidfile("virtlogd"), prefix, self.log, self.state)
        start_libvirtd(self.root / "daemons", prefix, self.log, self.state, mask_kvm=True, private=self.private)
        return self

    def _namespaces(self) -> None:
        made = [self.host_netns] + ([self.client_netns] if self.owns_client else [])
        for ns in made:
            if not Path(f"/run/netns/{ns}").exists():
                self.state.record("netns", ns)
                run(["ip", "netns", "add", ns], step="remote host: namespace", timeout=10, log=self.log)
                run(["ip", "-n", ns, "link", "set", "lo", "up"], step="remote host: lo up", timeout=10, log=self.log)
        near, far = self.veth
        self.state.record("link", near, netns=self.client_netns)
        run(["ip", "-n", self.client_netns, "link", "add", near, "type", "veth", "peer", "name", far, "netns",
             self.host_netns], step="remote host: veth", timeout=10, log=self.log)
        for ns, dev, addr in ((self.client_netns, near, self.client_address), (self.host_netns, far, self.address)):
            run(["ip", "-n", ns, "addr", "add", f"{addr}/30", "dev", dev], step="remote host: address", timeout=10,
                log=self.log)
            run(["ip", "-n", ns, "link", "set", dev, "up"], step="remote host: link up", timeout=10, log=self.log)

    def _keys(self) -> None:
        hostkey = self.root / "sshd" / "host_ed25519"
        for path, comment in ((hostkey, "nfslab remote lab host"), (self.key, "nfslab lab side")):
            if not path.exists():
                run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                    step="remote host: ssh key", timeout=30, log=self.log)
        (self.root / "sshd" / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        kind, blob = hostkey.with_suffix(".pub").read_text().split()[:2]
        known = self.root / "client" / "known_hosts"
        known.write_text(f"{self.address} {kind} {blob}\n")
        self.ssh_wrapper.write_text(
            "#!/bin/sh\n# nfslab remote lab host: ssh that knows this host's key only, and remembers nothing\n"
            f"exec ssh -o UserKnownHostsFile={shlex.quote(str(known))} -o GlobalKnownHostsFile=/dev/null "
            "-o StrictHostKeyChecking=yes \"$@\"\n")
        self.ssh_wrapper.chmod(0o755)

    def _sshd_config(self) -> Path:
        d = self.root / "sshd"
        config = d / "sshd_config"
        config.write_text("\n".join([
            # 127.0.0.1: a port only this host reaches, as a VM on its isolated networks is (the proof's target)
            f"ListenAddress {self.address}", "ListenAddress 127.0.0.1", "Port 22", f"HostKey {d / 'host_ed25519'}",
            f"PidFile {self._pidfile('sshd')}", f"AuthorizedKeysFile {d / 'authorized_keys'}",
            "PermitRootLogin prohibit-password", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "UsePAM no", "StrictModes no", "AllowTcpForwarding yes", "X11Forwarding no", "PrintMotd no",
            "LogLevel VERBOSE", ""]))
        return config

    # ---- teardown ----------------------------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Stop what up() started and every process still in the host namespace, delete the namespaces and `root`;
        what was removed. Safe to call twice, or after a failed up()."""
        removed = []
        for daemon in DAEMONS:
            pid = read_pid(self._pidfile(daemon))
            if pid_alive(pid) and terminate(pid):
                removed.append(f"{daemon} (pid {pid})")
        namespaces = [self.host_netns] + ([self.client_netns] if self.owns_client else [])
        for ns in namespaces:
            assert ns.startswith(NS_PREFIX), ns   # never a namespace of the lab's own
            for pid in _netns_pids(ns):
                self.swept.append(pid)
                if terminate(pid):
                    removed.append(f"process {pid} in {ns}")
        if not self.owns_client and Path(f"/run/netns/{self.client_netns}").exists():
            run(["ip", "-n", self.client_netns, "link", "delete", self.veth[0]], step="remote host: veth",
                timeout=10, log=None, check=False)
        for ns in namespaces:
            if Path(f"/run/netns/{ns}").exists():
                run(["ip", "netns", "delete", ns], step="remote host: namespace", timeout=10, log=None, check=False)
                removed.append(f"netns {ns}")
        if self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)
            removed.append(f"directory {self.root}")
        return removed

    def leftovers(self) -> list[str]:
        """What this remote host left: a namespace, a process (its daemons, anything swept from its namespace, any
        process naming its directory), its directory. Empty after `down()`."""
        found = [f"netns {ns}" for ns in (self.host_netns, *([self.client_netns] if self.owns_client else []))
                 if Path(f"/run/netns/{ns}").exists()]
        ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
        mine = _ancestors()
        found += [f"process {line.strip()[:120]}" for line in ps.splitlines()
                  if str(self.root) in line and int(line.split()[0]) not in mine]
        found += [f"process {pid} (was in {self.host_netns})" for pid in self.swept if pid_alive(pid)]
        if self.root.exists():
            found.append(f"directory {self.root}")
        return found


def _ancestors() -> set[int]:
    """This process and those that started it (their command lines may name the root: not leftovers)."""
    found, pid = set(), os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return found


def _netns_pids(ns: str) -> list[int]:
    if not Path(f"/run/netns/{ns}").exists():
        return []
    cp = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    return [int(p) for p in cp.stdout.split()]


# ---- the proof, without a VM ------------------------------------------------------------------------------------
def prove(root: Path, say=print) -> list[str]:
    """Start a remote lab host, drive its libvirt from the client namespace as the lab would (virsh over ssh: the
    version, a pool and a volume uploaded and read back; then the lab's own RemoteLibvirtHost: its pool, a kernel
    staged as a volume, and lab/cleanup.py's removal), tear it all down; return what was left (nothing on success).
    Boots no VM."""
    from .cleanup import clean_remote
    from .paths import LabHome
    from .remote import Remote
    from .remotelibvirt import RemoteLibvirtHost
    from .topology import KernelFiles
    remote = RemoteLabHost(root)
    try:
        remote.up()
        say(f"remote lab host: namespace {remote.host_netns} ({remote.address}), reached from {remote.client_netns}")
        say(f"URI: {remote.uri}")

        def virsh(*args: str) -> str:
            argv = remote.client("virsh", "-q", "-c", remote.uri, *args)
            out = run(argv, step=f"virsh {args[0]}", timeout=120, log=remote.log).stdout
            say(f"$ virsh -c URI {shlex.join(args)}\n{out.rstrip()}" if out.strip() else f"$ virsh -c URI {shlex.join(args)}")
            return out

        virsh("version")
        virsh("uri")
        virsh("pool-list", "--all")          # empty: none of this machine's other libvirtd's pools
        virsh("pool-define-as", "proof", "dir", "--target", "/var/lib/libvirt/images/proof")
        virsh("pool-build", "proof")
        virsh("pool-start", "proof")
        sample = remote.root / "sample.bin"
        sample.write_bytes(os.urandom(3 << 20))
        virsh("vol-create-as", "proof", "sample", str(sample.stat().st_size), "--format", "raw")
        virsh("vol-upload", "--pool", "proof", "sample", str(sample))
        virsh("vol-list", "proof")
        back = remote.root / "back.bin"
        virsh("vol-download", "--pool", "proof", "sample", str(back))
        same = hashlib.sha256(back.read_bytes()).hexdigest() == hashlib.sha256(sample.read_bytes()).hexdigest()
        say(f"uploaded and downloaded 3 MiB: {'identical' if same else 'DIFFERENT'}")
        if not same:
            raise AssertionError("the volume read back differs from what was uploaded")
        virsh("vol-delete", "--pool", "proof", "sample")
        virsh("pool-destroy", "proof")
        virsh("pool-delete", "proof")
        virsh("pool-undefine", "proof")

        say("the lab's RemoteLibvirtHost on it:")
        lab = RemoteLibvirtHost(LabHome(remote.root / "labhome"), remote.target())
        lab.up()
        say(f"  pools there: {lab.virsh('pool-list', '--all', '--name').split()}")
        kernel = KernelFiles(sample, None, "0.0-proof")
        staged = lab.stage(kernel)
        say(f"  kernel staged as {staged.vmlinuz} (volumes: {lab.virsh('vol-list', 'nfslab').split()[::2]})")
        say(f"  a topology's Vagrantfile would say: lv.uri = \"{lab.libvirt.uri}\"")
        say(f"  and lv.proxy_command = '{lab.libvirt.proxy_command}'")
        vm = Remote("stand-in VM", "127.0.0.1", 22, remote.key, lab.open_socket, remote.root / "vm.log")
        where = vm.run("ip -br addr show scope global; echo via $SSH_CONNECTION").stdout.strip()
        vm.close()
        say(f"  lab/remote.py Remote to 127.0.0.1:22 through lab.open_socket (ssh -W on the libvirt host):\n"
            f"    {where.replace(chr(10), chr(10) + '    ')}")
        say(f"  lab/cleanup.py clean_remote removed: {clean_remote(lab)}")
        pools = virsh("pool-list", "--all", "--name").split()
        if pools:
            raise AssertionError(f"pools left on the remote libvirt: {pools}")
    finally:
        removed = remote.down()
        say(f"down: removed {', '.join(removed) or 'nothing'}")
    left = remote.leftovers()
    say(f"leftovers: {left or 'none'}")
    return left


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.remotehost", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prove", help="start one, drive its libvirt over ssh (no VM), remove it, check nothing is left")
    p.add_argument("--root", type=Path, default=None, help="its directory (default: a new one under /tmp)")
    p = sub.add_parser("up", help="start one and leave it up: prints its URI and the namespace to reach it from")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--client-netns", default=None, help="attach it to this existing namespace instead of a new one")
    p = sub.add_parser("down", help="remove the one under --root")
    p.add_argument("--root", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "prove":
        root = args.root or Path(f"/tmp/{NS_PREFIX}{secrets.token_hex(3)}")
        return 1 if prove(root) else 0
    if args.command == "up":
        remote = RemoteLabHost(args.root, client_netns=args.client_netns).up()
        print(f"--libvirt-uri '{remote.uri}' --libvirt-netns {remote.client_netns}")
        return 0
    removed = RemoteLabHost(args.root).down()
    print("\n".join(f"removed {r}" for r in removed) or "nothing to remove")
    return 0


if __name__ == "__main__":
    sys.exit(main())
