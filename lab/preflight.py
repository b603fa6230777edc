"""Is this host ready for a `lab` command: root, and every host command it will run on PATH?

Checked before the command creates anything (a run directory, the namespace, a box), so a host that is not ready
costs one line and exit code 2, not a half-made lab and a traceback from deep inside it. The table of host
commands and the Debian packages that bring them lives in host.py, beside the code that runs them.
"""
from __future__ import annotations

from .host import REQUIRED_TOOLS, require_root, require_tools

#: what a command runs on the host besides Python; `run` and `setup` bring up everything, so they need it all
NEEDS = {
    "box build": ("debootstrap", "mkfs.ext4", "qemu-img", "vagrant"),
    "clean": ("ip", "virsh"),
}


def needs(command: str) -> tuple[str, ...]:
    return NEEDS.get(command, tuple(REQUIRED_TOOLS))


def check(command: str, *, setup_hint: bool = True) -> None:
    """HostNotReady (one line, exit 2) unless this is root and the command's tools are all on PATH."""
    require_root()
    require_tools(needs(command), setup_hint=setup_hint)
