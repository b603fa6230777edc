"""`lab clean`, `lab status`, `lab ssh`, `lab down`: what the lab has up on this host, and removing it."""
from __future__ import annotations

import re
from typing import Optional

import typer

from ..log import log
from ..paths import LabHome
from ..safeload import cut
from .common import LibvirtNetnsOpt, LibvirtUriOpt, Usage, app, libvirt_target, out

#: a topology's lab id as `lab status` shows it (6 hex digits when the lab makes one)
_LAB_ID = re.compile(r"^[0-9A-Za-z]{1,32}$")
_ALLOWED = "allowed: KERNEL, or KERNEL@TOPOLOGY with a topology id as `lab status` lists it, e.g. debian-6.1@ab12cd"


def kernel_topology(text: str) -> tuple[str, str | None]:
    """`debian-6.1` → (debian-6.1, None); `debian-6.1@ab12cd` → (debian-6.1, ab12cd): which topology of a kernel,
    when it has more than one up (two workers of `lab run --jobs N`, two runs with --keep). Checked before anything
    else is, so a mistake is one line (Usage, exit 2)."""
    kernel, at, lab_id = text.partition("@")
    if not kernel.strip():
        raise Usage(f"'{cut(text)}': no kernel{' before the @' if at else ''} ({_ALLOWED})")
    if not at:
        return kernel, None
    if not _LAB_ID.match(lab_id):
        raise Usage(f"'{cut(text)}': '{cut(lab_id)}' is not a topology id ({_ALLOWED})")
    return kernel, lab_id


@app.command()
def clean(keep_host: bool = typer.Option(False, help="remove topologies only; keep the namespace and libvirtd"),
          libvirt_uri: Optional[str] = LibvirtUriOpt, libvirt_netns: Optional[str] = LibvirtNetnsOpt):
    """Remove everything the lab created: VMs, snapshots, volumes, networks, then libvirtd and the namespace; on every
    remote libvirt it used too, and on --libvirt-uri's (one this lab home has no record of)."""
    target = libvirt_target(libvirt_uri, libvirt_netns)
    from .. import preflight
    preflight.check("clean")
    from ..boxes import prune_stale
    from ..cleanup import clean_everything
    removed = clean_everything(keep_host=keep_host, libvirt=target) + prune_stale(LabHome.default())
    for r in removed:
        log.info("removed %s", r)
    log.info("nothing to remove" if not removed else f"{len(removed)} removed")


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="machine-readable")):
    """What the lab has up: the host (namespace, libvirtd) and each topology (kernel, run, kept or not, machines
    and their libvirt state), from its state files. Exit 0, also when nothing is up."""
    from .. import preflight
    preflight.check("status")
    from .. import status as st
    from ..host import Host
    host = Host(LabHome.default())
    host_up, tops = st.host_status(host), st.topologies(host)
    if as_json:
        out.print_json(st.as_json(host_up, tops))
        return
    for line in st.lines(host_up, tops):
        out.print(line, soft_wrap=True)


@app.command(context_settings={"allow_interspersed_args": False})
def ssh(kernel: str = typer.Argument(..., help="the kernel row of a kept (or running) topology, e.g. debian-6.1; "
                                          "KERNEL@TOPOLOGY (debian-6.1@ab12cd, the lab id `lab status` shows) "
                                          "when the kernel has more than one up"),
        machine: str = typer.Argument(..., help="server, alice or bob"),
        command: Optional[list[str]] = typer.Argument(None, help="run this instead of a shell (e.g. -- mount)")):
    """Log into a machine of a kept (or running) topology as root, through the lab namespace; or run COMMAND."""
    kernel, lab_id = kernel_topology(kernel)
    from .. import preflight
    preflight.check("ssh")
    from .. import status as st
    from ..host import Host
    try:
        # past the machine everything is the command, options too; click keeps the `--` that may precede it
        st.ssh(Host(LabHome.default()), kernel, machine, command[1:] if command and command[0] == "--" else command,
               lab_id=lab_id)
    except st.NotUp as e:
        raise Usage(str(e)) from None


@app.command()
def down(kernel: Optional[str] = typer.Argument(None, help="the kernel whose kept topologies to destroy (default: "
                                                           "every kept one); KERNEL@TOPOLOGY only that one"),
         keep_host: bool = typer.Option(False, help="keep the namespace and libvirtd even if nothing uses them")):
    """Destroy kept topologies (`lab run --keep`) as `lab clean` does, then the host if nothing else uses it."""
    kernel, lab_id = kernel_topology(kernel) if kernel is not None else (None, None)
    from .. import preflight
    preflight.check("down")
    from .. import status as st
    from ..host import Host
    try:
        removed = st.down(Host(LabHome.default()), kernel, keep_host=keep_host, lab_id=lab_id)
    except st.NotUp as e:
        raise Usage(str(e)) from None
    for r in removed:
        log.info("removed %s", r)
    log.info("no kept topology" if not removed else f"{len(removed)} removed")
