"""Which libvirt the lab drives (a `LibvirtTarget`, from `--libvirt-uri`), and what it reads back from virsh: one
parser per listing, so a change in virsh's output format is mended in one place.

A target is the one value that carries the libvirt URI from the command line (`lab run --libvirt-uri`, `pytest
--libvirt-uri`) through the runner and the lab host to the topology plan and its Vagrantfile (`lv.uri`,
`lv.proxy_command`). It is pure: parsing and checking a URI touch nothing. What the lab does differently when the
libvirt is on another machine is lab/remotelibvirt.py; docs/remote-libvirt.md says why.

Two URIs are accepted:
- `qemu:///system` (the default): the lab's own libvirtd in its own namespace on this machine (lab/host.py);
- `qemu+ssh://[USER@]HOST/system[?keyfile=…&no_verify=1&command=…]`: the libvirtd of another lab host, reached
  over ssh; the VMs' networks live on that host, and everything that talks to a VM goes through the same ssh
  (`ssh -W`, what vagrant-libvirt's proxy_command does).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

LOCAL_URI = "qemu:///system"
#: what a bad URI's message offers instead
ALLOWED = "qemu:///system, or qemu+ssh://[USER@]HOST/system[?keyfile=KEY&no_verify=1&command=SSH]"
#: query parameters of libvirt's ssh transport the lab passes on; the first three also shape its own ssh to VMs
SSH_PARAMS = ("keyfile", "no_verify", "command", "socket", "mode", "proxy", "netcat", "no_tty")
#: a URI goes into a Vagrantfile (a Ruby string) and a shell command line: nothing that either would interpret
SAFE = re.compile(r"[A-Za-z0-9+.:/@?&=_%,~-]+")
#: how long one ssh connection to the libvirt host may take to open (the lab's ssh to VMs goes through it)
CONNECT_TIMEOUT_S = 15


class BadLibvirtURI(ValueError):
    """A URI the lab cannot drive: the message is one line, `--libvirt-uri URI: why (allowed: …)`."""


@dataclass(frozen=True)
class LibvirtTarget:
    """The libvirt the lab drives. `netns`: for a remote one, the existing network namespace from which this machine
    reaches the libvirt host (None: this machine's own); the lab neither creates nor deletes it."""

    uri: str = LOCAL_URI
    host: str | None = None         # None: this machine (the lab's own libvirtd)
    user: str | None = None
    keyfile: str | None = None
    no_verify: bool = False
    ssh_command: str = "ssh"
    netns: str | None = None

    @property
    def remote(self) -> bool:
        return self.host is not None

    @classmethod
    def parse(cls, text: str | None, netns: str | None = None) -> "LibvirtTarget":
        """The target a URI names; BadLibvirtURI (one line) if the lab cannot drive it. Pure: no file is read."""
        if not text or text == LOCAL_URI:
            if netns:
                raise BadLibvirtURI(f"--libvirt-netns {netns}: only for a qemu+ssh:// URI (the local libvirt runs "
                                    f"in the lab's own namespace)")
            return cls()
        def bad(why: str) -> BadLibvirtURI:
            return BadLibvirtURI(f"--libvirt-uri {text}: {why} (allowed: {ALLOWED})")
        if not SAFE.fullmatch(text):
            raise bad("has a character a libvirt URI for the lab may not have (spaces, quotes, $, #, {, }, \\)")
        parts = urlsplit(text)
        if parts.scheme == "qemu":
            raise bad("a local URI must be exactly qemu:///system (the lab runs its own libvirtd)")
        if parts.scheme != "qemu+ssh":
            raise bad(f"transport '{parts.scheme or '(none)'}' is not ssh: the lab reaches the VMs through the "
                      f"libvirt host's ssh")
        if not parts.hostname:
            raise bad("no host")
        if parts.hostname.startswith("-") or (parts.username or "").startswith("-"):
            raise bad("a host or user that starts with '-' (ssh would read it as an option)")
        if parts.path != "/system":
            raise bad(f"path '{parts.path or '(none)'}': the lab needs the system instance (/system) for its "
                      f"networks")
        try:
            port = parts.port
        except ValueError:
            raise bad("the port is not a number") from None
        if port is not None:
            # vagrant-libvirt 0.11.2 config.rb finalize_proxy_command: `inputs << {port:}` on a Hash raises
            raise bad(f"a port ({port}): vagrant-libvirt 0.11.2 cannot proxy ssh to its VMs with one (fix: set "
                      f"`Port {port}` for {parts.hostname} in root's ~/.ssh/config and leave it out here)")
        if parts.password is not None:
            raise bad("a password: use keyfile=")
        params: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key not in SSH_PARAMS:
                raise bad(f"unknown parameter '{key}' (the ssh transport's: {', '.join(SSH_PARAMS)})")
            if key in params:
                raise bad(f"parameter '{key}' twice")
            params[key] = value
        if params.get("no_verify", "0") not in ("0", "1"):
            raise bad(f"no_verify={params['no_verify']}: 0 or 1")
        for key in ("keyfile", "command"):
            if key in params and not params[key].startswith("/"):
                raise bad(f"{key}={params[key]}: an absolute path (vagrant-libvirt reads a relative keyfile from "
                          f"~/.ssh/)")
        return cls(uri=text, host=parts.hostname, user=parts.username, keyfile=params.get("keyfile"),
                   no_verify=params.get("no_verify") == "1", ssh_command=params.get("command", "ssh"), netns=netns)

    def missing_files(self) -> list[str]:
        """The files the URI names that this machine lacks (checked before a run creates anything)."""
        from pathlib import Path
        return [f"{what}={path}" for what, path in (("keyfile", self.keyfile), ("command", self.ssh_command))
                if path and path.startswith("/") and not Path(path).exists()]

    def refusal(self, *, capture: bool) -> str | None:
        """Why a run of a matrix cannot go to this libvirt (None: it can). The capture records the server's tap
        device on the libvirt host, which is this machine only for the lab's own libvirt."""
        if self.remote and capture:
            return (f"--libvirt-uri {self.uri}: the matrix captures NFS traffic (capture: on), and the VMs' tap "
                    f"devices are on {self.host}, not here (fix: a matrix with `capture: off`)")
        return None

    # ---- the ssh that reaches the libvirt host, and through it the VMs ---------------------------------------
    def ssh_argv(self, *args: str) -> list[str]:
        """ssh to the libvirt host as the URI says (its user, key, ssh command); never asks a question."""
        if not self.remote:
            raise ValueError("a local libvirt has no ssh")
        argv = [self.ssh_command, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}"]
        if self.no_verify:   # as libvirt's own no_verify=1, and nothing remembered of a host key not checked
            argv += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
        if self.user:
            argv += ["-l", self.user]
        if self.keyfile:
            argv += ["-i", self.keyfile, "-o", "IdentitiesOnly=yes"]
        return [*argv, *args, self.host]

    def proxy_argv(self, address: str, port: int | str) -> list[str]:
        """A command whose stdin/stdout is a TCP connection to address:port as seen from the libvirt host."""
        return self.ssh_argv("-W", f"{address}:{port}")

    @property
    def proxy_command(self) -> str | None:
        """vagrant-libvirt's `proxy_command` (`%h`, `%p` filled in by Vagrant's ssh); None for a local libvirt."""
        return shlex.join(self.proxy_argv("%h", "%p")) if self.remote else None


def given_target(uri: str | None, netns: str | None = None, *, capture: bool = False) -> LibvirtTarget:
    """--libvirt-uri and --libvirt-netns as `lab` and `pytest --matrix` are given them, checked before any work: a
    URI the lab cannot drive, a key or ssh command it names that is not on this machine, or a matrix a remote host
    cannot run is BadLibvirtURI, one line. (Whether the host answers is lab/remotelibvirt.py `check_reachable`.)"""
    target = LibvirtTarget.parse(uri, netns)
    missing = target.missing_files()
    if missing:
        raise BadLibvirtURI(f"--libvirt-uri {uri}: no such file: {missing[0]}")
    refusal = target.refusal(capture=capture)
    if refusal:
        raise BadLibvirtURI(refusal)
    return target


def volume_names(vol_list: str) -> list[str]:
    """The volume names of `virsh -q vol-list POOL` (name, then path, one volume a line; blank lines skipped)."""
    return [line.split()[0] for line in vol_list.splitlines() if line.split()]


def volume_paths(vol_list: str) -> dict[str, str]:
    """`virsh -q vol-list POOL` as {name: path on the libvirt host}."""
    return {line.split()[0]: line.split()[1] for line in vol_list.splitlines() if len(line.split()) >= 2}
