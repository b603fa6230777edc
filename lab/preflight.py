"""Is this host ready for a `lab` command: root, and everything it will run on the host?

Checked before the command creates anything (a run directory, the namespace, a box), so a host that is not ready
costs one line and exit code 2, not a half-made lab and a traceback from deep inside it. `lab run` also checks
what the kernels of its rows need (a full build needs bison and flex, a module build gcc-12…): a build that would
fail an hour later on `bison: not found` fails now, naming the packages. What each part needs is lab/hostdeps.py.
"""
from __future__ import annotations

from . import hostdeps
from .errors import HostNotReady
from .host import require_root, require_tools

#: what a command runs on the host besides Python, where it is less than a whole group
NEEDS = {
    "clean": ("ip", "virsh"),
    "status": ("ip", "virsh"),
    "down": ("ip", "virsh"),
    "ssh": ("ip", "ssh"),
}


def needs(command: str, *, capture: bool = True) -> tuple[str, ...]:
    """What `command` runs on the host: `setup` everything, `box build` the box's tools, `run` every run's groups
    (the capture tools only for a matrix that captures)."""
    if command in NEEDS:
        return NEEDS[command]
    if command == "setup":
        groups = hostdeps.GROUPS
    elif command == "box build":
        groups = (hostdeps.LAB_BOX,)
    else:
        groups = (hostdeps.LAB_HOST, hostdeps.LAB_BOX) + ((hostdeps.CAPTURE,) if capture else ())
    return tuple(dict.fromkeys(what for group in groups for what in group.needs))


def check(command: str, *, setup_hint: bool = True, capture: bool = True) -> None:
    """HostNotReady (one line, exit 2) unless this is root and the command's tools are all on PATH."""
    require_root()
    require_tools(needs(command, capture=capture), setup_hint=setup_hint)


def check_kernels(matrix, names: list[str]) -> None:
    """HostNotReady unless the host has what the source kinds of these kernels need (with the server and the bases
    of builds, which a run gets too): `missing for kernel mainline-4.19 (full build): bison, flex (fix: …)`."""
    short: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for name in _with_bases(matrix, names):
        kernel = matrix.kernel(name)
        scope = kernel.source.get("scope")
        missing = hostdeps.missing_packages(hostdeps.kernel_groups(kernel.source_kind, scope))
        if missing:
            short.setdefault((hostdeps.kind_label(kernel.source_kind, scope), tuple(missing)), []).append(name)
    if not short:
        return
    parts = [f"kernel{'s' if len(kernels) > 1 else ''} {', '.join(kernels)} ({label}): {', '.join(packages)}"
             for (label, packages), kernels in short.items()]
    everything = sorted({package for _, packages in short for package in packages})
    raise HostNotReady(f"missing for {'; for '.join(parts)} (fix: run `lab setup`, or "
                       f"{hostdeps.install_hint(everything)})")


def _with_bases(matrix, names: list[str]) -> list[str]:
    """The kernels in the order given, then the server, each followed by the chain of its bases, once each."""
    ordered: list[str] = []
    for name in [*names, matrix.server]:
        while name is not None and name not in ordered:
            ordered.append(name)
            name = matrix.kernel(name).base
    return ordered


def check_libvirt(target) -> None:
    """HostNotReady (one line, exit 2) unless a remote libvirt (`--libvirt-uri qemu+ssh://…`) answers; the lab's own
    needs nothing more than `check` asks."""
    from .remotelibvirt import check_reachable
    check_reachable(target)
