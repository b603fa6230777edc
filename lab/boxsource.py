"""The `box` source kind on the host: a row's Vagrant box in the lab's Vagrant home, and its pinned kernel package.

The `box` source kind (CentOS 7, Ubuntu 16.04, and debian-11-box, which proves the path with a box built here by
bench/distro_box.py) needs two downloads before anything boots, and this module makes both or says why not:
- the box, by name and version: present in the lab's Vagrant home, or added there from the spec's `file:`, a .box
  found by name in the mirror directories (NFSLAB_MIRROR, `mirror:` of the config file) or the lab's box
  directory, through a one-version catalog so Vagrant records the version the spec pins. A box that must come
  from Vagrant Cloud cannot be had here;
- the kernel package: the lab's VMs have no network (the network rule), so the host fetches it and Vagrant
  uploads it into the guest, where the provisioner installs it from the file. The host fetches from Debian suites
  (`suite:`, with the private apt of lab/debian.py); another distribution's package cannot be fetched yet.
After these downloads every box row takes the same path: lab/distro.py renders the provisioner, the topology
provisions and reloads the clients, and kernellab checks `uname -r`.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from . import debian, distro
from .boxes import vagrant_env
from .errors import KernelUnavailable
from .paths import LabHome
from .proc import run
from .spec import Kernel
from .state import locked
from .tarballs import MIRROR_ENV, mirror_dirs

#: the row that runs this path here end to end, named in the reason a row that needs Vagrant Cloud is skipped
PROVEN_BY = "debian-11-box runs here (matrices/box-source.yaml, its box built by bench/distro_box.py)"
#: seconds for `vagrant box add` to unpack a box (a few hundred MB) into the Vagrant home
ADD_TIMEOUT = 1200


def vagrant_dir_name(name: str) -> str:
    """How Vagrant names a box's directory (`centos/7` → `centos-VAGRANTSLASH-7`); also its volumes' prefix."""
    return name.replace("/", "-VAGRANTSLASH-")


def box_present(home: LabHome, name: str, version: str | None = None, provider: str = "libvirt") -> bool:
    """The box is in the lab's Vagrant home for libvirt: in exactly `version` when one is pinned."""
    d = home.vagrant_home / "boxes" / vagrant_dir_name(name)
    if version:
        return (d / version / provider).is_dir()
    return any((v / provider).is_dir() for v in d.iterdir()) if d.is_dir() else False


def find_box_file(home: LabHome, file: str) -> Path | None:
    """A .box by file name: the mirror directories first, then the lab's box directory."""
    for directory in [*mirror_dirs(home), home.boxes]:
        if (directory / file).is_file():
            return directory / file
    return None


def catalog(name: str, version: str, box_file: Path, provider: str = "libvirt") -> dict:
    """Vagrant's box metadata for one version of one box, served from a local file: `vagrant box add` of it
    records the name and version (a plain .box would be version 0)."""
    return {"name": name, "versions": [{"version": version,
                                        "providers": [{"name": provider, "url": box_file.resolve().as_uri()}]}]}


def add_box(home: LabHome, name: str, version: str, box_file: Path, log: Path) -> None:
    """Add the box file to the lab's Vagrant home as name + version (once: concurrent workers wait on a lock)."""
    home.ensure()
    with locked(home.state / "box-add.lock"):
        if box_present(home, name, version):
            return
        meta = home.boxes / f"{vagrant_dir_name(name)}-{version}.json"
        meta.write_text(json.dumps(catalog(name, version, box_file), indent=1) + "\n")
        run(["vagrant", "box", "add", "--provider", "libvirt", str(meta)], step=f"box {name} {version}: add",
            timeout=ADD_TIMEOUT, log=log, env=vagrant_env(home))


def fetch_package(home: LabHome, suite_name: str, package: str) -> Path:
    """The kernel package from a Debian suite, fetched by the host into a directory of its own (what Vagrant
    uploads into the guest), cached per package and version; offline, the last one fetched."""
    log = home.kernels / "fetch.log"
    cached = sorted(home.kernels.glob(f"box-{suite_name}-{package}_*/done"))
    suite = debian.Suite(home.root / "apt", suite_name, log)
    try:
        suite.update()
    except KernelUnavailable:
        if cached:
            return cached[-1].parent / "packages"
        raise
    version = suite.version(package)
    out = home.kernels / f"box-{suite_name}-{package}_{version}".replace(":", "_").replace("~", "_")
    if (out / "done").exists():
        return out / "packages"
    shutil.rmtree(out, ignore_errors=True)
    suite.download(package, out / "packages")
    (out / "done").write_text(f"{suite_name} {package} {version}\n")
    return out / "packages"


def client(kernel: Kernel, home: LabHome, progress=lambda msg: None) -> distro.DistroClient:
    """The row's box and package, had here, as the client the topology boots (its provisioner trusts the lab's
    key); KernelUnavailable naming every download that cannot be made."""
    src = kernel.source
    name, version, package = src["name"], src.get("version"), src["kernel_package"]
    pinned = f"{name} {version}" if version else name
    reasons = []
    box_file = None
    if not box_present(home, name, version):
        if "file" in src:
            box_file = find_box_file(home, src["file"])
            if box_file is None:
                reasons.append(f"box {pinned}: {src['file']} is in no mirror directory and not in {home.boxes}/ "
                               f"(put it there, or in a directory named by {MIRROR_ENV})")
        else:
            reasons.append(f"box {pinned} is not in the lab's Vagrant home and Vagrant Cloud is unreachable from "
                           f"this machine")
    if "suite" not in src:
        reasons.append(f"{package} must be downloaded by the host (the VMs have no network), which fetches kernel "
                       f"packages only from Debian suites (source.box.suite)")
    if reasons:
        what = "these downloads" if len(reasons) > 1 else "that download"
        proven = "" if "file" in src else f"; apart from {what} the row takes the box path that {PROVEN_BY}"
        raise KernelUnavailable(", and ".join(reasons) + proven)
    progress(f"{kernel.name}: fetching {package} from Debian {src['suite']} (the VMs have no network)")
    packages = fetch_package(home, src["suite"], package)
    if box_file is not None:
        progress(f"{kernel.name}: adding box {pinned} from {box_file}")
        add_box(home, name, version, box_file, home.boxes / "add.log")
    return distro.distro_client(name, version, package, home.ssh_key.with_suffix(".pub").read_text(),
                                packages=packages)
