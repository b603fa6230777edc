"""`lab clean`, `lab status`, `lab ssh`, `lab down`: what the lab has up on this host, and removing it."""
from __future__ import annotations

from typing import Optional

import typer

from ..log import log
from ..paths import LabHome
from .common import LibvirtNetnsOpt, LibvirtUriOpt, Usage, app, libvirt_target, out


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
def ssh(kernel: str = typer.Argument(..., help="the kernel row of a kept (or running) topology, e.g. debian-6.1"),
        machine: str = typer.Argument(..., help="server, alice or bob"),
        command: Optional[list[str]] = typer.Argument(None, help="run this instead of a shell (e.g. -- mount)")):
    """Log into a machine of a kept (or running) topology as root, through the lab namespace; or run COMMAND."""
    from .. import preflight
    preflight.check("ssh")
    from .. import status as st
    from ..host import Host
    try:
        # past the machine everything is the command, options too; click keeps the `--` that may precede it
        st.ssh(Host(LabHome.default()), kernel, machine, command[1:] if command and command[0] == "--" else command)
    except st.NotUp as e:
        raise Usage(str(e)) from None


@app.command()
def down(kernel: Optional[str] = typer.Argument(None, help="the kernel whose kept topology to destroy (default: "
                                                           "every kept one)"),
         keep_host: bool = typer.Option(False, help="keep the namespace and libvirtd even if nothing uses them")):
    """Destroy kept topologies (`lab run --keep`) as `lab clean` does, then the host if nothing else uses it."""
    from .. import preflight
    preflight.check("down")
    from .. import status as st
    from ..host import Host
    try:
        removed = st.down(Host(LabHome.default()), kernel, keep_host=keep_host)
    except st.NotUp as e:
        raise Usage(str(e)) from None
    for r in removed:
        log.info("removed %s", r)
    log.info("no kept topology" if not removed else f"{len(removed)} removed")
